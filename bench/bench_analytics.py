"""Peak memory and wall time of the analytics assets on a generated warehouse of N rows, today's code
against a baseline revision (by default the in-memory analytics before issue 15), in the same run.

    .venv/bin/python bench/bench_analytics.py --rows 1000000
    .venv/bin/python bench/bench_analytics.py --rows 5000000 --workdir /tmp/bench-analytics

Generates the CSV with `sales-generate`, materialises raw_csv -> clean_parquet -> duckdb_table with
today's code in a temp data dir, then materialises each analytics asset on its own in a fresh process,
once with today's code and once with the baseline's (`git archive` of that revision on PYTHONPATH), and
prints each process's wall time, CPU time (user + system, its own and its children's, from `wait4`) and
peak RSS, beside those of a process that only imports the same modules (the floor every step process
pays), and the wall and CPU seconds of the `materialize` call alone (the process's CPU clock, every
thread: the step without the imports). On a shared machine read the CPU seconds beside the wall seconds:
the load stretches the wall.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The last revision whose analytics assets read the table into memory (Polars frames).
DEFAULT_BASELINE = "fcb1897"
ASSETS = [
    "missing_value_report",
    "numeric_descriptive_stats",
    "eda_plots",
    "iqr_filtered_sales",
    "sales_drift",
]

CHILD = """
import sys, time
import dagster as dg
from sales_assets.analytics import assets as module
from sales_assets.resources import build_resources
data_dir, csv, name = sys.argv[1:4]
if name != "imports only":
    start, cpu = time.perf_counter(), time.process_time()
    result = dg.materialize(
        [getattr(module, name)],
        resources=build_resources(data_dir=data_dir, raw_csv=csv),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    # DuckDB's progress bar also writes to stdout: the figures follow a marker on a line of their own.
    print(f"\\nmaterialize: {time.perf_counter() - start:.2f} {time.process_time() - cpu:.2f} {int(result.success)}")
"""

WAREHOUSE = """
import sys
import dagster as dg
from sales_assets.ingest.defs import clean_parquet, raw_csv
from sales_assets.resources import build_resources
from sales_assets.warehouse.defs import duckdb_table
result = dg.materialize(
    [raw_csv, clean_parquet, duckdb_table],
    resources=build_resources(data_dir=sys.argv[1], raw_csv=sys.argv[2]),
    instance=dg.DagsterInstance.ephemeral(),
)
assert result.success
"""


def run_measured(code: str, args: list[str], pythonpath: Path) -> tuple[str, float, float, float]:
    """(stdout, wall seconds, CPU seconds, peak RSS in MiB) of `python -c code args` with `pythonpath` first, run
    from a neutral directory so the `sales_assets` on `pythonpath` is the one imported."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=tempfile.gettempdir(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"child failed ({process.returncode}): {code.strip().splitlines()[-1]} {args}")
    cpu = usage.ru_utime + usage.ru_stime
    return out.strip(), time.perf_counter() - start, cpu, usage.ru_maxrss / 1024


def export_revision(revision: str, target: Path) -> Path:
    """The revision's `sales_assets` and `sales_serving` packages under `target` (via `git archive`)."""
    archive = subprocess.run(
        ["git", "archive", revision, "sales_assets", "sales_serving"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def prepare(rows: int, workdir: Path) -> tuple[Path, Path]:
    """The generated CSV and the data dir with the warehouse built from it, reused when `workdir`
    already holds them for the same row count (building five million rows takes minutes)."""
    csv, data_dir = workdir / f"sales-{rows}.csv", workdir / f"data-{rows}"
    if not csv.is_file():
        start = time.perf_counter()
        staged = csv.with_suffix(".partial.csv")
        subprocess.run(
            [str(ROOT / ".venv/bin/sales-generate"), "--rows", str(rows), "--out", str(staged)],
            check=True,
            capture_output=True,
        )
        staged.rename(csv)
        print(
            f"generate {rows:,} rows: {time.perf_counter() - start:.1f}s, {csv.stat().st_size / 2**20:,.0f} MiB"
        )
    built = data_dir / ".built"
    if not built.is_file():
        _, seconds, _, peak = run_measured(WAREHOUSE, [str(data_dir), str(csv)], ROOT)
        built.touch()
        print(f"warehouse (raw_csv, clean_parquet, duckdb_table): {seconds:.1f}s, peak {peak:,.0f} MiB")
    return csv, data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision of the baseline")
    parser.add_argument(
        "--today",
        help="git revision to measure instead of the working tree (whose uncommitted changes, others' too, "
        "are measured otherwise)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the CSV and warehouse here for the next run")
    parser.add_argument("--assets", nargs="+", choices=ASSETS, default=ASSETS, help="only these assets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as scratch_name:
        scratch = Path(scratch_name)
        workdir = args.workdir or scratch
        workdir.mkdir(parents=True, exist_ok=True)
        csv, data_dir = prepare(args.rows, workdir)
        trees = {
            f"today {args.today}" if args.today else "today": (
                export_revision(args.today, scratch / "today") if args.today else ROOT
            ),
            f"baseline {args.baseline}": export_revision(args.baseline, scratch / "baseline"),
        }
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        columns = ["s", "CPU s", "peak MiB", "materialize s", "materialize CPU s"]
        print(f"\n| asset | {' | '.join(f'{t} {c}' for t in trees for c in columns)} |")
        print("| --- |" + " ---: |" * (len(columns) * len(trees)))
        for name in ["imports only", *args.assets]:
            cells = []
            for tree in trees.values():
                out, seconds, cpu, peak = run_measured(CHILD, [str(data_dir), str(csv), name], tree)
                step = out.rpartition("materialize: ")[2].split() if name != "imports only" else ["", "", "1"]
                if step[2:] != ["1"]:
                    raise RuntimeError(f"{name} failed in {tree}")
                cells += [f"{seconds:.1f}", f"{cpu:.1f}", f"{peak:,.0f}", *step[:2]]
            print(f"| {name} | {' | '.join(cells)} |", flush=True)
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
