"""One segment's time-series and risk report: the rolling-origin backtest, the decision, the shipped
forecast with conformal intervals (pooled across segments) and their measured coverage, and the GARCH
summary, as a typed `TimeseriesReport`; written as `sales_ts_risk_<product>_<country>.json` plus a PNG
whose legend the JSON records.

pandas and matplotlib are imported inside the functions that use them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from sales_assets.io import write_text_atomic
from sales_assets.metadata import pyplot, save_figure, thousands_formatter
from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries import backtest
from sales_assets.timeseries.backtest import EVALUATION, SELECTION, actuals, non_negative
from sales_assets.timeseries.forecast import (
    SEASONAL_NAIVE,
    SELECTION_METRIC,
    Candidate,
    WarningLog,
    candidates_from_settings,
    forecast_errors,
)
from sales_assets.timeseries.intervals import (
    INTERVAL_LEVELS,
    INTERVAL_METHOD,
    BacktestIntervals,
    ScaledErrors,
    at_level,
    interval_bounds,
    level_before,
    measured_coverage_points,
    pooled_calibration,
    scaled_errors,
)
from sales_assets.timeseries.report_model import (
    INSUFFICIENT_DATA,
    OK,
    Backtest,
    CandidateResult,
    Coverage,
    DataSummary,
    Errors,
    ForecastPoint,
    MonthValue,
    OriginForecast,
    Protocol,
    Risk,
    SegmentInfo,
    ShippedForecast,
    TimeseriesReport,
    WarningCount,
)
from sales_assets.timeseries.risk import risk_summary
from sales_assets.timeseries.selection import (
    Selection,
    choose,
    decision_reason,
    forecast_label,
    origin_span,
)
from sales_assets.timeseries.series import MonthlySeries, Segment

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def required_months(config: TimeseriesSettings) -> int:
    """Months a series needs: the configured minimum, and enough for the backtest with one evaluation
    origin (a longer series gets more, up to `evaluation_origins`; the report says how many)."""
    protocol = backtest.required_months(
        config.backtest_horizon, config.selection_origins, 1, config.backtest_origin_step
    )
    return max(config.min_history_months, protocol)


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null: the report must stay valid JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _next_months(last: date, steps: int) -> list[str]:
    months, year, month = [], last.year, last.month
    for _ in range(steps):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        months.append(f"{year:04d}-{month:02d}-01")
    return months


def protocol_description(protocol: Protocol, evaluation_note: str) -> str:
    return (
        f"Each model is fitted on every month before an origin and forecasts {protocol.horizon} months. At "
        f"each of the evaluation {origin_span(protocol.evaluation_origins)} the rule chooses a model on "
        "selection origins whose forecast months all come before it; the reported score is the mean RMSE of "
        f"those choices ({evaluation_note}). The shipped forecast is chosen the same way on the "
        f"{origin_span(protocol.selection_origins)} (forecast months up to {protocol.selection_last_month}). "
        "Intervals: the shipped models' backtest errors of every segment, each over its segment's level, "
        "calibrated together; coverage: at each evaluation origin, the shipped model's error against "
        "intervals calibrated on the pooled errors whose months all come before it."
    )


@dataclass(frozen=True)
class SegmentBacktest:
    """One segment's backtest and choice: what its report's forecast sections and the interval pool are
    made from. Its warnings go to the segment's report."""

    segment: str
    values: np.ndarray  # monthly sales the models see
    labels: list[str]  # YYYY-MM of each value
    origins: backtest.Origins
    candidates: list[Candidate]
    selection: Selection
    warning_log: WarningLog

    @property
    def level(self) -> float:
        """The segment's level: the mean of the year before its first calibration origin, known before
        every origin, so dividing by it compares segments without scaling errors by later months."""
        return level_before(self.values, self.origins.calibrated[0])

    @property
    def shipped_runs(self) -> dict[int, backtest.OriginRun]:
        return self.selection.runs[self.selection.decision.shipped_model]

    def scaled_errors(self) -> ScaledErrors:
        """The shipped model's errors at the calibration origins (`Origins.calibrated`), over the segment's
        level."""
        horizon = self.origins.horizon
        runs = self.shipped_runs  # a fitted model has runs only where its scores are used (`choose`)
        kept = [o for o in self.origins.calibrated if o in runs and runs[o].forecasts is not None]
        return scaled_errors(
            self.segment,
            _errors_at(runs, self.values, kept, horizon),
            [self.level] * len(kept),
            [self.labels[o + horizon - 1] for o in kept],
        )


def segment_backtest(
    segment: Segment, series: MonthlySeries, config: TimeseriesSettings
) -> SegmentBacktest | None:
    """Backtest and choose on the months the models see; None when they are too few (see `required_months`)."""
    history = series.model_sales
    if len(history) < required_months(config):
        return None
    values = history.to_numpy(dtype=float)
    labels = [month.strftime("%Y-%m") for month in history.index]
    warning_log = WarningLog()
    candidates = candidates_from_settings(
        config.sarima_candidates, config.sarima_maxiter, warning_log, config.statsforecast_candidates
    )
    origins = backtest_origins(len(values), config)
    selection = choose(
        values, candidates, origins, labels, config.forecast_steps, config.sarima_min_improvement
    )
    return SegmentBacktest(segment.key, values, labels, origins, candidates, selection, warning_log)


def interval_pool(backtests: Iterable[SegmentBacktest | None]) -> list[ScaledErrors]:
    """The scaled errors the segment reports' intervals are calibrated on: every backtested segment's."""
    return [b.scaled_errors() for b in backtests if b is not None]


def build_report(
    segment: Segment,
    series: MonthlySeries,
    config: TimeseriesSettings,
    backtested: SegmentBacktest | None = None,
    pool: Sequence[ScaledErrors] | None = None,
) -> TimeseriesReport:
    """Backtest, choose, forecast and fit GARCH for one segment; a short series gets status
    `insufficient_data` with the reason, and still its history and return statistics.

    `backtested` is this segment's `segment_backtest` when already made; `pool` the scaled errors of every
    segment the intervals are calibrated on (default: this segment's own, and the report says so)."""
    started = time.perf_counter()
    history = series.model_sales
    backtested = backtested or segment_backtest(segment, series, config)
    warning_log = backtested.warning_log if backtested else WarningLog()
    needed = required_months(config)
    fields: dict[str, Any] = {
        "segment": SegmentInfo(key=segment.key, product_line=segment.product_line, country=segment.country),
        "status": OK,
        "data": DataSummary(
            first_order_date=series.first_order_date.isoformat(),
            last_order_date=series.last_order_date.isoformat(),
            months=len(series.sales),
            model_months=len(history),
            zero_months=series.zero_months,
            n_zero_months=len(series.zero_months),
            partial_last_month=series.partial_last_month,
            partial_month_excluded=series.sales.index[-1].strftime("%Y-%m")
            if series.partial_last_month
            else None,
            required_months=needed,
            total_sales=float(history.sum()),
        ),
        "history": [
            MonthValue(month=month.strftime("%Y-%m-%d"), sales=float(value))
            for month, value in series.sales.items()
        ],
        "settings": _json_safe(config.model_dump(exclude={"segment_min_months"})),
    }
    if backtested is None:
        fields["status"] = INSUFFICIENT_DATA
        fields["reason"] = (
            f"{len(history)} complete months; a backtest of {config.selection_origins} selection origins and "
            f"one evaluation origin with horizon {config.backtest_horizon} and a seasonal naive baseline "
            f"need {needed} (min_history_months={config.min_history_months})"
        )
    else:
        fields |= forecast_sections(backtested, config, pool or [backtested.scaled_errors()])
    risk = risk_summary(
        history, config.garch_horizon, config.garch_min_observations, config.garch_maxiter, warning_log
    )
    return TimeseriesReport(
        **fields,
        risk=Risk(**_json_safe(risk)),
        warnings=[WarningCount(**w) for w in warning_log.as_list()],
        seconds=round(time.perf_counter() - started, 3),
    )


def backtest_origins(length: int, config: TimeseriesSettings) -> backtest.Origins:
    return backtest.rolling_origins(
        length,
        config.backtest_horizon,
        config.selection_origins,
        config.evaluation_origins,
        config.backtest_origin_step,
    )


def _errors_at(
    runs: dict[int, backtest.OriginRun], values: np.ndarray, origins: list[int], horizon: int
) -> np.ndarray:
    """(origins, horizon) of actual minus forecast at `origins` where the run has a forecast."""
    kept = [o for o in origins if runs[o].forecasts is not None]
    forecasts = np.vstack([runs[o].forecasts for o in kept]) if kept else np.empty((0, horizon))
    return actuals(values, kept, horizon) - forecasts


def candidate_results(
    selection: Selection, candidates: list[Candidate], values: np.ndarray, origins: backtest.Origins
) -> list[CandidateResult]:
    """Each candidate on the shipped choice's selection origins and at every evaluation origin."""
    decision, results = selection.decision, []
    evaluation_actual = actuals(values, origins.evaluation, origins.horizon)
    for candidate in candidates:
        runs = selection.runs[candidate.name]
        chosen_on = backtest.combine([runs[o] for o in origins.selection])
        by_origin = [runs[o] for o in origins.evaluation]
        rmse = [
            None if run.forecasts is None else float(np.sqrt(np.mean((row - run.forecasts[0]) ** 2)))
            for run, row in zip(by_origin, evaluation_actual, strict=True)
        ]
        evaluated = backtest.combine(by_origin)
        results.append(
            CandidateResult(
                model=candidate.name,
                kind=candidate.kind,
                parameters=candidate.parameters,
                eligible=candidate.name in decision.selection_rmse,
                problems=[*chosen_on.problems, *selection.final_fit_problems.get(candidate.name, [])],
                failure=chosen_on.failure,
                selection=None
                if chosen_on.forecasts is None
                else Errors(
                    **forecast_errors(
                        actuals(values, origins.selection, origins.horizon), chosen_on.forecasts
                    )
                ),
                evaluation=None
                if evaluated.forecasts is None
                else Errors(
                    **forecast_errors(
                        actuals(values, origins.evaluation, origins.horizon), evaluated.forecasts
                    )
                ),
                evaluation_rmse_by_origin=rmse,
                evaluation_mean_rmse=None if None in rmse else float(np.mean(rmse)),
            )
        )
    return results


def shipped_intervals(
    backtested: SegmentBacktest, pool: Sequence[ScaledErrors], point: np.ndarray
) -> BacktestIntervals:
    """Intervals of the shipped forecast from the pooled scaled errors at this segment's level, and
    their coverage at the evaluation origins: at each, the shipped model's error against intervals
    calibrated on the pooled rows whose months all come before it."""
    values, labels, horizon = backtested.values, backtested.labels, backtested.origins.horizon
    hits: dict[int, list[bool]] = {level: [] for level in INTERVAL_LEVELS}
    for origin in backtested.origins.evaluation:
        run = backtested.shipped_runs[origin]
        calibration = pooled_calibration(pool, horizon, before=labels[origin])
        if run.forecasts is None or calibration is None:
            continue
        error = actuals(values, [origin], horizon) - run.forecasts
        inside = measured_coverage_points(at_level(calibration, backtested.level), error)
        for level, flags in inside.items():
            hits[level].extend(flags.tolist())
    calibration = at_level(pooled_calibration(pool, np.size(point)), backtested.level)
    return BacktestIntervals(
        bounds=interval_bounds(point, calibration),
        calibration=calibration,
        coverage={level: float(np.mean(flags)) for level, flags in hits.items() if flags},
        coverage_points=len(hits[INTERVAL_LEVELS[0]]),
    )


def forecast_sections(
    backtested: SegmentBacktest, config: TimeseriesSettings, pool: Sequence[ScaledErrors]
) -> dict[str, Any]:
    """The backtest, decision and forecast sections of a report on a long-enough series."""
    values, labels, origins = backtested.values, backtested.labels, backtested.origins
    candidates, selection = backtested.candidates, backtested.selection
    decision = selection.decision
    forecasts = {
        candidate.name: [
            OriginForecast(
                phase=EVALUATION if origin in origins.evaluation else SELECTION,
                origin=labels[origin],
                forecast=run.forecasts[0].tolist(),
            )
            for origin, run in selection.runs[candidate.name].items()
            if run.forecasts is not None
        ]
        for candidate in candidates
    }
    chosen = [
        OriginForecast(
            phase=EVALUATION,
            origin=labels[choice.origin],
            forecast=non_negative(choice.fit.forecast).tolist(),
            model=choice.shipped.name,
        )
        for choice in selection.at_origins
    ]
    protocol = Protocol(
        horizon=origins.horizon,
        step=config.backtest_origin_step,
        selection_origins=[labels[o] for o in origins.selection],
        evaluation_origins=[labels[o] for o in origins.evaluation],
        selection_last_month=labels[origins.selection[-1] + origins.horizon - 1],
        description="",
    )
    protocol = protocol.model_copy(
        update={"description": protocol_description(protocol, decision.evaluation.note)}
    )
    shipped = decision.shipped_model
    point = non_negative(selection.final_fit.forecast)
    intervals = shipped_intervals(backtested, pool, point)
    months = _next_months(date.fromisoformat(labels[-1] + "-01"), config.forecast_steps)
    return {
        "backtest": Backtest(
            protocol=protocol,
            selection_metric=SELECTION_METRIC,
            candidates=candidate_results(selection, candidates, values, origins),
            forecasts=forecasts,
            chosen=chosen,
        ),
        "decision": decision,
        "forecast": ShippedForecast(
            model=shipped,
            steps=config.forecast_steps,
            interval_levels=list(INTERVAL_LEVELS),
            interval_method=INTERVAL_METHOD,
            calibration_points=intervals.calibration.points,
            calibration_segments=sorted({errors.segment for errors in pool}),
            capped_levels=list(intervals.calibration.capped_levels),
            coverage=[
                Coverage(level=level, coverage=share, points=intervals.coverage_points)
                for level, share in intervals.coverage.items()
            ],
            points=[
                ForecastPoint(
                    month=month,
                    forecast=float(point[step]),
                    **{
                        f"{side}_{level}": float(pair[index][step])
                        for level, pair in intervals.bounds.items()
                        for index, side in enumerate(("lower", "upper"))
                    },
                )
                for step, month in enumerate(months)
            ],
        ),
    }


def candidate_table(report: TimeseriesReport) -> pl.DataFrame:
    """One row per candidate: eligibility, its RMSE on the shipped choice's selection origins, its mean
    RMSE over the evaluation origins and its MAE pooled over them."""
    columns = {
        "model": pl.String,
        "kind": pl.String,
        "eligible": pl.Boolean,
        "selection_rmse": pl.Float64,
        "evaluation_rmse": pl.Float64,
        "evaluation_mae": pl.Float64,
        "problems": pl.String,
    }
    rows = [
        {
            "model": c.model,
            "kind": c.kind,
            "eligible": c.eligible,
            "selection_rmse": c.selection.rmse if c.selection else None,
            "evaluation_rmse": c.evaluation_mean_rmse,
            "evaluation_mae": c.evaluation.mae if c.evaluation else None,
            "problems": c.failure or "; ".join(dict.fromkeys(p.split(": ", 1)[-1] for p in c.problems)),
        }
        for c in (report.backtest.candidates if report.backtest else [])
    ]
    return pl.DataFrame(rows, schema=columns)


def origin_score_table(report: TimeseriesReport) -> pl.DataFrame:
    """One row per evaluation origin: what the rule chose there, on which months, its RMSE, seasonal
    naive's and the difference; the paired comparison's rows of the report."""
    columns = {
        "origin": pl.String,
        "chosen": pl.String,
        "choice_saw_until": pl.String,
        "rmse": pl.Float64,
        "seasonal_naive_rmse": pl.Float64,
        "difference": pl.Float64,
    }
    scores = report.decision.evaluation.origins if report.decision else []
    return pl.DataFrame(
        [
            {
                "origin": s.origin,
                "chosen": s.shipped_model,
                "choice_saw_until": s.choice_saw_until,
                "rmse": s.rmse,
                "seasonal_naive_rmse": s.seasonal_naive_rmse,
                "difference": s.difference,
            }
            for s in scores
        ],
        schema=columns,
    )


def candidate_problems_markdown(report: TimeseriesReport) -> str:
    """One Markdown list line per candidate with problems (the `problems` column of `candidate_table`),
    `none` when no candidate had any."""
    table = candidate_table(report).filter(pl.col("problems") != "")
    return (
        "\n".join(
            f"- **{model}**: {problems}" for model, problems in table.select("model", "problems").rows()
        )
        or "none"
    )


def forecast_table(report: TimeseriesReport) -> pl.DataFrame:
    """The shipped forecast's months with the point forecast and the 80%/95% bounds."""
    points = report.forecast.points if report.forecast else []
    return pl.DataFrame([p.model_dump() for p in points], schema=list(ForecastPoint.model_fields))


# ---- the plot and the file ---------------------------------------------------------------------------


def _month(text: str) -> date:
    return date.fromisoformat(text if len(text) == 10 else f"{text}-01")


def report_figure(report: TimeseriesReport) -> tuple[Figure, list[str]]:
    """History with the shipped forecast and its 80%/95% bands above, the backtest below; and the legend
    labels of the upper panel (the report records them, and its check compares them with the decision)."""
    fig, (top, bottom) = pyplot().subplots(2, 1, figsize=(11, 7.5), sharex=True)
    months = [_month(p.month) for p in report.history]
    sales = [p.sales for p in report.history]
    top.plot(months, sales, color="black", marker="o", ms=3, label="monthly SALES")
    zeros = [(m, v) for m, v in zip(months, sales, strict=True) if v == 0]
    if zeros:
        top.scatter(*zip(*zeros, strict=True), color="red", zorder=3, label="zero month")
    if report.data.partial_last_month:
        top.scatter([months[-1]], [sales[-1]], facecolors="none", edgecolors="black", s=80, zorder=3,
                    label="partial month (not modelled)")  # fmt: skip
    key = report.segment.key
    if report.forecast is not None:
        ahead = [_month(p.month) for p in report.forecast.points]
        column = {
            name: [getattr(p, name) for p in report.forecast.points] for name in ForecastPoint.model_fields
        }
        top.fill_between(
            ahead, column["lower_95"], column["upper_95"], color="tab:blue", alpha=0.15, label="95% interval"
        )
        top.fill_between(
            ahead, column["lower_80"], column["upper_80"], color="tab:blue", alpha=0.3, label="80% interval"
        )
        top.plot(
            ahead,
            column["forecast"],
            color="tab:blue",
            marker="o",
            ms=3,
            label=forecast_label(report.forecast.model),
        )
        # The axis follows the history, the forecast and its 80% band; a wider 95% band leaves the frame
        # (its figures are in the report) rather than flatten the history.
        shown_top = max([*sales, *column["upper_80"], *column["forecast"]])
        top.set_ylim(bottom=0, top=1.1 * shown_top if shown_top > 0 else 1.0)
        top.set_title(f"{key}: monthly SALES and {len(ahead)}-month forecast")
    else:
        top.set_title(f"{key}: monthly SALES ({report.status}: no forecast)")
    bottom.plot(months, sales, color="black", lw=1, label="actual")
    if report.backtest is not None and report.decision is not None:
        protocol = report.backtest.protocol
        position = {p.month[:7]: i for i, p in enumerate(report.history)}
        evaluated = {
            "seasonal_naive (the benchmark)": (
                "tab:orange",
                [r for r in report.backtest.forecasts.get(SEASONAL_NAIVE, []) if r.phase == EVALUATION],
            ),
            "the rule's choice at each origin": ("tab:green", report.backtest.chosen),
        }
        for label, (color, rows) in evaluated.items():
            for i, row in enumerate(rows):
                start = position[row.origin]
                window = months[start : start + len(row.forecast)]
                bottom.plot(
                    window, row.forecast, color=color, alpha=0.8, lw=1.2, label=label if i == 0 else None
                )
        bottom.axvline(
            _month(protocol.evaluation_origins[0]),
            color="grey",
            ls=":",
            lw=1,
            label="first evaluation origin",
        )
        bottom.set_title("backtest: a forecast from each evaluation origin, each chosen on months before it")
    for axis in (top, bottom):
        axis.yaxis.set_major_formatter(thousands_formatter())
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    legend = [text.get_text() for text in top.get_legend().get_texts()]
    return fig, legend


def report_problems(report: TimeseriesReport) -> list[str]:
    """Where a written report contradicts itself: the message, the JSON's shipped model and the plot
    legend must name the same model, and each origin's score must come from a choice that saw only the
    months before that origin."""
    if report.status != OK:
        return (
            []
            if report.decision is None and report.forecast is None
            else ["a report without a forecast carries one"]
        )
    decision, forecast, protocol = report.decision, report.forecast, report.backtest.protocol
    if decision is None or forecast is None:
        return ["status ok but no decision or forecast"]
    shipped = decision.shipped_model
    problems = []
    if decision.reason != decision_reason(decision) or not decision.reason.startswith(f"Shipping {shipped} "):
        problems.append(f"the message does not follow from the decision: {decision.reason!r}")
    if forecast.model != shipped:
        problems.append(f"the forecast is {forecast.model!r} but the decision ships {shipped!r}")
    labels = [label for label in report.plot_legend if label.startswith(forecast_label(""))]
    if labels != [forecast_label(shipped)]:
        problems.append(f"the plot legend shows {labels}, expected [{forecast_label(shipped)!r}]")
    candidates = {c.model: c for c in report.backtest.candidates}
    if shipped not in candidates or not candidates[shipped].eligible:
        problems.append(f"the shipped model {shipped!r} is not an eligible candidate")
    if decision.chosen_on_origins != protocol.selection_origins:
        problems.append("the decision's selection origins differ from the protocol's")
    evaluation = decision.evaluation
    if [score.origin for score in evaluation.origins] != protocol.evaluation_origins:
        problems.append("the evaluation's origins differ from the protocol's")
    for score, row in zip(evaluation.origins, report.backtest.chosen, strict=False):
        if not score.choice_saw_until < score.origin:
            problems.append(
                f"the choice scored at {score.origin} saw months up to {score.choice_saw_until}, not only "
                "months before it"
            )
        if (row.origin, row.model) != (score.origin, score.shipped_model):
            problems.append(
                f"the forecast recorded at {row.origin} is not the choice scored at {score.origin}"
            )
    if len(report.backtest.chosen) != len(evaluation.origins):
        problems.append("the backtest records another number of chosen forecasts than origins scored")
    if not math.isclose(
        evaluation.mean_rmse, float(np.mean([s.rmse for s in evaluation.origins])), rel_tol=1e-9
    ):
        problems.append("the reported score is not the mean of the per-origin scores")
    return problems


@dataclass(frozen=True)
class WrittenReport:
    report: TimeseriesReport  # as written: with the plot's file name and legend
    json_path: Path
    png_path: Path
    plot_markdown: Any  # dg.MetadataValue with the PNG embedded


def write_report(report: TimeseriesReport, directory: Path) -> WrittenReport:
    """The PNG, then the JSON naming it and recording its legend, each written atomically under `directory`."""
    segment = Segment(report.segment.product_line, report.segment.country)
    json_path, png_path = directory / f"{segment.file_stem}.json", directory / f"{segment.file_stem}.png"
    fig, legend = report_figure(report)
    caption = (
        f"{report.segment.key}: monthly SALES, the shipped forecast ({report.forecast.model}) with 80%/95% intervals, "
        "and the backtest"
        if report.forecast
        else f"{report.segment.key}: monthly SALES ({report.status}: no forecast)"
    )
    plot_markdown = save_figure(fig, png_path, caption=caption)
    written = report.model_copy(update={"plot": png_path.name, "plot_legend": legend})
    write_text_atomic(json_path, written.model_dump_json(indent=2) + "\n")
    return WrittenReport(report=written, json_path=json_path, png_path=png_path, plot_markdown=plot_markdown)
