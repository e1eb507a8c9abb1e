"""Benchmark: `dagster asset materialize --select raw_csv,clean_parquet` on a generated UTF-8 export, whole
process, against a plain pandas script and one Polars pass in the same run; then the same command on a file
that is 99% exact duplicates (the distinct rows repeated).

The pandas baseline is the plain script a pandas user would write: `pd.read_csv(source,
dtype={"POSTALCODE": str})` with pandas' default dtype inference (POSTALCODE as text: it mixes digits and
letters and its blanks are filled with a string), STATE and POSTALCODE blanks filled with "Unknown",
ORDERDATE parsed with its one format, then `to_parquet` partitioned by YEAR. The one Polars pass reads the
CSV as text, parses ORDERDATE and writes the partitioned Parquet: the floor for the cleaning step.

Every measurement is its own process run under `/usr/bin/time`, so wall seconds, CPU seconds (user + system)
and peak resident memory (the largest process of the tree) are its own. The machine may be shared: CPU
seconds are the steadier figure, runs alternate between the kinds, and medians of `--repeat` runs are shown.

    .venv/bin/python bench/bench_cleaning.py --rows 5000000 --repeat 2

Targets: the command within 2x of the one Polars pass (issue 25; the pandas script is shown as information)
and under 1 GiB; the cleaning step's own work within 2x of the one Polars pass (issue 14) and, with
`--baseline-rev`, within 1.10x of that revision's (issue 21, the reader's cost). Issue 15: the duplicated
file under 1 GiB like the distinct one. The load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DUPLICATED_SHARE = 0.99

# The plain script a pandas user would write: read (pandas infers the dtypes; POSTALCODE as text, since
# it mixes digits and letters and is filled with a string), fill the blanks, parse the dates, partitioned
# Parquet.
PANDAS = """
import sys
import pandas as pd
source, out = sys.argv[1], sys.argv[2]
df = pd.read_csv(source, dtype={"POSTALCODE": str})
df[["STATE", "POSTALCODE"]] = df[["STATE", "POSTALCODE"]].fillna("Unknown")
df["ORDERDATE"] = pd.to_datetime(df["ORDERDATE"], format="%m/%d/%Y %H:%M")
df["YEAR"] = df["ORDERDATE"].dt.year
df.to_parquet(out, partition_cols=["YEAR"], index=False)
"""

# One Polars pass that reads the CSV and writes the partitioned Parquet: the floor for the cleaning step.
POLARS_ONE_PASS = """
import sys
import polars as pl
source, out = sys.argv[1], sys.argv[2]
date = pl.col("ORDERDATE").str.to_datetime("%m/%d/%Y %H:%M")
(pl.scan_csv(source, infer_schema=False)
   .with_columns(date, date.dt.year().alias("YEAR"))
   .sink_parquet(pl.PartitionBy(out, key="YEAR", include_key=False), mkdir=True, engine="streaming"))
"""

# The cleaning step's own work (the function `clean_parquet` calls), without Dagster around it.
CLEAN_STEP = """
import sys
from pathlib import Path
from sales_assets.ingest.cleaning import clean_to_parquet
from sales_assets.settings import Settings
source, out = Path(sys.argv[1]), Path(sys.argv[2])
stats = clean_to_parquet(source, out / "parquet", out / "rejects.parquet", Settings().ingest, out)
print(stats.balance)
"""


def timed_run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Run `command` under GNU time: wall s, CPU s (user + system), peak MiB of its largest process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        completed = subprocess.run(
            ["/usr/bin/time", "-o", report.name, "-f", "%e %U %S %M", *command],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"{command[:4]} failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}")
        wall, user, system, peak_kib = report.read().split()[-4:]
    return {
        "wall_s": float(wall),
        "cpu_s": float(user) + float(system),
        "peak_mib": int(peak_kib) / 1024,
        "output": completed.stdout + completed.stderr,
    }


def python_script(code: str, source: Path, out: Path, src: Path = ROOT) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return timed_run([sys.executable, "-c", code, str(source), str(out)], src, {"PYTHONPATH": str(src)})


def materialize(source: Path, work: Path, src: Path = ROOT) -> dict:
    """`dagster asset materialize --select raw_csv,clean_parquet` with a fresh data folder and instance."""
    shutil.rmtree(work, ignore_errors=True)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home)
    env = {
        "SALES_DATA_DIR": str(work / "data"),
        "SALES_RAW_CSV": str(source),
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(src),
    }
    command = [str(VENV_BIN / "dagster"), "asset", "materialize", "--select", "raw_csv,clean_parquet"]
    # A failed run exits non-zero, which `timed_run` reports.
    return timed_run([*command, "-m", "sales_assets.definitions"], src, env)


def generate_utf8(rows: int, target: Path) -> None:
    """A generated export (code page 850 like the real file) re-encoded as UTF-8."""
    cp850 = target.with_suffix(".cp850.csv")
    subprocess.run(
        [str(VENV_BIN / "sales-generate"), "--rows", str(rows), "--out", str(cp850), "--force"],
        check=True,
        capture_output=True,
    )
    with (
        open(cp850, encoding="cp850", newline="") as inp,
        open(target, "w", encoding="utf-8", newline="") as out,
    ):
        shutil.copyfileobj(inp, out, 1 << 20)
    cp850.unlink()


def repeat_rows(source: Path, distinct: int, rows: int, target: Path) -> None:
    """`target`: the header of `source`, then its first `distinct` records repeated until there are
    `rows` (an export appended to itself over and over: 1 - distinct/rows of it exact duplicates)."""
    with open(source, "rb") as handle:
        header = handle.readline()
        body = b"".join(handle.readline() for _ in range(distinct))
    with open(target, "wb") as out:
        out.write(header)
        for _ in range(rows // distinct):
            out.write(body)
        lines = body.splitlines(keepends=True)
        out.write(b"".join(lines[: rows % distinct]))


def median(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "cpu_s", "peak_mib")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--csv", type=Path, help="an existing UTF-8 export of --rows rows (skips generating)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each kind, alternating (medians shown)"
    )
    parser.add_argument(
        "--baseline-rev",
        metavar="REV",
        action="append",
        default=[],
        help="also run the command and the cleaning step of this git revision on the same files, alternating "
        "with the current ones (repeatable; the first is the reader's-cost baseline)",
    )
    parser.add_argument(
        "--skip-pandas", action="store_true", help="leave out the pandas script (information only)"
    )
    parser.add_argument("--skip-duplicates", action="store_true", help="leave out the 99%% duplicates file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        work = Path(scratch)
        source = args.csv or work / "sales.csv"
        if not args.csv:
            generate_utf8(args.rows, source)
        duplicated = work / "duplicated.csv"
        if not args.skip_duplicates:
            repeat_rows(source, round(args.rows * (1 - DUPLICATED_SHARE)), args.rows, duplicated)
        trees = {}
        for rev in args.baseline_rev:
            trees[rev] = work / f"baseline_src_{rev}"
            trees[rev].mkdir()
            archive = subprocess.run(
                ["git", "archive", rev], cwd=ROOT, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(trees[rev])], input=archive, check=True)
        kinds = {
            "pandas script (read, fill, dates, partitioned Parquet)": lambda: python_script(
                PANDAS, source, work / "out"
            ),
            "one Polars pass (scan_csv -> partitioned Parquet)": lambda: python_script(
                POLARS_ONE_PASS, source, work / "out"
            ),
            "cleaning step's own work (clean_to_parquet)": lambda: python_script(
                CLEAN_STEP, source, work / "out"
            ),
            "materialize raw_csv,clean_parquet": lambda: materialize(source, work / "run"),
        }
        if args.skip_pandas:
            del kinds["pandas script (read, fill, dates, partitioned Parquet)"]
        for rev, tree in trees.items():
            kinds[f"materialize at {rev}"] = lambda tree=tree: materialize(source, work / "run", tree)
            kinds[f"cleaning step at {rev}"] = lambda tree=tree: python_script(
                CLEAN_STEP, source, work / "out", tree
            )
        if not args.skip_duplicates:
            kinds["materialize, 99% duplicates"] = lambda: materialize(duplicated, work / "run")
            kinds["cleaning step, 99% duplicates"] = lambda: python_script(
                CLEAN_STEP, duplicated, work / "out"
            )
        runs: dict[str, list[dict]] = {name: [] for name in kinds}
        print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        for round_ in range(args.repeat):
            for name, run in kinds.items():
                runs[name].append(run())
                print(
                    f"[{round_ + 1}/{args.repeat}] {name}: {json.dumps(median(runs[name][-1:]))}", flush=True
                )
        results = {name: median(measured) for name, measured in runs.items()}

    pandas = results.get("pandas script (read, fill, dates, partitioned Parquet)")
    one_pass = results["one Polars pass (scan_csv -> partitioned Parquet)"]
    print(f"\n{args.rows:,} rows, medians of {args.repeat}, load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"{'what':<56}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}  {'CPU vs pandas':>14}{'CPU vs 1 pass':>14}"
    )
    for name, r in results.items():
        versus_pandas = f"{r['cpu_s'] / pandas['cpu_s']:>13.2f}x" if pandas else f"{'':>14}"
        print(
            f"{name:<56}{r['wall_s']:>8.1f}{r['cpu_s']:>8.1f}{r['peak_mib']:>10.0f}  "
            f"{versus_pandas}{r['cpu_s'] / one_pass['cpu_s']:>13.2f}x"
        )
    command = results["materialize raw_csv,clean_parquet"]
    step = results["cleaning step's own work (clean_to_parquet)"]
    print(
        f"\ncommand vs one Polars pass: {command['cpu_s'] / one_pass['cpu_s']:.2f}x CPU, "
        f"{command['wall_s'] / one_pass['wall_s']:.2f}x wall (target <= 2); peak {command['peak_mib']:.0f} MiB "
        f"(target < 1024)\ncleaning step vs one Polars pass: {step['cpu_s'] / one_pass['cpu_s']:.2f}x CPU, "
        f"{step['wall_s'] / one_pass['wall_s']:.2f}x wall (target <= 2)"
    )
    if pandas:
        print(
            f"command vs pandas script (information): {command['cpu_s'] / pandas['cpu_s']:.2f}x CPU, "
            f"{command['wall_s'] / pandas['wall_s']:.2f}x wall"
        )
    for rev in args.baseline_rev:
        base, base_command = results[f"cleaning step at {rev}"], results[f"materialize at {rev}"]
        print(
            f"at {rev}: cleaning step {base['cpu_s'] / one_pass['cpu_s']:.2f}x, command "
            f"{base_command['cpu_s'] / one_pass['cpu_s']:.2f}x one Polars pass (CPU); this tree's step "
            f"{step['cpu_s'] / base['cpu_s']:.2f}x, command {command['cpu_s'] / base_command['cpu_s']:.2f}x its CPU"
        )
    if args.baseline_rev:
        rev = args.baseline_rev[0]
        base = results[f"cleaning step at {rev}"]
        print(
            f"cleaning step vs {rev}: {step['cpu_s'] / base['cpu_s']:.2f}x CPU, "
            f"{step['wall_s'] / base['wall_s']:.2f}x wall (the reader's cost; target <= 1.10)"
        )
    if not args.skip_duplicates:
        duplicates = results["materialize, 99% duplicates"]
        print(
            f"99% duplicates: peak {duplicates['peak_mib']:.0f} MiB (target < 1024), "
            f"{duplicates['cpu_s'] / command['cpu_s']:.2f}x the distinct file's CPU"
        )


if __name__ == "__main__":
    main()
