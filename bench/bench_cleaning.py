"""Benchmark: the streaming Polars cleaning step against a straightforward pandas version of the same
cleaning, on one generated file, in the same run; then the whole raw_csv -> summaries chain on it.

Each measurement runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own.

    .venv/bin/python bench/bench_cleaning.py --rows 5000000

Targets (issue 2): Polars at least 3x faster and at least 4x less peak memory than pandas; the chain
under 1 GiB peak on five million rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POLARS_CLEAN = """
import json, resource, sys, tempfile, time
from pathlib import Path
from sales_assets.ingest.cleaning import clean_to_parquet
from sales_assets.settings import Settings
source, out = Path(sys.argv[1]), Path(sys.argv[2])
settings = Settings()
start, cpu = time.perf_counter(), time.process_time()
with tempfile.TemporaryDirectory(dir=out) as work:
    # Dialect detection (encoding, delimiter, numbers, date order), transcoding and cleaning.
    stats = clean_to_parquet(source, out / "parquet", out / "rejects.parquet", settings.ingest, Path(work))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows_clean": stats.rows_clean, "rows_rejected": stats.rows_rejected,
                  "duplicates": stats.duplicates_removed}))
"""

# The cleaning step as it was before the one export reader (commit 7cda52d: UTF-8 transcoding, no dialect
# detection, no trimming or null tokens), run from a `git archive` of that commit given as argv[3].
BASELINE_CLEAN = """
import json, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from sales_assets.ingest.cleaning import clean_to_parquet
from sales_assets.ingest.encoding import detect_encoding, transcode_to_utf8
from sales_assets.settings import Settings
source, out = Path(sys.argv[1]), Path(sys.argv[2])
settings = Settings()
start, cpu = time.perf_counter(), time.process_time()
with tempfile.TemporaryDirectory(dir=out) as work:
    report = detect_encoding(source, settings.ingest.candidate_encodings)
    csv_path = transcode_to_utf8(source, Path(work) / "utf8.csv", report.encoding)
    stats = clean_to_parquet(csv_path, out / "parquet", out / "rejects.parquet", settings.ingest)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows_clean": stats.rows_clean}))
"""

# The same rules written the way a pandas user would: read everything, then transform in memory.
PANDAS_CLEAN = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
from sales_assets.settings import Settings
source, out = Path(sys.argv[1]), Path(sys.argv[2])
ingest = Settings().ingest
start = time.perf_counter()
df = pd.read_csv(source, encoding="cp850", dtype=str, keep_default_na=False, na_values=[""])
before = len(df)
df = df.drop_duplicates()
duplicates = before - len(df)
reasons = pd.Series("", index=df.index)
for column in ingest.integer_columns + ingest.float_columns:
    values = pd.to_numeric(df[column], errors="coerce")
    reasons[values.isna()] += f"{column} is not a number; "
    if column in ("QUANTITYORDERED", "PRICEEACH"):
        reasons[values <= 0] += f"{column} is not positive; "
    df[column] = values
dates = pd.to_datetime(df["ORDERDATE"], format="%m/%d/%Y %H:%M", errors="coerce")
reasons[dates.isna()] += "ORDERDATE matches no configured date format; "
df["ORDERDATE"] = dates
for column in ingest.required_columns:
    if df[column].dtype == object:
        reasons[df[column].isna()] += f"{column} is blank; "
rejects = df[reasons != ""].assign(reason=reasons[reasons != ""])
clean = df[reasons == ""].drop(columns=ingest.drop_columns)
for column in ingest.fill_unknown_columns:
    clean[column] = clean[column].fillna(ingest.fill_value)
for column in ingest.integer_columns:
    clean[column] = clean[column].astype(np.int64)
clean["YEAR"] = clean["ORDERDATE"].dt.year
clean["MONTH"] = clean["ORDERDATE"].dt.month
clean.to_parquet(out / "parquet", partition_cols=["YEAR"], index=False)
rejects.astype(str).to_parquet(out / "rejects.parquet", index=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows_clean": len(clean), "rows_rejected": len(rejects), "duplicates": duplicates}))
"""

GENERATE = """
import json, resource, sys, time
from sales_assets.ingest.generator import generate_sales_csv
start = time.perf_counter()
info = generate_sales_csv(sys.argv[2] + "/sales.csv", rows=int(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "bytes": info["bytes"], "rows_clean": info["rows"],
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHAIN = """
import json, resource, sys, time
import dagster as dg
from sales_assets.analytics.assets import summaries
from sales_assets.ingest.assets import clean_parquet, raw_csv
from sales_assets.resources import build_resources
from sales_assets.warehouse.defs import duckdb_table
start = time.perf_counter()
result = dg.materialize([raw_csv, clean_parquet, duckdb_table, summaries],
                        resources=build_resources(data_dir=sys.argv[2], raw_csv=sys.argv[1]),
                        instance=dg.DagsterInstance.ephemeral())
seconds = time.perf_counter() - start
rows = result.asset_materializations_for_node("duckdb_table")[0].metadata["dagster/row_count"].value
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows_clean": rows, "success": result.success}))
"""


def measure(code: str, source: Path, out: Path, *extra: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [sys.executable, "-c", code, str(source), str(out), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"measurement failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--skip-pandas", action="store_true", help="only the Polars step and the chain")
    parser.add_argument("--skip-chain", action="store_true", help="leave out the raw_csv -> summaries chain")
    parser.add_argument(
        "--baseline-rev",
        metavar="REV",
        help="also run the cleaning step of this git revision (e.g. 7cda52d, before the export reader) "
        "on the same file, alternating with the current one, --repeat times each",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each cleaning step (medians shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        work = Path(scratch)
        source = work / "sales.csv"
        results = {"generate (sales-generate)": measure(GENERATE, args.rows, work)}
        print(
            f"generated {args.rows:,} rows, {results['generate (sales-generate)']['bytes'] / 2**20:,.0f} MiB"
        )
        baseline_src = work / "baseline_src"
        if args.baseline_rev:
            baseline_src.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.baseline_rev], cwd=ROOT, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(baseline_src)], input=archive, check=True)
        runs: dict[str, list[dict]] = {"polars": [], "baseline": []}
        for _ in range(args.repeat):
            runs["polars"].append(measure(POLARS_CLEAN, source, work / "polars"))
            if args.baseline_rev:
                runs["baseline"].append(measure(BASELINE_CLEAN, source, work / "baseline", str(baseline_src)))
        for name, measured in runs.items():
            if measured:
                results[name] = {
                    key: statistics.median(r[key] for r in measured)
                    for key in ("seconds", "cpu_seconds", "peak_mib")
                } | {"rows_clean": measured[0]["rows_clean"]}
        if not args.skip_pandas:
            results["pandas"] = measure(PANDAS_CLEAN, source, work / "pandas")
        if not args.skip_chain:
            results["chain raw_csv -> summaries"] = measure(CHAIN, source, work / "chain")

    print(
        f"\nmachine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"rows: {args.rows:,}"
    )
    print(f"{'step':<30}{'seconds':>10}{'peak MiB':>12}{'rows':>14}")
    for name, r in results.items():
        print(f"{name:<30}{r['seconds']:>10.2f}{r['peak_mib']:>12.0f}{r['rows_clean']:>14,}")
    if "pandas" in results:
        speed = results["pandas"]["seconds"] / results["polars"]["seconds"]
        memory = results["pandas"]["peak_mib"] / results["polars"]["peak_mib"]
        print(
            f"\npolars vs pandas: {speed:.1f}x faster (target >= 3x), {memory:.1f}x less peak memory (target >= 4x)"
        )
    if "baseline" in results:
        ours, before = results["polars"], results["baseline"]
        print(
            f"\nexport reader vs {args.baseline_rev}: {ours['seconds'] / before['seconds'] - 1:+.1%} wall, "
            f"{ours['cpu_seconds'] / before['cpu_seconds'] - 1:+.1%} CPU"
        )
    if "chain raw_csv -> summaries" in results:
        chain = results["chain raw_csv -> summaries"]
        print(f"chain peak memory: {chain['peak_mib']:.0f} MiB (target < 1024 MiB)")


if __name__ == "__main__":
    main()
