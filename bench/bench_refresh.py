"""What a refresh costs when everything is new, when nothing is, and when one row changed (issue 25).

    .venv/bin/python bench/bench_refresh.py --csv /work/wt/shared/data/sales_data_sample.csv
    .venv/bin/python bench/bench_refresh.py --rows 1000000 --one-row-change

Each case runs `python -m sales_assets.refresh` (what `scripts/quickstart.py` runs) on a fresh data folder
and Dagster instance in a temporary directory, with default settings:

- with `--csv`: the full refresh, then the same command again with nothing changed; the baseline, in the
  same run on another fresh folder, is the refresh as the quickstart ran it before (`dagster job execute`
  of `refresh_cheap_chain` and `refresh_heavy`, then `python -m sales_assets.timeseries.backfill`);
- with `--rows N --one-row-change`: a generated export of N rows, the full refresh, then one row changed
  (one order line's STATUS) and the refresh again; it prints what reran.

Wall seconds per command, the machine's load average before each, and the ratios.
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
REFRESH = [PYTHON, "-m", "sales_assets.refresh"]
# What the refresh prints before it runs something (sales_assets.refresh.refresh).
RAN_PREFIXES = ("running in this process: ", "running, a process each: ", "segments to report: ")


def environment(folder: Path, csv: Path) -> dict[str, str]:
    """A fresh data folder and Dagster instance under `folder`, reading `csv`; no settings file."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home)
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DAGSTER_HOME": str(home),
        "SALES_DATA_DIR": str(folder / "data"),
        "SALES_RAW_CSV": str(csv),
        "SALES_SETTINGS_FILE": "",
        "SALES_SUPERVISED": "1",  # as the quickstart runs it: no second supervising process
        "PYTHONWARNINGS": "ignore::FutureWarning",
    }


def timed(command: list[str], env: dict[str, str], label: str) -> tuple[float, list[str]]:
    """Run `command`; print and return its wall seconds and the lines naming what it ran.

    Raises:
        subprocess.CalledProcessError: the command failed (its output's tail is printed first).
    """
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise subprocess.CalledProcessError(done.returncode, command)
    ran = [line for line in done.stdout.splitlines() if line.startswith(RAN_PREFIXES)]
    print(f"{label}: {seconds:.1f} s (load average before: {load:.1f})", flush=True)
    for line in ran:
        print(f"    {line}")
    return seconds, ran


def real_file(csv: Path, work: Path) -> None:
    env = environment(work / "new", csv)
    full, _ = timed(REFRESH, env, "full refresh (python -m sales_assets.refresh)")
    again, _ = timed(REFRESH, env, "refresh with nothing new")
    before = environment(work / "before", csv)
    baseline = 0.0
    for job in ("refresh_cheap_chain", "refresh_heavy"):
        command = [str(Path(PYTHON).with_name("dagster")), "job", "execute", "-m", "sales_assets.definitions"]
        baseline += timed([*command, "-j", job], before, f"baseline: dagster job execute -j {job}")[0]
    baseline += timed([PYTHON, "-m", "sales_assets.timeseries.backfill"], before, "baseline: backfill")[0]
    print(f"baseline (the two jobs and the backfill): {baseline:.1f} s")
    print(f"full refresh / baseline: {full / baseline:.2f}x")
    print(f"nothing-new refresh / full refresh: {again / full:.3f}x")


def one_row_change(rows: int, work: Path) -> None:
    csv = work / "export.csv"
    subprocess.run(
        [PYTHON, "-m", "sales_assets.ingest.generator", "--out", str(csv), "--rows", str(rows)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    env = environment(work / "run", csv)
    full, _ = timed(REFRESH, env, f"full refresh of {rows:,} rows")
    text = csv.read_bytes()
    changed = text.replace(b",Shipped,", b",Resolved,", 1)
    if changed == text:
        raise SystemExit(f"no ',Shipped,' field in {csv} to change")
    csv.write_bytes(changed)
    again, _ = timed(REFRESH, env, "refresh after one row changed (one STATUS Shipped -> Resolved)")
    print(f"one-row change / full refresh: {again / full:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="a real export: full, nothing-new and baseline refreshes")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--one-row-change", action="store_true", help="the generated-export case")
    args = parser.parse_args()
    if args.csv is None and not args.one_row_change:
        parser.error("give --csv PATH or --one-row-change")
    print(
        f"{os.cpu_count()} CPUs; commit {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_refresh_") as folder:
        if args.csv is not None:
            real_file(args.csv.resolve(), Path(folder))
        if args.one_row_change:
            one_row_change(args.rows, Path(folder))


if __name__ == "__main__":
    main()
