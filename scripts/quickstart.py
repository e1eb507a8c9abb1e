"""Set up and run the whole project from a fresh clone: `python3 scripts/quickstart.py`.

1. creates the virtual environment `.venv` (if missing) and installs the project with its dev extra,
   showing pip's progress (packages resolved, then installed; the whole output in `.venv/pip-install.log`);
2. remembers the choices it was given (`SALES_DATA_DIR`, `SALES_RAW_CSV`) in `sales-settings.yaml` at the
   project root, which every command reads afterwards (environment variables still win);
3. recovers runs a killed command left (marked failed, pool slots freed, temp files removed);
4. refreshes every asset against `DAGSTER_HOME=dagster_home/` with `python -m sales_assets.refresh` (the
   embedded sample is generated when no CSV is there): what is new runs, the rest is left with the reason
   ("inputs unchanged since run X"); `--force` runs everything, `--quick` a smaller first look;
5. prints what was produced, which checks failed, and where to look next.

Ctrl-C stops the run cleanly: it is marked canceled, the state of each output is printed with the command
that finishes the job. Safe to run again: the install is skipped when `pyproject.toml` has not changed,
a run with the same input bytes, code and settings reruns nothing, and every asset replaces its outputs
atomically. Only the standard library is used here, since it runs
before the venv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sales_assets.quiet_logs import quiet_environment, quiet_install_environment  # noqa: E402
from sales_assets.supervise import SUPERVISED_ENV, Interrupted, mark_canceled, run_supervised  # noqa: E402
from sales_serving.contract.formatting import money, share  # noqa: E402

VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed-pyproject-sha256"
FINISH_COMMAND = "python3 scripts/quickstart.py"
# How long a run gets to stop after Ctrl-C before it is terminated.
STOP_GRACE_SECONDS = 90
# The install's whole pip output (the console shows PipProgress's lines); a progress line every so many
# packages resolved; the lines of pip's output always shown.
PIP_LOG = VENV / "pip-install.log"
PROGRESS_EVERY = 20
PIP_PROBLEM = re.compile(r"(WARNING|ERROR|DEPRECATION|error|\s*×)")

OUTPUTS = [
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
]


def run(command: list[str], env: dict[str, str] | None = None, grace: float = STOP_GRACE_SECONDS) -> None:
    """Run `command` in the project folder, supervised (Ctrl-C stops it cleanly); exit on failure."""
    print(f"\n$ {' '.join(command)}", flush=True)
    code = run_supervised(command, env=env, cwd=ROOT, grace=grace)
    if code != 0:
        sys.exit(f"quickstart: step failed with exit code {code}: {' '.join(command)}")


def admin(arguments: list[str], env: dict[str, str], capture: bool = False) -> str:
    """`sales-admin ...` in the venv (recovery, settings file, summary); its output or '' on failure."""
    completed = subprocess.run(
        [str(PYTHON), "-m", "sales_assets.admin", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=capture,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        print(f"quickstart: sales-admin {arguments[0]} failed (exit {completed.returncode})", file=sys.stderr)
        return ""
    return completed.stdout if capture else ""


def install() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs on whatever python3 the user has
        sys.exit(f"quickstart: Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        print("quickstart: .venv is up to date with pyproject.toml")
        return
    pip_install(["--upgrade", "pip"])
    pip_install(["-e", ".[dev,dashboard]"])
    STAMP.write_text(wanted + "\n")


class PipProgress:
    """pip's line-per-package output as a few progress lines: packages resolved (every PROGRESS_EVERY), the
    start of the install proper and what it installed, with the time since `started`; pip's warnings and
    errors in full, every other line dropped (the whole output is in PIP_LOG)."""

    def __init__(self, started: float) -> None:
        self.started, self.collected = started, 0

    def line(self, text: str, now: float) -> str | None:
        """What to print for one line of pip's output read at `now` (time.monotonic), or None."""
        text = text.rstrip()
        clock = f"  [{now - self.started:4.0f} s]"
        if text.startswith("Collecting "):
            self.collected += 1
            if self.collected % PROGRESS_EVERY == 1:
                return f"{clock} resolving: {self.collected} packages so far (now {text.split()[1]})"
            return None
        if text.startswith("Installing collected packages:"):
            count = len(text.split(":", 1)[1].split(","))
            return f"{clock} installing {count} packages (the longest step: no output until it ends)"
        if text.startswith("Successfully installed"):
            return f"{clock} installed {len(text.split()) - 2} packages"
        if PIP_PROBLEM.match(text):
            return text
        return None


def pip_install(arguments: list[str]) -> None:
    """`pip install ARGUMENTS` in the venv, showing its progress (PipProgress); exits with pip's last lines
    on failure."""
    command = [str(PYTHON), "-m", "pip", "install", "--progress-bar", "off", *arguments]
    print(f"\n$ {' '.join(command)}", flush=True)
    env = dict(os.environ)
    quiet_install_environment(env)
    progress, lines = PipProgress(time.monotonic()), []
    with (
        PIP_LOG.open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as child,
    ):
        for text in child.stdout:
            log.write(text)
            lines = [*lines[-39:], text.rstrip()]
            if (shown := progress.line(text, time.monotonic())) is not None:
                print(shown, flush=True)
    if child.returncode != 0:
        print("\n".join(lines), file=sys.stderr)
        sys.exit(f"quickstart: pip failed with exit code {child.returncode} (whole output: {PIP_LOG})")


def pipeline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home"))
    # Dagster's notices that the CLI commands run here are superseded by `dg`, filtered by their message
    # (sales_assets.quiet_logs gives the reasons); every other warning still shows.
    quiet_environment(env)
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def remember_choices(env: dict[str, str]) -> None:
    """Write SALES_DATA_DIR / SALES_RAW_CSV, when given, to the project's settings file."""
    arguments = ["remember"]
    if env.get("SALES_DATA_DIR"):
        arguments += ["--data-dir", env["SALES_DATA_DIR"]]
    if env.get("SALES_RAW_CSV"):
        arguments += ["--raw-csv", env["SALES_RAW_CSV"]]
    if len(arguments) > 1:
        # `run`, not `admin`: a SALES_RAW_CSV that is no readable file stops the quickstart here.
        run([str(PYTHON), "-m", "sales_assets.admin", *arguments], env)


# `--quick`: a first look in under a minute on a quiet machine. Two models (the champion of the real file
# and the fastest strong one), 3-fold CV once instead of 5-fold x 3, the first three segments (ALL and two
# product lines). Settings through the environment, so the Dagster UI then shows the ml assets as unsynced
# (their code version covers these settings) until a full run.
QUICK_SETTINGS = {
    "SALES_ML__MODELS": '["capped_price_residual", "xgboost"]',
    "SALES_ML__CV_FOLDS": "3",
    "SALES_ML__CV_REPEATS": "1",
}
QUICK_SEGMENTS = 3
QUICK_NOTE = (
    "quick look (--quick): 2 models (capped_price_residual, xgboost), 3-fold CV once, 3 time-series "
    "segments; run without --quick for the full run"
)


def materialize(env: dict[str, str], force: bool, quick: bool) -> None:
    # One command: raw_csv reads the input, then only what is new runs (stale or missing assets by their
    # data and code versions; `--force` runs everything): the cheap chain in that process, training, SHAP
    # and ONNX each in their own (see BENCHMARKS.md), then the segment partitions. It is supervised here.
    command = [str(PYTHON), "-m", "sales_assets.refresh"]
    if force:
        command.append("--force")
    if quick:
        command += ["--max-segments", str(QUICK_SEGMENTS)]
        env = {**env, **QUICK_SETTINGS}
    run(command, {**env, SUPERVISED_ENV: "1"})


def outputs_state(data: Path, since: float) -> list[str]:
    """One line per output folder: files, size, and whether this run updated it."""
    lines = []
    for label, relative in OUTPUTS:
        folder = (data / relative).resolve()  # the Parquet layer is a symlink to its current version
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
        size = sum(p.stat().st_size for p in files)
        newest = max((p.stat().st_mtime for p in files), default=None)
        state = "missing" if newest is None else ("updated now" if newest >= since else "from an earlier run")
        lines.append(
            f"  {label:<26} {len(files):>4} files {size / 2**20:>8.1f} MiB  {state:<19} {data / relative}"
        )
    return lines


def report_interrupt(stopped: Interrupted, env: dict[str, str], since: float) -> None:
    print(mark_canceled(str(PYTHON), stopped, env, ROOT))
    data = Path(
        json.loads(admin(["summary", "--since", str(since)], env, capture=True) or "{}").get(
            "data_dir", ROOT / "data"
        )
    )
    print(f"\nStopped during: {stopped}")
    print(f"State of the outputs (under {data}); each one is whole, old or new, never half-written:")
    print("\n".join(outputs_state(data, since)))
    landed = data / "raw" / "landed" / "CURRENT.json"
    if landed.exists():
        read = json.loads(landed.read_text())
        print(f"\nRaw CSV read: {read['source']} (sha256 {read['sha256']}, {read['bytes']:,} bytes)")
    print(f"\nTo finish the job, run again: {FINISH_COMMAND}")


def summary(env: dict[str, str], since: float) -> None:
    report = json.loads(admin(["summary", "--since", str(since)], env, capture=True) or "{}")
    data = Path(report.get("data_dir", ROOT / "data"))
    print("\nWhat was produced (under " + str(data) + "):")
    print("\n".join(outputs_state(data, since)))
    landed = data / "raw" / "landed" / "CURRENT.json"
    if landed.exists():
        read = json.loads(landed.read_text())
        print(f"\nRaw CSV read: {read['source']} (sha256 {read['sha256']}, {read['bytes']:,} bytes)")
    metrics = data / "output" / "metrics" / "sales_regression_metrics.json"
    if metrics.exists():
        champion = json.loads(metrics.read_text())["champion"]
        cv, holdout = champion["cv"], champion["holdout"]
        print(
            f"\nChampion model: {champion['model']} ({champion['estimator']}): "
            f"CV RMSE {money(cv['rmse_mean'])} +- {money(cv['rmse_std'])}, MAE {money(cv['mae_mean'])}, "
            f"R2 {share(cv['r2_mean'])}; held-out RMSE {money(holdout['rmse'])} (USD)"
        )
    current = data / "models" / "sales_regressor" / "CURRENT"
    if current.exists():
        print(f"Serving bundle: {current.read_text().strip()}")
    failed = report.get("failed_checks", [])
    if failed:
        print(
            f"\nChecks that failed ({len(failed)}); the outputs were written, the checks say what to look at:"
        )
        for check in failed:
            print(f"  {check['severity']:<5} {check['check']}: {check['description']}")
            if check["check"].startswith("sales_drift:"):
                print(
                    "        expected on the real export: its periods differ in sales mix, so the drift "
                    "check fails there; read output/monitoring before trusting the models on new data"
                )
    else:
        print("\nEvery asset check passed.")
    # The leaderboard's page in the model-training view (MLflow 3 opens on its GenAI view otherwise).
    leaderboard = report.get("mlflow_leaderboard") or "http://127.0.0.1:5000"
    print(
        "\nNext: .venv/bin/sales-dagster dev -w workspace.yaml   Dagster UI on http://127.0.0.1:3000 (or: .venv/bin/dg dev)"
        "\n      .venv/bin/sales-serve                            prediction API, docs on http://127.0.0.1:8000/docs"
        "\n      .venv/bin/streamlit run dashboard/app.py         dashboard on http://127.0.0.1:8501"
        f"\n      .venv/bin/mlflow ui --backend-store-uri sqlite:///{data / 'mlflow' / 'mlflow.db'}"
        f"\n                                                       MLflow UI: {leaderboard}"
        "\n      .venv/bin/sales-admin prune                      delete old model bundles and MLflow runs"
        "\n      .venv/bin/python -m pytest                       the test suite"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install-only", action="store_true", help="set up .venv and stop")
    parser.add_argument("--no-install", action="store_true", help="use .venv as it is")
    parser.add_argument("--force", action="store_true", help="rerun every asset, changed or not")
    parser.add_argument("--quick", action="store_true", help=QUICK_NOTE.split(": ", 1)[1])
    args = parser.parse_args()
    started = time.perf_counter()
    if not args.no_install:
        install()
    if args.install_only:
        return
    since = time.time()
    if args.quick:
        print(f"quickstart: {QUICK_NOTE}")
    env = pipeline_env()
    remember_choices(env)
    admin(["recover"], env)
    try:
        materialize(env, args.force, args.quick)
    except Interrupted as stopped:
        report_interrupt(stopped, env, since)
        sys.exit(130)
    summary(env, since)
    if args.quick:
        print(f"\nquickstart: {QUICK_NOTE}")
    print(f"\nquickstart: done in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, Interrupted):  # Ctrl-C outside a run (install, summary): nothing to cancel
        print("\nquickstart: interrupted; nothing was left half-done. To finish: " + FINISH_COMMAND)
        sys.exit(130)
