import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.report import INSUFFICIENT_DATA, OK, build_report, required_months, write_report
from sales_assets.timeseries.series import MonthlySeries, Segment, build_monthly_series


def strict_json(path: Path) -> dict:
    def reject(constant: str) -> None:
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=reject)


def series_of(months: int, last_day: int | None = None, seed: int = 0) -> MonthlySeries:
    """`months` months from January 2001 with one zero month; the data ends on `last_day` of the last month
    (default: its final day, a complete month)."""
    index = pd.date_range("2001-01-01", periods=months, freq="MS")
    values = (
        1000 + 300 * np.sin(np.arange(months) * np.pi / 6) + np.random.default_rng(seed).normal(0, 50, months)
    )
    values[min(3, months - 1)] = 0.0
    last = index[-1] + pd.offsets.MonthEnd(0) if last_day is None else index[-1].replace(day=last_day)
    frame = pl.DataFrame({"month": index.to_pydatetime(), "sales": values})
    return build_monthly_series(frame, datetime(2001, 1, 1), last.to_pydatetime())


def test_required_months_covers_the_backtest_and_seasonal_naive() -> None:
    config = TimeseriesSettings()
    assert required_months(config) == max(
        config.min_history_months, 12 + config.backtest_horizon + config.backtest_origins - 1
    )
    assert required_months(TimeseriesSettings(min_history_months=40)) == 40


def test_short_series_yields_insufficient_data_not_a_crash(tmp_path: Path) -> None:
    segment = Segment("Planes", "Norway")
    report = build_report(segment, series_of(14), TimeseriesSettings())
    assert report.status == INSUFFICIENT_DATA
    assert "14 complete months" in report.payload["reason"]
    assert report.payload["forecast"] is None and report.payload["backtest"] is None
    assert report.payload["risk"]["exploratory"] is True
    written = write_report(report, tmp_path)
    assert written.json_path.name == "sales_ts_risk_Planes_Norway.json"
    assert written.png_path.stat().st_size > 1000
    payload = strict_json(written.json_path)
    assert payload["status"] == INSUFFICIENT_DATA and len(payload["history"]) == 14
    assert report.metrics_table().height == 0


def test_full_report_sections_and_partial_month(tmp_path: Path) -> None:
    config = TimeseriesSettings(
        forecast_steps=4, garch_horizon=3, sarima_candidates=TimeseriesSettings().sarima_candidates[:2]
    )
    series = series_of(31, last_day=15)  # the 31st month is cut on the 15th
    report = build_report(Segment("Classic Cars"), series, config)
    payload = report.payload
    assert report.status == OK
    assert payload["data"]["partial_last_month"] and payload["data"]["partial_month_excluded"] == "2003-07"
    assert payload["data"]["model_months"] == 30 and payload["data"]["zero_months"] == ["2001-04"]
    assert [p["month"] for p in payload["forecast"]["points"]] == [
        "2003-07-01",
        "2003-08-01",
        "2003-09-01",
        "2003-10-01",
    ]
    models = {row["model"] for row in payload["backtest"]["metrics"]}
    assert {"last_value", "seasonal_naive", "training_mean"} <= models
    assert payload["backtest"]["origins"] == ["2002-10", "2002-11", "2002-12", "2003-01"]
    assert payload["decision"]["shipped_model"] in models
    assert len(payload["risk"]["conditional_variance_forecast"]) == 3
    assert report.metrics_table().columns[:2] == ["model", "kind"]
    written = write_report(report, tmp_path)
    on_disk = strict_json(written.json_path)
    assert on_disk["plot"] == "sales_ts_risk_Classic_Cars_ALL.png"
    assert on_disk["forecast"]["interval_levels"] == [80, 95]


@pytest.mark.parametrize("months", [1, 2])
def test_tiny_series_still_report(months: int) -> None:
    report = build_report(Segment(), series_of(months), TimeseriesSettings())
    assert report.status == INSUFFICIENT_DATA
    assert report.payload["risk"]["status"] == INSUFFICIENT_DATA
