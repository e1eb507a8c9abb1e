"""How the MLflow store grows across refreshes, with and without `sales-admin prune` after each (issue 27).

    .venv/bin/python bench/bench_store_size.py --csv ../shared/data/sales_data_sample.csv [--refreshes 3]
        [--quick] [--keep-bundles N]

Two fresh data folders and Dagster instances in a temporary directory, both reading `--csv`: in each,
`python -m sales_assets.refresh --force` (every asset trained and written again, as a changed export
would) `--refreshes` times; in the second, `python -m sales_assets.admin prune` after every refresh. After
each refresh (and prune) it prints the bytes under `$SALES_DATA_DIR/mlflow` (the sqlite store and its
artifacts) and the ratio pruned / not pruned. `--quick` trains with the quickstart's `--quick` settings
(two models, 3-fold CV once, `scripts/quickstart.py` QUICK_SETTINGS) and one time-series segment, to fit a
busy machine; without it, the default settings and every segment. `--keep-bundles N` sets the pruned
folder's `keep_bundles` (default: the setting's, 5), so prune's effect shows within fewer refreshes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
sys.path.insert(0, str(ROOT / "scripts"))
from quickstart import QUICK_SETTINGS  # noqa: E402  (the one definition of the quick settings)


def environment(folder: Path, csv: Path, quick: bool) -> dict[str, str]:
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home)
    return {
        **os.environ,
        **(QUICK_SETTINGS if quick else {}),
        "PYTHONPATH": str(ROOT),
        "DAGSTER_HOME": str(home),
        "SALES_DATA_DIR": str(folder / "data"),
        "SALES_RAW_CSV": str(csv),
        "SALES_SETTINGS_FILE": "",
        "SALES_SUPERVISED": "1",
        "PYTHONWARNINGS": "ignore::FutureWarning",
    }


def run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise subprocess.CalledProcessError(done.returncode, command)
    return done.stdout


def store_bytes(env: dict[str, str]) -> int:
    folder = Path(env["SALES_DATA_DIR"]) / "mlflow"
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--refreshes", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep-bundles", type=int)
    args = parser.parse_args()
    refresh = [PYTHON, "-m", "sales_assets.refresh", "--force"]
    if args.quick:
        refresh += ["--max-segments", "1"]
    prune = [PYTHON, "-m", "sales_assets.admin", "prune"]
    with tempfile.TemporaryDirectory(prefix="bench-store-") as work:
        plain = environment(Path(work) / "plain", args.csv.resolve(), args.quick)
        pruned = environment(Path(work) / "pruned", args.csv.resolve(), args.quick)
        if args.keep_bundles is not None:
            pruned["SALES_KEEP_BUNDLES"] = str(args.keep_bundles)
        print("| refreshes | store, no prune (MiB) | store, prune after each (MiB) | ratio | load before |")
        print("|---:|---:|---:|---:|---:|")
        for index in range(1, args.refreshes + 1):
            load = os.getloadavg()[0]
            started = time.perf_counter()
            run(refresh, plain)
            run(refresh, pruned)
            said = run(prune, pruned).strip().splitlines()
            without, with_prune = store_bytes(plain), store_bytes(pruned)
            print(
                f"| {index} | {without / 2**20:,.1f} | {with_prune / 2**20:,.1f} | "
                f"{with_prune / without:.2f} | {load:.1f} |",
                flush=True,
            )
            print(
                f"<!-- {time.perf_counter() - started:.0f} s; prune: {said[-1] if said else ''} -->",
                flush=True,
            )


if __name__ == "__main__":
    main()
