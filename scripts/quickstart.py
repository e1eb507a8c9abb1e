"""Set up and run the whole project from a fresh clone: `python3 scripts/quickstart.py`.

1. creates the virtual environment `.venv` (if missing) and installs the project with its dev extra;
2. materialises every asset with the Dagster CLI against `DAGSTER_HOME=dagster_home/` on the data in
   `$SALES_DATA_DIR` (default `data/`; the embedded sample is generated when no CSV is there), then every
   time-series segment partition;
3. prints what was produced and where.

Safe to run again: the install is skipped when `pyproject.toml` has not changed, and every asset
replaces its outputs atomically. Only the standard library is used here, since it runs before the venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed-pyproject-sha256"


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    print(f"\n$ {' '.join(command)}", flush=True)
    completed = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if completed.returncode != 0:
        sys.exit(f"quickstart: step failed with exit code {completed.returncode}: {' '.join(command)}")


def install() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs on whatever python3 the user has
        sys.exit(f"quickstart: Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        print("quickstart: .venv is up to date with pyproject.toml")
        return
    run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", ".[dev,dashboard]"])
    STAMP.write_text(wanted + "\n")


def pipeline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))
    env.setdefault("SALES_DATA_DIR", str(ROOT / "data"))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def materialize(env: dict[str, str]) -> None:
    dagster = str(BIN / "dagster")
    # Dagster runs unpartitioned and partitioned assets in separate runs: first the whole unpartitioned
    # graph, then one run per time-series segment.
    run(
        [
            dagster,
            "asset",
            "materialize",
            "--select",
            "not key:ts_risk_reports",
            "-m",
            "sales_assets.definitions",
        ],
        env,
    )
    run([str(PYTHON), "-m", "sales_assets.timeseries.backfill"], env)


def summary(env: dict[str, str]) -> None:
    data = Path(env["SALES_DATA_DIR"])
    print("\nWhat was produced (under " + str(data) + "):")
    for label, relative in [
        ("raw CSV", "raw"),
        ("clean Parquet (by YEAR)", "processed/sales_parquet"),
        ("quarantined rows", "processed/rejects"),
        ("DuckDB warehouse", "duckdb"),
        ("summary tables", "output/summary"),
        ("plots", "output/plots"),
        ("EDA plots", "output/eda"),
        ("drift report", "output/monitoring"),
        ("model metrics", "output/metrics"),
        ("SHAP importance", "output/explainability"),
        ("time-series reports", "output/timeseries"),
        ("model bundles", "models/sales_regressor"),
        ("MLflow store", "mlflow"),
    ]:
        folder = data / relative
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
        size = sum(p.stat().st_size for p in files)
        print(f"  {label:<26} {len(files):>4} files {size / 2**20:>8.1f} MiB  {folder}")
    metrics = data / "output" / "metrics" / "sales_regression_metrics.json"
    if metrics.exists():
        champion = json.loads(metrics.read_text())["champion"]
        cv, holdout = champion["cv"], champion["holdout"]
        print(
            f"\nChampion model: {champion['model']} ({champion['estimator']}): "
            f"CV RMSE {cv['rmse_mean']:,.1f} +- {cv['rmse_std']:,.1f}, MAE {cv['mae_mean']:,.1f}, "
            f"R2 {cv['r2_mean']:.3f}; held-out RMSE {holdout['rmse']:,.1f}"
        )
    current = data / "models" / "sales_regressor" / "CURRENT"
    if current.exists():
        print(f"Serving bundle: {current.read_text().strip()}  (start it with: .venv/bin/sales-serve)")
    print(
        "\nNext: .venv/bin/sales-dagster dev -w workspace.yaml   Dagster UI on http://127.0.0.1:3000"
        "\n      .venv/bin/sales-serve                            prediction API, docs on http://127.0.0.1:8000/docs"
        "\n      .venv/bin/python -m pytest                       the test suite"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install-only", action="store_true", help="set up .venv and stop")
    args = parser.parse_args()
    started = time.perf_counter()
    install()
    if args.install_only:
        return
    env = pipeline_env()
    materialize(env)
    summary(env)
    print(f"\nquickstart: done in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
