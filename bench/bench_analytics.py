"""Time the analytics group's EDA and drift assets on a generated warehouse of N rows (run by hand).

    .venv/bin/python bench/bench_analytics.py --rows 1000000

Generates the CSV, materialises raw_csv -> clean_parquet -> duckdb_table in a temp data dir, then
materialises each analytics asset on its own and prints its wall time and the peak RSS of this process.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import dagster as dg

from sales_assets.analytics.assets import (
    eda_plots,
    eda_report,
    iqr_filtered_sales,
    missing_value_report,
    numeric_descriptive_stats,
    sales_drift,
)
from sales_assets.ingest.defs import clean_parquet, raw_csv
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.resources import build_resources
from sales_assets.warehouse.defs import duckdb_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as scratch:
        data_dir = Path(scratch) / "data"
        csv = Path(scratch) / "sales.csv"
        start = time.perf_counter()
        generate_sales_csv(csv, rows=args.rows)
        print(f"generate {args.rows:,} rows: {time.perf_counter() - start:.1f}s")
        resources = build_resources(data_dir=data_dir, raw_csv=csv)
        instance = dg.DagsterInstance.ephemeral()
        start = time.perf_counter()
        assert dg.materialize(
            [raw_csv, clean_parquet, duckdb_table], resources=resources, instance=instance
        ).success
        print(f"warehouse: {time.perf_counter() - start:.1f}s")
        analytics = [
            missing_value_report,
            numeric_descriptive_stats,
            eda_plots,
            iqr_filtered_sales,
            eda_report,
            sales_drift,
        ]
        upstream = [raw_csv, clean_parquet, duckdb_table, *analytics]
        for asset in analytics:
            start = time.perf_counter()
            result = dg.materialize(upstream, selection=[asset.key], resources=resources, instance=instance)
            assert result.success, asset.key
            print(f"{asset.key.to_user_string():<28} {time.perf_counter() - start:6.1f}s")
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
