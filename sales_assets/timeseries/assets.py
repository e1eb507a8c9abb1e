"""The assets of group `timeseries`: the segment catalogue that registers the dynamic partitions, and one
forecast-and-risk report per segment partition."""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.metadata import markdown_table, timed
from sales_assets.resources import FILE_LOCK_RETRY, SalesSettingsResource
from sales_assets.timeseries.forecast import SEASONAL_NAIVE, SELECTION_METRIC
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS
from sales_assets.timeseries.reads import (
    UnknownSegmentError,
    load_segment_series,
    require_segment,
    segment_catalogue,
)
from sales_assets.timeseries.report import INSUFFICIENT_DATA, build_report, write_report
from sales_assets.timeseries.series import Segment

GROUP = "timeseries"
SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE = "shipped_forecast_not_worse_than_seasonal_naive"


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "python"},
    deps=["duckdb_table"],
    retry_policy=FILE_LOCK_RETRY,
)
def ts_segments(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """The sales segments that get a time-series report: `ALL`, every PRODUCTLINE, and every
    PRODUCTLINE x COUNTRY pair with orders in at least `timeseries.segment_min_months` months.

    Registers them as the dynamic partitions `sales_segments` of `ts_risk_reports`, adding new segments
    and removing ones the data no longer supports, so the partitions follow the warehouse.
    """
    settings = sales_settings.get()
    min_months = settings.timeseries.segment_min_months
    with duckdb_reader.get_connection() as connection:
        catalogue = segment_catalogue(connection, min_months)
    keys = catalogue.filter("partitioned")["segment"].to_list()
    registered = set(context.instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name))
    added = [k for k in keys if k not in registered]
    removed = sorted(registered - set(keys))
    if added:
        context.instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, added)
    for key in removed:
        context.instance.delete_dynamic_partition(SEGMENTS_PARTITIONS.name, key)
    context.log.info(f"{len(keys)} segments; added {added or 'none'}; removed {removed or 'none'}")
    return dg.MaterializeResult(
        metadata={
            "segments": len(keys),
            "added": len(added),
            "removed": len(removed),
            "segment_min_months": min_months,
            "partition_keys": dg.MetadataValue.json(keys),
            "catalogue": dg.MetadataValue.md(markdown_table(catalogue, max_rows=40)),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"statsmodels", "python"},
    partitions_def=SEGMENTS_PARTITIONS,
    deps=["duckdb_table", ts_segments],
    retry_policy=FILE_LOCK_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE,
            asset="ts_risk_reports",
            description="The shipped forecast's backtest RMSE is at most seasonal naive's.",
        )
    ],
)
def ts_risk_reports(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """Monthly SALES forecast and volatility report of one segment (the partition key).

    Baselines (last value, seasonal naive, training mean) and the configured SARIMA candidates compete
    in a rolling-origin backtest; the best baseline ships unless a SARIMA beats it by a clear margin in
    RMSE (never worse than seasonal naive), with 80%/95% intervals for the next months.
    A GARCH(1,1) on month-on-month returns gives long-run and forecast volatility. Writes
    `output/timeseries/sales_ts_risk_<product>_<country>.json` and `.png`; a short series gets status
    `insufficient_data` instead of a forecast.
    """
    settings = sales_settings.get()
    segment = Segment.from_key(context.partition_key)
    with duckdb_reader.get_connection() as connection:
        try:
            require_segment(connection, segment, settings.timeseries.segment_min_months)
        except UnknownSegmentError as error:
            # A stale or hand-added partition: retrying (the lock retry policy) cannot fix it.
            raise dg.Failure(description=str(error), allow_retries=False) from error
        series = load_segment_series(connection, segment)
    with timed(context.log, f"report {segment.key}") as timing:
        report = build_report(segment, series, settings.timeseries)
        written = write_report(report, settings.timeseries_dir)
    payload = report.payload
    for warning in payload["warnings"]:
        context.log.warning(f"{warning['warning']} (x{warning['count']})")
    risk = payload["risk"]
    metadata: dict = {
        "status": payload["status"],
        "months": payload["data"]["model_months"],
        "zero_months": payload["data"]["n_zero_months"],
        "partial_last_month": payload["data"]["partial_last_month"],
        "garch_exploratory": risk["exploratory"],
        "garch_observations": risk["n_observations"],
        "long_run_volatility_monthly_pct": risk.get("long_run_volatility_monthly_pct"),
        "report_path": dg.MetadataValue.path(str(written.json_path)),
        "plot_path": dg.MetadataValue.path(str(written.png_path)),
        "plot": written.plot_markdown,
        "warnings": len(payload["warnings"]),
        "seconds": timing["seconds"],
    }
    if payload["status"] == INSUFFICIENT_DATA:
        metadata["reason"] = payload["reason"]
        check = dg.AssetCheckResult(
            check_name=SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE,
            passed=True,
            metadata={"status": INSUFFICIENT_DATA, "reason": payload["reason"]},
        )
    else:
        decision = payload["decision"]
        rmse = {row["model"]: row[SELECTION_METRIC] for row in payload["backtest"]["metrics"]}
        shipped_rmse, seasonal_rmse = rmse[decision["shipped_model"]], rmse.get(SEASONAL_NAIVE)
        metadata |= {
            "shipped_model": decision["shipped_model"],
            "sarima_beats_seasonal_naive": decision["sarima_beats_seasonal_naive"],
            "decision": decision["message"],
            "shipped_backtest_rmse": shipped_rmse,
            "seasonal_naive_backtest_rmse": seasonal_rmse,
            "backtest_metrics": dg.MetadataValue.md(markdown_table(report.metrics_table())),
            "forecast": dg.MetadataValue.md(markdown_table(pl.from_pandas(report.forecast.reset_index()))),
        }
        check = dg.AssetCheckResult(
            check_name=SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE,
            passed=seasonal_rmse is None or shipped_rmse <= seasonal_rmse,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"shipped_rmse": shipped_rmse, "seasonal_naive_rmse": seasonal_rmse},
        )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])
