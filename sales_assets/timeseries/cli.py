"""`sales-ts-report` / `python -m sales_assets.timeseries`: write one segment's time-series and risk report
from the warehouse without the Dagster UI (the same report the `ts_risk_reports` asset writes)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb

from sales_assets.settings import Settings
from sales_assets.timeseries.reads import UnknownSegmentError, load_segment_series, require_segment
from sales_assets.timeseries.report import build_report, write_report
from sales_assets.timeseries.series import Segment
from sales_serving.contract.local_settings import data_dir_hint


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sales-ts-report", description=__doc__)
    parser.add_argument("--product-line", help="PRODUCTLINE of the segment (omit for ALL)")
    parser.add_argument("--country", help="COUNTRY within the product line (omit for the whole product line)")
    parser.add_argument("--forecast-steps", type=int, help="months to forecast (default: settings)")
    parser.add_argument(
        "--garch-horizon", type=int, help="months of GARCH variance forecast (default: settings)"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="SALES_DATA_DIR to read the warehouse from and write to"
    )
    args = parser.parse_args(argv)
    for flag in ("forecast_steps", "garch_horizon"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.country and not args.product_line:
        parser.error("--country needs --product-line")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    overrides = {
        name: value
        for name, value in (("forecast_steps", args.forecast_steps), ("garch_horizon", args.garch_horizon))
        if value is not None
    }
    config = settings.timeseries.model_copy(update=overrides)
    segment = Segment(args.product_line, args.country)
    if not settings.duckdb_path.is_file():
        print(
            f"error: no warehouse at {settings.duckdb_path}; materialise duckdb_table first. "
            + data_dir_hint(settings.data_dir),
            file=sys.stderr,
        )
        return 2
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        try:
            require_segment(connection, segment, config.segment_min_months)
        except UnknownSegmentError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        series = load_segment_series(connection, segment)
    written = write_report(build_report(segment, series, config), settings.timeseries_dir)
    print(f"{segment.key}: status {written.report.status}")
    if written.report.decision is not None:
        print(written.report.decision.reason)
    print(f"wrote {written.json_path}\nwrote {written.png_path}")
    return 0
