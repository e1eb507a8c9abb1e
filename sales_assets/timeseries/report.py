"""One segment's time-series and risk report: the nested backtest, the decision, the shipped forecast with
conformal intervals and their measured coverage, and the GARCH summary, as a typed `TimeseriesReport`;
written as `sales_ts_risk_<product>_<country>.json` plus a PNG whose legend the JSON records.

pandas and matplotlib are imported inside the functions that use them.
"""

from __future__ import annotations

import math
import time
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
from sales_assets.timeseries.backtest import EVALUATION, SELECTION, actuals, nested_origins, non_negative
from sales_assets.timeseries.forecast import (
    SEASONAL_NAIVE,
    SELECTION_METRIC,
    WarningLog,
    candidates_from_settings,
    forecast_errors,
)
from sales_assets.timeseries.intervals import INTERVAL_LEVELS, INTERVAL_METHOD, backtest_intervals
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
from sales_assets.timeseries.selection import choose, decision_reason, forecast_label, origin_span
from sales_assets.timeseries.series import MonthlySeries, Segment

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def required_months(config: TimeseriesSettings) -> int:
    """Months a series needs: the configured minimum, and enough for the nested backtest protocol."""
    protocol = backtest.required_months(
        config.backtest_horizon,
        config.selection_origins,
        config.evaluation_origins,
        config.backtest_origin_step,
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


def protocol_description(protocol: Protocol) -> str:
    return (
        f"Each model is fitted on every month before an origin and forecasts {protocol.horizon} months. "
        f"The choice uses the selection {origin_span(protocol.selection_origins)} (forecast months up to "
        f"{protocol.selection_last_month}); the reported score is the shipped model's on the evaluation "
        f"{origin_span(protocol.evaluation_origins)}, whose months all come later. Interval coverage: calibrated on "
        "the selection origins' errors, measured on the evaluation origins'; the shipped intervals are "
        "calibrated on both."
    )


def build_report(segment: Segment, series: MonthlySeries, config: TimeseriesSettings) -> TimeseriesReport:
    """Backtest, choose, forecast and fit GARCH for one segment; a short series gets status
    `insufficient_data` with the reason, and still its history and return statistics."""
    started = time.perf_counter()
    history = series.model_sales
    labels = [month.strftime("%Y-%m") for month in history.index]
    warning_log = WarningLog()
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
    if len(history) < needed:
        fields["status"] = INSUFFICIENT_DATA
        fields["reason"] = (
            f"{len(history)} complete months; a backtest of {config.selection_origins} selection and "
            f"{config.evaluation_origins} evaluation origins with horizon {config.backtest_horizon} and a "
            f"seasonal naive baseline need {needed} (min_history_months={config.min_history_months})"
        )
    else:
        fields |= forecast_sections(history.to_numpy(dtype=float), labels, config, warning_log)
    risk = risk_summary(
        history, config.garch_horizon, config.garch_min_observations, config.garch_maxiter, warning_log
    )
    return TimeseriesReport(
        **fields,
        risk=Risk(**_json_safe(risk)),
        warnings=[WarningCount(**w) for w in warning_log.as_list()],
        seconds=round(time.perf_counter() - started, 3),
    )


def forecast_sections(
    values: np.ndarray, labels: list[str], config: TimeseriesSettings, warning_log: WarningLog
) -> dict[str, Any]:
    """The backtest, decision and forecast sections of a report on a long-enough series."""
    candidates = candidates_from_settings(config.sarima_candidates, config.sarima_maxiter, warning_log)
    origins = nested_origins(
        len(values),
        config.backtest_horizon,
        config.selection_origins,
        config.evaluation_origins,
        config.backtest_origin_step,
    )
    selection = choose(
        values, candidates, origins, labels, config.forecast_steps, config.sarima_min_improvement
    )
    decision = selection.decision
    observed = {
        phase: actuals(values, origins.of(phase), origins.horizon) for phase in (SELECTION, EVALUATION)
    }
    results, forecasts = [], {}
    for candidate in candidates:
        runs = {phase: selection.runs[phase].get(candidate.name) for phase in (SELECTION, EVALUATION)}
        scored = {
            phase: Errors(**forecast_errors(observed[phase], run.forecasts))
            for phase, run in runs.items()
            if run is not None and run.forecasts is not None
        }
        selection_run = runs[SELECTION]
        results.append(
            CandidateResult(
                model=candidate.name,
                kind=candidate.kind,
                parameters=candidate.parameters,
                eligible=candidate.name in decision.selection_rmse,
                problems=[*selection_run.problems, *selection.final_fit_problems.get(candidate.name, [])],
                failure=selection_run.failure,
                selection=scored.get(SELECTION),
                evaluation=scored.get(EVALUATION),
            )
        )
        forecasts[candidate.name] = [
            OriginForecast(phase=phase, origin=labels[origin], forecast=row.tolist())
            for phase, run in runs.items()
            if run is not None and run.forecasts is not None
            for origin, row in zip(origins.of(phase), run.forecasts, strict=True)
        ]
    protocol = Protocol(
        horizon=origins.horizon,
        step=config.backtest_origin_step,
        selection_origins=[labels[o] for o in origins.selection],
        evaluation_origins=[labels[o] for o in origins.evaluation],
        selection_last_month=labels[origins.selection[-1] + origins.horizon - 1],
        description="",
    )
    protocol = protocol.model_copy(update={"description": protocol_description(protocol)})
    shipped = decision.shipped_model
    errors = {phase: observed[phase] - selection.runs[phase][shipped].forecasts for phase in observed}
    point = non_negative(selection.final_fit.forecast)
    intervals = backtest_intervals(errors[SELECTION], errors[EVALUATION], point)
    months = _next_months(date.fromisoformat(labels[-1] + "-01"), config.forecast_steps)
    return {
        "backtest": Backtest(
            protocol=protocol, selection_metric=SELECTION_METRIC, candidates=results, forecasts=forecasts
        ),
        "decision": decision,
        "forecast": ShippedForecast(
            model=shipped,
            steps=config.forecast_steps,
            interval_levels=list(INTERVAL_LEVELS),
            interval_method=INTERVAL_METHOD,
            calibration_points=intervals.calibration.points,
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
    """One row per candidate: eligibility and its RMSE/MAE on the selection and evaluation origins."""
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
            "evaluation_rmse": c.evaluation.rmse if c.evaluation else None,
            "evaluation_mae": c.evaluation.mae if c.evaluation else None,
            "problems": c.failure or "; ".join(dict.fromkeys(p.split(": ", 1)[-1] for p in c.problems)),
        }
        for c in (report.backtest.candidates if report.backtest else [])
    ]
    return pl.DataFrame(rows, schema=columns)


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
        top.set_title(f"{key}: monthly SALES and {len(ahead)}-month forecast")
    else:
        top.set_title(f"{key}: monthly SALES ({report.status}: no forecast)")
    bottom.plot(months, sales, color="black", lw=1, label="actual")
    if report.backtest is not None and report.decision is not None:
        protocol = report.backtest.protocol
        position = {p.month[:7]: i for i, p in enumerate(report.history)}
        shown = dict.fromkeys([SEASONAL_NAIVE, report.decision.shipped_model])
        for name, color in zip(shown, ("tab:orange", "tab:green"), strict=False):
            for i, row in enumerate(report.backtest.forecasts.get(name, [])):
                start = position[row.origin]
                window = months[start : start + len(row.forecast)]
                bottom.plot(window, row.forecast, color=color, alpha=0.8, lw=1.2,
                            ls="--" if row.phase == SELECTION else "-", label=name if i == 0 else None)  # fmt: skip
        bottom.axvline(
            _month(protocol.evaluation_origins[0]),
            color="grey",
            ls=":",
            lw=1,
            label="first evaluation origin",
        )
        bottom.set_title(
            "backtest: dashed = selection origins (the choice), solid = evaluation origins (the score)"
        )
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
    legend must name the same model, and the reported score must come from origins not used to choose."""
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
    elif candidates[shipped].evaluation != decision.reported_score:
        problems.append("the reported score is not the shipped model's evaluation-origin score")
    if (
        decision.chosen_on_origins != protocol.selection_origins
        or decision.reported_on_origins != protocol.evaluation_origins
    ):
        problems.append("the decision's origins differ from the protocol's")
    if set(decision.chosen_on_origins) & set(decision.reported_on_origins) or not (
        protocol.selection_last_month < min(decision.reported_on_origins)
    ):
        problems.append(
            f"the reported score's origins {decision.reported_on_origins} overlap the months the choice saw "
            f"(up to {protocol.selection_last_month})"
        )
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
