"""One segment's time-series and risk report: assembled from the series, the backtest, the shipped
forecast and the GARCH fit; written as `sales_ts_risk_<product>_<country>.json` plus a PNG."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl

from sales_assets.io import write_json_atomic
from sales_assets.metadata import pyplot, save_figure, thousands_formatter
from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.forecast import (
    BASELINES,
    SEASONAL_NAIVE,
    SELECTION_METRIC,
    SarimaSpec,
    WarningLog,
    candidates_from_settings,
    choose_model,
    rolling_origin_backtest,
    shipped_forecast,
)
from sales_assets.timeseries.risk import risk_summary
from sales_assets.timeseries.series import SEASONAL_PERIOD, MonthlySeries, Segment

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"


@dataclass
class SegmentReport:
    """The JSON payload plus the frames the plot and the UI need."""

    payload: dict[str, Any]
    history: pd.Series
    backtest_forecasts: dict[str, list[tuple[pd.DatetimeIndex, np.ndarray]]]
    forecast: pd.DataFrame | None

    @property
    def status(self) -> str:
        return self.payload["status"]

    def metrics_table(self) -> pl.DataFrame:
        """The backtest metrics as shown in the UI (empty when there was no backtest)."""
        rows = (self.payload.get("backtest") or {}).get("metrics", [])
        columns = [
            "model",
            "kind",
            "rmse",
            "mae",
            "mape",
            "smape",
            *[f"improvement_vs_{b}" for b in BASELINES],
        ]
        if not rows:
            return pl.DataFrame(schema={c: pl.String for c in columns})
        return pl.DataFrame([{c: row.get(c) for c in columns} for row in rows])


def required_months(config: TimeseriesSettings) -> int:
    """Months a series needs: the configured minimum, and enough for seasonal naive at the first origin."""
    backtest_span = (
        SEASONAL_PERIOD
        + config.backtest_horizon
        + (config.backtest_origins - 1) * config.backtest_origin_step
    )
    return max(config.min_history_months, backtest_span)


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


def _month_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"month": month.strftime("%Y-%m-%d"), **row}
        for month, row in zip(frame.index, frame.to_dict("records"), strict=True)
    ]


def build_report(
    segment: Segment,
    series: MonthlySeries,
    config: TimeseriesSettings,
) -> SegmentReport:
    """Backtest, choose, forecast and fit GARCH for one segment; a short series gets status
    `insufficient_data` with the reason, and still its history and return statistics."""
    started = time.perf_counter()
    sarima_maxiter, garch_maxiter = config.sarima_maxiter, config.garch_maxiter
    origin_step, min_improvement = config.backtest_origin_step, config.sarima_min_improvement
    history = series.model_sales
    warning_log = WarningLog()
    needed = required_months(config)
    payload: dict[str, Any] = {
        "segment": {"key": segment.key, "product_line": segment.product_line, "country": segment.country},
        "status": OK,
        "data": {
            "first_order_date": series.first_order_date.isoformat(),
            "last_order_date": series.last_order_date.isoformat(),
            "months": len(series.sales),
            "model_months": len(history),
            "zero_months": series.zero_months,
            "n_zero_months": len(series.zero_months),
            "partial_last_month": series.partial_last_month,
            "partial_month_excluded": series.sales.index[-1].strftime("%Y-%m")
            if series.partial_last_month
            else None,
            "required_months": needed,
            "total_sales": float(history.sum()),
        },
        "history": _month_records(series.sales.to_frame()),
        "settings": {
            "forecast_steps": config.forecast_steps,
            "garch_horizon": config.garch_horizon,
            "backtest_horizon": config.backtest_horizon,
            "backtest_origins": config.backtest_origins,
            "backtest_origin_step": origin_step,
            "sarima_candidates": config.sarima_candidates,
            "sarima_maxiter": sarima_maxiter,
            "min_improvement": min_improvement,
            "garch_min_observations": config.garch_min_observations,
        },
    }
    backtest_forecasts: dict[str, list[tuple[pd.DatetimeIndex, np.ndarray]]] = {}
    forecast_frame = None
    if len(history) < needed:
        payload["status"] = INSUFFICIENT_DATA
        payload["reason"] = (
            f"{len(history)} complete months; a backtest of {config.backtest_origins} origins with horizon "
            f"{config.backtest_horizon} and a seasonal naive baseline need {needed} "
            f"(min_history_months={config.min_history_months})"
        )
        payload["backtest"] = payload["decision"] = payload["forecast"] = None
    else:
        candidates = candidates_from_settings(config.sarima_candidates, sarima_maxiter, warning_log)
        specs = {s.name: s for s in (SarimaSpec.from_setting(c) for c in config.sarima_candidates)}
        values = history.to_numpy(dtype=float)
        backtest = rolling_origin_backtest(
            values, candidates, config.backtest_horizon, config.backtest_origins, origin_step
        )
        decision = choose_model(backtest, min_improvement)
        forecast_frame, interval_method = shipped_forecast(
            history, decision, backtest, candidates, specs, config.forecast_steps, sarima_maxiter, warning_log
        )
        for name, per_origin in backtest.forecasts.items():
            backtest_forecasts[name] = [
                (history.index[start : start + backtest.horizon], f)
                for start, f in zip(backtest.origins, per_origin, strict=True)
            ]
        payload["backtest"] = {
            "horizon": backtest.horizon,
            "origins": [history.index[start].strftime("%Y-%m") for start in backtest.origins],
            "training_months": backtest.origins,
            "selection_metric": SELECTION_METRIC,
            "improvement": f"1 - {SELECTION_METRIC} / {SELECTION_METRIC} of the baseline (positive is better)",
            "metrics": backtest.metrics.to_dict("records"),
            "failed_models": backtest.failures,
            "forecasts": {
                name: [{"origin": idx[0].strftime("%Y-%m"), "forecast": f.tolist()} for idx, f in per_origin]
                for name, per_origin in backtest_forecasts.items()
            },
        }
        payload["decision"] = {
            "shipped_model": decision.shipped_model,
            "shipped_kind": decision.shipped_kind,
            "best_baseline": decision.best_baseline,
            "best_sarima": decision.best_sarima,
            "sarima_beats_seasonal_naive": decision.sarima_beats_seasonal_naive,
            "min_improvement_over_best_baseline": decision.min_improvement,
            "message": decision.message,
        }
        payload["forecast"] = {
            "model": decision.shipped_model,
            "steps": config.forecast_steps,
            "interval_levels": [80, 95],
            "interval_method": interval_method,
            "points": _month_records(forecast_frame),
        }
    payload["risk"] = risk_summary(
        history, config.garch_horizon, config.garch_min_observations, garch_maxiter, warning_log
    )
    payload["warnings"] = warning_log.as_list()
    payload["seconds"] = round(time.perf_counter() - started, 3)
    return SegmentReport(
        payload=_json_safe(payload),
        history=series.sales,
        backtest_forecasts=backtest_forecasts,
        forecast=forecast_frame,
    )


def report_figure(report: SegmentReport) -> Figure:
    """History with the shipped forecast and its 80%/95% bands above, the backtest below."""
    fig, (top, bottom) = pyplot().subplots(2, 1, figsize=(11, 7.5), sharex=True)
    key = report.payload["segment"]["key"]
    top.plot(
        report.history.index,
        report.history.to_numpy(),
        color="black",
        marker="o",
        ms=3,
        label="monthly SALES",
    )
    zeros = report.history[report.history == 0]
    if len(zeros):
        top.scatter(zeros.index, zeros.to_numpy(), color="red", zorder=3, label="zero month")
    if report.forecast is not None:
        frame = report.forecast
        top.fill_between(
            frame.index, frame["lower_95"], frame["upper_95"], color="tab:blue", alpha=0.15, label="95%"
        )
        top.fill_between(
            frame.index, frame["lower_80"], frame["upper_80"], color="tab:blue", alpha=0.3, label="80%"
        )
        top.plot(frame.index, frame["forecast"], color="tab:blue", marker="o", ms=3,
                 label=f"forecast: {report.payload['decision']['shipped_model']}")  # fmt: skip
        top.set_title(f"{key}: monthly SALES and {len(frame)}-month forecast")
    else:
        top.set_title(f"{key}: monthly SALES ({report.status}: no forecast)")
    bottom.plot(report.history.index, report.history.to_numpy(), color="black", lw=1, label="actual")
    shown = [SEASONAL_NAIVE]
    if report.payload.get("decision") and report.payload["decision"]["shipped_model"] != SEASONAL_NAIVE:
        shown.append(report.payload["decision"]["shipped_model"])
    for name, color in zip(shown, ("tab:orange", "tab:green"), strict=False):
        for i, (index, values) in enumerate(report.backtest_forecasts.get(name, [])):
            bottom.plot(index, values, color=color, alpha=0.7, lw=1.2, label=name if i == 0 else None)
    bottom.set_title("rolling-origin backtest (one line per origin)")
    for axis in (top, bottom):
        axis.yaxis.set_major_formatter(thousands_formatter())
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class WrittenReport:
    json_path: Path
    png_path: Path
    plot_markdown: Any  # dg.MetadataValue with the PNG embedded


def write_report(report: SegmentReport, directory: Path) -> WrittenReport:
    """The PNG, then the JSON naming it, each written atomically under `directory`."""
    segment = Segment(report.payload["segment"]["product_line"], report.payload["segment"]["country"])
    json_path, png_path = directory / f"{segment.file_stem}.json", directory / f"{segment.file_stem}.png"
    plot_markdown = save_figure(report_figure(report), png_path)
    write_json_atomic(json_path, {**report.payload, "plot": png_path.name})
    return WrittenReport(json_path=json_path, png_path=png_path, plot_markdown=plot_markdown)
