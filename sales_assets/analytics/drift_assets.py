"""Drift asset of group `analytics`: PSI of the configured columns between the earliest and the latest
year and between consecutive quarters, with a check that warns or fails on the thresholds in settings."""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.analytics.drift import drift_figure, drift_report, drift_status, drift_table
from sales_assets.analytics.warehouse_reader import read_sales
from sales_assets.io import write_json_atomic
from sales_assets.metadata import markdown_table, save_figure, timed
from sales_assets.resources import FILE_LOCK_RETRY, SalesSettingsResource

PSI_WITHIN_BOUNDS = "psi_within_bounds"
DRIFT_REPORT_FILE = "sales_drift.json"
DRIFT_PLOT_FILE = "sales_drift.png"


def drift_check_result(table: pl.DataFrame, warn: float, fail: float) -> dg.AssetCheckResult:
    """Passes while every PSI is at most `warn`; fails with WARN severity above it and with ERROR
    severity above `fail`, naming the comparisons that crossed."""
    max_psi = float(table["psi"].max()) if table.height else 0.0
    status = drift_status(max_psi, warn, fail)
    crossed = table.filter(pl.col("psi") > warn).sort("psi", descending=True)
    return dg.AssetCheckResult(
        check_name=PSI_WITHIN_BOUNDS,
        passed=status == "ok",
        severity=dg.AssetCheckSeverity.ERROR if status == "fail" else dg.AssetCheckSeverity.WARN,
        metadata={
            "max_psi": max_psi,
            "status": status,
            "warn_above": warn,
            "fail_above": fail,
            "comparisons_above_warn": crossed.height,
            "crossed": dg.MetadataValue.md(markdown_table(crossed, float_digits=3))
            if crossed.height
            else "none",
        },
    )


@dg.asset(
    group_name="analytics",
    deps=["duckdb_table"],
    kinds={"duckdb", "polars", "json"},
    retry_policy=FILE_LOCK_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            PSI_WITHIN_BOUNDS,
            asset="sales_drift",
            description="Every PSI is at most analytics.psi_warn (WARN above it, ERROR above analytics.psi_fail).",
        )
    ],
)
def sales_drift(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """Population stability index of SALES, QUANTITYORDERED and PRICEEACH (settings
    `analytics.drift_columns`) between the earliest and the latest year and between each quarter and
    the next, on quantile bins fixed on the reference period: `output/monitoring/sales_drift.json` and a
    comparison plot."""
    settings = sales_settings.get()
    analytics = settings.analytics
    columns, bins = analytics.drift_columns, analytics.drift_bins
    warn, fail = analytics.psi_warn, analytics.psi_fail
    with timed(context.log, f"PSI of {columns}") as timing:
        sales = read_sales(duckdb_reader, [*columns, "YEAR", "MONTH"])
        table = drift_table(sales, columns, bins, warn, fail)
    report = drift_report(table, bins, warn, fail)
    report_path = write_json_atomic(settings.monitoring_dir / DRIFT_REPORT_FILE, report)
    plot = save_figure(
        drift_figure(sales, table, columns, bins, warn, fail), settings.monitoring_dir / DRIFT_PLOT_FILE
    )
    context.log.info(f"max PSI {report['max_psi']:.3f} ({report['status']})")
    return dg.MaterializeResult(
        metadata={
            "max_psi": report["max_psi"],
            "status": report["status"],
            "comparisons": table.height,
            "comparisons_above_warn": table.filter(pl.col("psi") > warn).height,
            "psi": dg.MetadataValue.md(markdown_table(table, max_rows=table.height, float_digits=3)),
            "plot": plot,
            "report_path": dg.MetadataValue.path(str(report_path)),
            "seconds": timing["seconds"],
        },
        check_results=[drift_check_result(table, warn, fail)],
    )
