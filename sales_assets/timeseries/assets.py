"""The assets of group `timeseries`: the segment catalogue that registers the dynamic partitions, and one
forecast-and-risk report per segment partition; the `ALL` partition also reconciles the hierarchy
ALL = sum of the product lines. Wiring only; the modelling lives in the pure modules beside this one.

Why the reconciliation is a step of the `ALL` partition and not an asset of its own: an unpartitioned
asset downstream of the segment partitions would land in `refresh_all` (every unpartitioned asset), which
runs before the segment runs exist, and nothing would run it after them. Every run backtests every
catalogue segment once (`RunBacktests`): the intervals pool their errors, and the `ALL` partition builds
the product lines' reports from those backtests, so it depends on no other run.

The modelling modules (numpy, pandas, statsmodels, arch, matplotlib) are imported inside the asset
bodies, so loading the code location does not pay for them.
"""

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
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
from sales_serving.contract.formatting import round_share

GROUP = "timeseries"
REPORT_AGREES_WITH_ITSELF = "report_message_model_and_legend_agree"
SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE = "shipped_forecast_not_worse_than_seasonal_naive"
HIERARCHY_IS_COHERENT = "product_lines_sum_to_all"
# Coherent forecasts sum to ALL up to float rounding of sums of a few hundred thousand.
COHERENCE_TOLERANCE = 1e-6
# The candidate table's score columns in the UI: short names, so it fits the metadata column.
# The UI's candidate table: the two RMSEs (the MAE is in the report file), so it fits the metadata column
# with cents and the statsforecast models' names.
CANDIDATE_VIEW = {"selection_rmse": "rmse_sel", "evaluation_rmse": "rmse_eval"}
CANDIDATE_COLUMNS = {
    "rmse_sel": "selection_rmse: RMSE on the selection origins, USD (chooses the model)",
    "rmse_eval": "evaluation_rmse: mean RMSE over the evaluation origins, USD (the shipped rule's is reported)",
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

    The baselines (seasonal naive, last value, training mean) and any configured SARIMA are backtested on
    rolling origins. The reported score is the mean RMSE over the evaluation origins, at each of which
    the rule (a fit that estimated nothing is not eligible; a more complex model needs the margin; ties go
    to the simpler) chose on selection origins before it, with the paired difference to seasonal naive;
    the shipped forecast is chosen the same way on the last origins. Its conformal 80%/95% intervals are
    calibrated on every catalogue segment's level-scaled errors, with their coverage measured at the
    evaluation origins. A GARCH(1,1) on month-on-month changes gives monthly volatility. Writes
    `output/timeseries/sales_ts_risk_<product>_<country>.json` and `.png`; a short series gets status
    `insufficient_data` instead of a forecast.

    The `ALL` partition also writes `sales_ts_hierarchy.json`: coherent forecasts of ALL and every product
    line, bottom-up or MinT (shrinkage), whichever did better before the first evaluation origin.

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
        run = RunBacktests.of(catalogue, connection, settings)
    context.log.info(
        f"backtested {len(run.backtests)} catalogue segments; the intervals pool the scaled errors of "
        f"{len(run.pool)} of them"
    )
    for key in context.partition_keys:
        try:
            metadata, results = segment_report(context, key, catalogue, run, settings)
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
    segment's result as it is; for several, passed when every segment passed, with the failed segments,
    their metadata and a description that gathers theirs."""
    if len(by_segment) == 1:
        return next(iter(by_segment.values()))
    failed = {key: result for key, result in by_segment.items() if not result.passed}
    first = next(iter(by_segment.values()))
    severity = (
        dg.AssetCheckSeverity.ERROR
        if any(r.severity == dg.AssetCheckSeverity.ERROR for r in failed.values())
        else first.severity
    )
    # The quickstart's summary prints a check's description: it says which segments failed and why.
    why = "; ".join(result.description or key for key, result in failed.items())
    return dg.AssetCheckResult(
        check_name=first.check_name,
        passed=not failed,
        severity=severity,
        description=f"{len(failed)} of {len(by_segment)} segments failed: {why}" if failed else None,
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


@dataclass(frozen=True)
class RunBacktests:
    """Every catalogue segment's series and backtest, made once per run: the segment reports' intervals
    pool the scaled errors of all of them (one segment's few errors cannot rank a 95% quantile), and the
    ALL partition's hierarchy reuses the product lines' backtests. A segment whose backtest failed has
    its error here; its own report fails with it, the others go on."""

    series: dict[str, MonthlySeries]
    backtests: dict[str, Any]  # key -> SegmentBacktest, or None when the history is too short
    errors: dict[str, Exception]
    pool: list[Any]  # ScaledErrors

    @classmethod
    def of(cls, catalogue: SegmentCatalogue, connection: Any, settings: Settings) -> "RunBacktests":
        from sales_assets.timeseries.report import interval_pool, segment_backtest

        keys = list(dict.fromkeys([*catalogue.partition_keys, *catalogue.product_lines]))
        series = {
            key: load_segment_series(connection, Segment.from_key(key), catalogue.window) for key in keys
        }
        backtests, errors = {}, {}
        for key, one in series.items():
            try:
                backtests[key] = segment_backtest(Segment.from_key(key), one, settings.timeseries)
            except Exception as error:  # noqa: BLE001 - reported by that segment's own report
                errors[key] = error
        return cls(series, backtests, errors, interval_pool(backtests.values()))


def segment_report(
    context: dg.AssetExecutionContext,
    key: str,
    catalogue: SegmentCatalogue,
    run: RunBacktests,
    settings: Settings,
) -> tuple[dict, list[dg.AssetCheckResult]]:
    """Build and write one segment's report; its materialisation metadata and check results.

    Raises:
        dg.Failure: the key is not a segment of the catalogue (a stale or hand-added partition), naming
            the valid ones; or the hierarchy of the ALL partition cannot be reconciled.
    """
    segment = Segment.from_key(key)
    try:
        catalogue.require(segment)
    except UnknownSegmentError as error:
        raise dg.Failure(description=str(error)) from error
    if key in run.errors:
        raise run.errors[key]
    written, seconds = build_and_write(context, segment, run, settings)
    report = written.report
    metadata = report_metadata(written, settings, seconds)
    agrees = agreement_check(report)
    if report.status == INSUFFICIENT_DATA:
        metadata["reason"] = report.reason
        not_applicable = {"status": INSUFFICIENT_DATA, "reason": report.reason}
        checks = [
            dg.AssetCheckResult(check_name=name, passed=True, metadata=not_applicable)
            for name in (SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE, HIERARCHY_IS_COHERENT)
        ]
        return metadata, [agrees, *checks]
    metadata |= forecast_metadata(report)
    if segment.key != ALL:
        coherent = dg.AssetCheckResult(
            check_name=HIERARCHY_IS_COHERENT,
            passed=True,
            metadata={"note": "only the ALL partition reconciles the hierarchy"},
        )
        return metadata, [agrees, versus_seasonal_naive_check(report), coherent]
    coherent, hierarchy_metadata = reconcile_segments(report, catalogue.product_lines, run, settings)
    return metadata | hierarchy_metadata, [agrees, versus_seasonal_naive_check(report), coherent]


def build_and_write(
    context: dg.AssetExecutionContext, segment: Segment, run: RunBacktests, settings: Settings
) -> tuple[Any, float]:
    """The written report (JSON and PNG) and the seconds it took; one log line for the fitting warnings."""
    from sales_assets.timeseries.report import build_report, write_report

    key = segment.key
    with timed(context.log, f"report {key}") as timing:
        report = build_report(segment, run.series[key], settings.timeseries, run.backtests[key], run.pool)
        written = write_report(report, settings.timeseries_dir)
    # Expected statsmodels/arch warnings (too few observations, convergence) are counted in the report;
    # one line here, the table in the metadata.
    if written.report.warnings:
        context.log.info(
            f"{segment.key}: {sum(w.count for w in written.report.warnings)} fitting warnings, summarised in "
            "metadata"
        )
    return written, timing["seconds"]


def report_metadata(written: Any, settings: Settings, seconds: float) -> dict:
    """What every report's materialisation shows: the data, the risk summary, the files and the plot."""
    report = written.report
    return {
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
        "seconds": seconds,
    }


def agreement_check(report: TimeseriesReport) -> dg.AssetCheckResult:
    from sales_assets.timeseries.report import report_problems

    problems = report_problems(report)
    return dg.AssetCheckResult(
        check_name=REPORT_AGREES_WITH_ITSELF,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or None,
        metadata={
            "problems": dg.MetadataValue.json(problems),
            "plot_legend": dg.MetadataValue.json(report.plot_legend),
        },
    )


def forecast_metadata(report: TimeseriesReport) -> dict:
    """The decision, the per-origin scores with the paired comparison, the candidates and the forecast."""
    from sales_assets.timeseries.report import (
        candidate_problems_markdown,
        candidate_table,
        forecast_table,
        origin_score_table,
    )

    decision, evaluation = report.decision, report.decision.evaluation
    return {
        "shipped_model": decision.shipped_model,
        # A sentence or two: Markdown wraps in the metadata column where plain text runs on one line.
        "decision": dg.MetadataValue.md(decision.reason),
        "evaluation_rmse_usd": round(evaluation.mean_rmse),
        "seasonal_naive_rmse_usd": None
        if evaluation.seasonal_naive_mean_rmse is None
        else round(evaluation.seasonal_naive_mean_rmse),
        "rmse_minus_naive_usd": None
        if evaluation.mean_difference is None
        else round(evaluation.mean_difference),
        "difference_sd_usd": None if evaluation.difference_sd is None else round(evaluation.difference_sd),
        "evaluation_origins": len(evaluation.origins),
        "evaluation_points": evaluation.points,
        # Markdown wraps in the metadata column where plain text runs on one line.
        "evaluation_note": dg.MetadataValue.md(evaluation.note),
        # The months each choice saw and the per-origin differences are in the report file (the mean
        # difference is `rmse_minus_naive_usd`); the UI's table keeps to what fits.
        "origin_scores": table_metadata(
            origin_score_table(report)
            .select("origin", "chosen", "rmse", "seasonal_naive_rmse")
            .rename({"seasonal_naive_rmse": "naive_rmse"})
        ),
        **{f"interval_coverage_{c.level}": round_share(c.coverage) for c in report.forecast.coverage},
        "coverage_points": report.forecast.coverage[0].points,
        "protocol": dg.MetadataValue.md(report.backtest.protocol.description),
        # USD to the cent; each candidate's problems as a wrapping list, not a wide table column.
        "candidates": table_metadata(
            candidate_table(report).select("model", "eligible", *CANDIDATE_VIEW).rename(CANDIDATE_VIEW),
            descriptions=CANDIDATE_COLUMNS,
        ),
        "candidate_problems": dg.MetadataValue.md(candidate_problems_markdown(report)),
        # The 95% band; the 80% band is in the report file and the plot.
        "forecast": table_metadata(
            forecast_table(report).select("month", "forecast", "lower_95", "upper_95")
        ),
    }


def versus_seasonal_naive_check(report: TimeseriesReport) -> dg.AssetCheckResult:
    """Passes when the rule's mean RMSE over the evaluation origins is at most seasonal naive's; the
    metadata carries the paired difference, its spread and a sentence saying why it failed."""
    evaluation = report.decision.evaluation
    naive = evaluation.seasonal_naive_mean_rmse
    passed = naive is None or evaluation.mean_rmse <= naive
    return dg.AssetCheckResult(
        check_name=SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if passed else worse_than_naive(report),
        metadata={
            "shipped_evaluation_rmse": evaluation.mean_rmse,
            "seasonal_naive_evaluation_rmse": naive,
            "mean_difference": evaluation.mean_difference,
            "difference_sd": evaluation.difference_sd,
            "origins": len(evaluation.origins),
            "why": "" if passed else worse_than_naive(report),
        },
    )


def worse_than_naive(report: TimeseriesReport) -> str:
    """Why the check failed, in one sentence a summary can show."""
    evaluation = report.decision.evaluation
    worse = [s.origin for s in evaluation.origins if s.difference is not None and s.difference > 0]
    chosen = sorted({s.shipped_model for s in evaluation.origins})
    return (
        f"{report.segment.key}: the rule's choices ({', '.join(chosen)}) average RMSE {evaluation.mean_rmse:,.0f} "
        f"against seasonal naive's {evaluation.seasonal_naive_mean_rmse:,.0f} over {len(evaluation.origins)} "
        f"origin(s); worse at {len(worse)} of them"
    )


def reconcile_segments(
    report: TimeseriesReport, product_lines: list[str], run: RunBacktests, settings: Settings
) -> tuple[dg.AssetCheckResult, dict]:
    """Write the hierarchy's coherent forecasts beside the ALL report; its check and metadata."""
    from sales_assets.timeseries.hierarchy import coherence_error, hierarchy_report

    try:
        hierarchy = hierarchy_report(
            report,
            {line: run.series[line] for line in product_lines},
            settings.timeseries,
            run.backtests,
            run.pool,
        )
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
            pl.DataFrame([s.model_dump(exclude={"evaluation_by_node"}) for s in hierarchy.scores])
        ),
        "hierarchy_path": path_metadata(settings, path),
    }
    return check, metadata
