"""The assets of group `timeseries`: the segment catalogue that registers the dynamic partitions, and one
forecast-and-risk report per segment partition; the `ALL` partition also reconciles the hierarchy
ALL = sum of the product lines. Wiring only; the modelling lives in the pure modules beside this one.

Why the reconciliation is a step of the `ALL` partition and not an asset of its own: an unpartitioned
asset downstream of the segment partitions would land in `refresh_all` (every unpartitioned asset), which
runs before the segment runs exist, and nothing would run it after them. The `ALL` partition reads the
product lines' series itself and runs their (deterministic) selection again, so it depends on no other run.

The modelling modules (numpy, pandas, statsmodels, arch, matplotlib) are imported inside the asset
bodies, so loading the code location does not pay for them.
"""

import warnings
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.code_versions import group_code_version
from sales_assets.io import write_text_atomic
from sales_assets.metadata import path_metadata, table_metadata, timed
from sales_assets.resources import SalesSettingsResource
from sales_assets.settings import Settings
from sales_assets.timeseries.archive import archive_stale_reports
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS
from sales_assets.timeseries.reads import (
    SEGMENTS_FILE,
    SegmentCatalogue,
    UnknownSegmentError,
    load_segment_series,
)
from sales_assets.timeseries.report_model import HIERARCHY_FILE, INSUFFICIENT_DATA, TimeseriesReport
from sales_assets.timeseries.series import ALL, MonthlySeries, Segment

GROUP = "timeseries"
REPORT_AGREES_WITH_ITSELF = "report_message_model_and_legend_agree"
SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE = "shipped_forecast_not_worse_than_seasonal_naive"
HIERARCHY_IS_COHERENT = "product_lines_sum_to_all"
# Coherent forecasts sum to ALL up to float rounding of sums of a few hundred thousand.
COHERENCE_TOLERANCE = 1e-6
# The candidate table's score columns in the UI: short names, so it fits the metadata column.
CANDIDATE_VIEW = {"selection_rmse": "rmse_sel", "evaluation_rmse": "rmse_eval", "evaluation_mae": "mae_eval"}
CANDIDATE_COLUMNS = {
    "rmse_sel": "selection_rmse: RMSE on the selection origins, USD (chooses the model)",
    "rmse_eval": "evaluation_rmse: RMSE on the evaluation origins, USD (reported)",
    "mae_eval": "evaluation_mae: MAE on the evaluation origins, USD",
}


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "python"},
    deps=["duckdb_table"],
    code_version=group_code_version(GROUP),
)
def ts_segments(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """The sales segments that get a time-series report: `ALL`, every PRODUCTLINE, and every
    PRODUCTLINE x COUNTRY pair with orders in at least `timeseries.segment_min_months` months.

    Registers them as the dynamic partitions `sales_segments` of `ts_risk_reports`, adding new segments
    and removing ones the data no longer supports, so the partitions follow the warehouse. Reports of
    removed segments move to `output/timeseries/archive/`, which the dashboard does not read.
    """
    settings = sales_settings.get()
    min_months = settings.timeseries.segment_min_months
    with duckdb_reader.get_connection() as connection:
        catalogue = SegmentCatalogue.scan(connection, min_months)
    # Written before the partitions change, so every registered partition finds its segment in the file.
    catalogue_path = settings.timeseries_dir / SEGMENTS_FILE
    write_text_atomic(catalogue_path, catalogue.model_dump_json(indent=2) + "\n")
    keys = catalogue.partition_keys
    registered = set(context.instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name))
    added = [k for k in keys if k not in registered]
    removed = sorted(registered - set(keys))
    if added:
        context.instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, added)
    for key in removed:
        context.instance.delete_dynamic_partition(SEGMENTS_PARTITIONS.name, key)
    archived = archive_stale_reports(settings.timeseries_dir, keys)
    context.log.info(
        f"{len(keys)} segments; added {added or 'none'}; removed {removed or 'none'}; "
        f"archived reports {archived or 'none'}"
    )
    return dg.MaterializeResult(
        metadata={
            "segments": len(keys),
            "added": len(added),
            "removed": len(removed),
            "archived_reports": dg.MetadataValue.json(archived),
            "segment_min_months": min_months,
            # The segment key is the partition key; product line and country are its two halves.
            "catalogue": table_metadata(
                pl.DataFrame([row.model_dump() for row in catalogue.segments]).select(
                    "segment", "active_months", "partitioned"
                ),
                max_rows=len(catalogue.segments),
            ),
            "catalogue_path": path_metadata(settings, catalogue_path),
        }
    )


# BackfillPolicy.single_run is Dagster's documented way to run a range of partitions in one run; its "beta"
# status is Dagster's, and the warning would print on every import of the code location.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    report_asset = dg.asset(
        group_name=GROUP,
        kinds={"statsmodels", "python"},
        code_version=group_code_version(GROUP),
        partitions_def=SEGMENTS_PARTITIONS,
        # All the segments a refresh or a backfill asks for run in one run (one process), not one each.
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Each segment's materialisation is logged with its partition; the run returns no output of its own.
        output_required=False,
        deps=["duckdb_table", ts_segments],
        check_specs=[
            dg.AssetCheckSpec(
                REPORT_AGREES_WITH_ITSELF,
                asset="ts_risk_reports",
                blocking=True,
                description="The message, the JSON's shipped model and the plot legend name the same model, and "
                "its reported score comes from evaluation origins that took no part in choosing it.",
            ),
            dg.AssetCheckSpec(
                SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE,
                asset="ts_risk_reports",
                description="On the evaluation origins, the shipped forecast's RMSE is at most seasonal naive's.",
            ),
            dg.AssetCheckSpec(
                HIERARCHY_IS_COHERENT,
                asset="ts_risk_reports",
                blocking=True,
                description="ALL partition: every month of the reconciled forecast, the product lines sum to ALL.",
            ),
        ],
    )


@report_asset
def ts_risk_reports(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    """Monthly SALES forecast and volatility report of each segment of the run (the partition keys).

    Baselines (last value, seasonal naive, training mean) and the configured SARIMA candidates are
    backtested on nested rolling origins: the model is chosen on the selection origins (a SARIMA whose
    fits failed to estimate is not eligible; ties go to the simpler model) and scored on later evaluation
    origins, the score the report gives. The forecast carries conformal 80%/95% intervals from the
    backtest errors, with their measured coverage. A GARCH(1,1) on month-on-month changes gives monthly
    volatility. Writes `output/timeseries/sales_ts_risk_<product>_<country>.json` and `.png`; a short
    series gets status `insufficient_data` instead of a forecast.

    The `ALL` partition also writes `sales_ts_hierarchy.json`: coherent forecasts of ALL and every product
    line, bottom-up or MinT (shrinkage), whichever did better on the selection origins.

    One run covers every partition it is given (single-run backfill policy: a refresh's segments run in
    one process, issue 15); each segment gets its own materialisation with its own metadata, so the
    partitions show per segment in the UI. The segment list and data window come from the catalogue
    `ts_segments` wrote, not from a scan of the table. A segment that fails does not stop the others; the
    run then fails naming each failed segment. Each check has one result per run: it passes when it
    passes for every segment, and its metadata names the segments that failed it.
    """
    settings = sales_settings.get()
    try:
        catalogue = SegmentCatalogue.read(settings.timeseries_dir / SEGMENTS_FILE)
    except (FileNotFoundError, ValueError) as error:
        raise dg.Failure(description=str(error)) from error
    checks: dict[str, dict[str, dg.AssetCheckResult]] = {}
    failed: dict[str, str] = {}
    with duckdb_reader.get_connection() as connection:
        for key in context.partition_keys:
            try:
                metadata, results = segment_report(context, key, catalogue, connection, settings)
            except Exception as error:  # noqa: BLE001 - one segment's failure must not cost the others theirs
                failed[key] = (
                    error.description if isinstance(error, dg.Failure) else f"{type(error).__name__}: {error}"
                )
                context.log.error(f"{key}: {failed[key]}")
                continue
            yield dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata)
            for result in results:
                checks.setdefault(result.check_name, {})[key] = result
    for by_segment in checks.values():
        yield combine_check_results(by_segment)
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(context.partition_keys)} segment(s) failed: "
            + "; ".join(f"{key}: {reason}" for key, reason in failed.items()),
        )


def combine_check_results(by_segment: dict[str, dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """One result of a check for the segments of a run (Dagster takes one per check and run): one
    segment's result as it is; for several, passed when every segment passed, with the failed segments
    and their metadata."""
    if len(by_segment) == 1:
        return next(iter(by_segment.values()))
    failed = {key: result for key, result in by_segment.items() if not result.passed}
    first = next(iter(by_segment.values()))
    severity = (
        dg.AssetCheckSeverity.ERROR
        if any(r.severity == dg.AssetCheckSeverity.ERROR for r in failed.values())
        else first.severity
    )
    return dg.AssetCheckResult(
        check_name=first.check_name,
        passed=not failed,
        severity=severity,
        metadata={
            "segments": len(by_segment),
            "failed_segments": dg.MetadataValue.json(sorted(failed)),
            "failures": dg.MetadataValue.json(
                {
                    key: {name: getattr(value, "value", value) for name, value in result.metadata.items()}
                    for key, result in failed.items()
                }
            ),
        },
    )


def segment_report(
    context: dg.AssetExecutionContext,
    key: str,
    catalogue: SegmentCatalogue,
    connection: Any,
    settings: Settings,
) -> tuple[dict, list[dg.AssetCheckResult]]:
    """Build and write one segment's report; its materialisation metadata and check results.

    Raises:
        dg.Failure: the key is not a segment of the catalogue (a stale or hand-added partition), naming
            the valid ones; or the hierarchy of the ALL partition cannot be reconciled.
    """
    from sales_assets.timeseries.report import (
        build_report,
        candidate_problems_markdown,
        candidate_table,
        forecast_table,
        report_problems,
        write_report,
    )

    segment = Segment.from_key(key)
    try:
        catalogue.require(segment)
    except UnknownSegmentError as error:
        raise dg.Failure(description=str(error)) from error
    series = load_segment_series(connection, segment, catalogue.window)
    product_lines = (
        {
            line: load_segment_series(connection, Segment(line), catalogue.window)
            for line in catalogue.product_lines
        }
        if segment.key == ALL
        else {}
    )
    with timed(context.log, f"report {segment.key}") as timing:
        written = write_report(build_report(segment, series, settings.timeseries), settings.timeseries_dir)
    report = written.report
    # Expected statsmodels/arch warnings (too few observations, convergence) are counted in the report;
    # one line here, the table in the metadata.
    if report.warnings:
        context.log.info(
            f"{segment.key}: {sum(w.count for w in report.warnings)} fitting warnings, summarised in metadata"
        )
    metadata: dict = {
        "status": report.status,
        "months": report.data.model_months,
        "zero_months": report.data.n_zero_months,
        "partial_last_month": report.data.partial_last_month,
        "garch_exploratory": report.risk.exploratory,
        "garch_observations": report.risk.n_observations,
        # Labels of at most ~22 characters and rounded values, so the label column leaves the values room.
        "monthly_volatility_pct": None
        if report.risk.long_run_volatility_monthly_pct is None
        else round(report.risk.long_run_volatility_monthly_pct, 2),
        "report_path": path_metadata(settings, written.json_path),
        "plot_path": path_metadata(settings, written.png_path),
        "plot": written.plot_markdown,
        # Long messages: a Markdown list wraps in the metadata column where a table's cells do not.
        "fitting_warnings": dg.MetadataValue.md(
            "\n".join(f"- {w.count} x {w.warning}" for w in report.warnings) or "none"
        ),
        "seconds": timing["seconds"],
    }
    problems = report_problems(report)
    agrees = dg.AssetCheckResult(
        check_name=REPORT_AGREES_WITH_ITSELF,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "problems": dg.MetadataValue.json(problems),
            "plot_legend": dg.MetadataValue.json(report.plot_legend),
        },
    )
    if report.status == INSUFFICIENT_DATA:
        metadata["reason"] = report.reason
        not_applicable = {"status": INSUFFICIENT_DATA, "reason": report.reason}
        checks = [
            dg.AssetCheckResult(check_name=name, passed=True, metadata=not_applicable)
            for name in (SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE, HIERARCHY_IS_COHERENT)
        ]
        return metadata, [agrees, *checks]
    decision = report.decision
    seasonal = decision.seasonal_naive_score.rmse if decision.seasonal_naive_score else None
    coverage = {f"interval_coverage_{c.level}": c.coverage for c in report.forecast.coverage}
    metadata |= {
        "shipped_model": decision.shipped_model,
        # A sentence or two: Markdown wraps in the metadata column where plain text runs on one line.
        "decision": dg.MetadataValue.md(decision.reason),
        "evaluation_rmse_usd": round(decision.reported_score.rmse),
        "seasonal_naive_rmse_usd": None if seasonal is None else round(seasonal),
        **coverage,
        "coverage_points": report.forecast.coverage[0].points,
        "protocol": dg.MetadataValue.md(report.backtest.protocol.description),
        # USD in whole dollars; each candidate's problems as a wrapping list, not a wide table column.
        "candidates": table_metadata(
            candidate_table(report).select("model", "eligible", *CANDIDATE_VIEW).rename(CANDIDATE_VIEW),
            float_digits=0,
            descriptions=CANDIDATE_COLUMNS,
        ),
        "candidate_problems": dg.MetadataValue.md(candidate_problems_markdown(report)),
        # The 95% band; the 80% band is in the report file and the plot.
        "forecast": table_metadata(
            forecast_table(report).select("month", "forecast", "lower_95", "upper_95"), float_digits=0
        ),
    }
    versus = dg.AssetCheckResult(
        check_name=SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE,
        passed=seasonal is None or decision.reported_score.rmse <= seasonal,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "shipped_evaluation_rmse": decision.reported_score.rmse,
            "seasonal_naive_evaluation_rmse": seasonal,
        },
    )
    coherent, hierarchy_metadata = (
        reconcile_segments(report, product_lines, settings)
        if product_lines
        else (
            dg.AssetCheckResult(
                check_name=HIERARCHY_IS_COHERENT,
                passed=True,
                metadata={"note": "only the ALL partition reconciles the hierarchy"},
            ),
            {},
        )
    )
    return metadata | hierarchy_metadata, [agrees, versus, coherent]


def reconcile_segments(
    report: TimeseriesReport, product_lines: dict[str, MonthlySeries], settings: Settings
) -> tuple[dg.AssetCheckResult, dict]:
    """Write the hierarchy's coherent forecasts beside the ALL report; its check and metadata."""
    from sales_assets.timeseries.hierarchy import coherence_error, hierarchy_report

    try:
        hierarchy = hierarchy_report(report, product_lines, settings.timeseries)
    except ValueError as error:
        raise dg.Failure(description=str(error)) from error
    path = settings.timeseries_dir / HIERARCHY_FILE
    write_text_atomic(path, hierarchy.model_dump_json(indent=2) + "\n")
    coherence = coherence_error(hierarchy)
    check = dg.AssetCheckResult(
        check_name=HIERARCHY_IS_COHERENT,
        passed=coherence <= COHERENCE_TOLERANCE,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"max_relative_difference": coherence, "tolerance": COHERENCE_TOLERANCE},
    )
    metadata = {
        "hierarchy_method": hierarchy.shipped_method,
        "hierarchy_decision": dg.MetadataValue.md(hierarchy.reason),
        "hierarchy_scores": table_metadata(
            pl.DataFrame([s.model_dump(exclude={"evaluation_by_node"}) for s in hierarchy.scores]),
            float_digits=0,
        ),
        "hierarchy_path": path_metadata(settings, path),
    }
    return check, metadata
