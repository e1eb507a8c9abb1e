"""Reports made by the real code on generated series, for tests that need one on disk (the dashboard's,
for example) without hand-writing a JSON of the report's shape."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from sales_assets.settings import SARIMA_SPECS, TimeseriesSettings
from sales_assets.timeseries.report import WrittenReport, build_report, write_report
from sales_assets.timeseries.series import MonthlySeries, Segment, build_monthly_series

# Two SARIMA candidates keep the report tests quick; the selection tests use the full default set.
QUICK = TimeseriesSettings(forecast_steps=4, garch_horizon=3, sarima_candidates=SARIMA_SPECS[:2])


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


def series_of_values(values: np.ndarray) -> MonthlySeries:
    """The complete-month series of `values`, one a month from January 2001."""
    index = pd.date_range("2001-01-01", periods=len(values), freq="MS")
    frame = pl.DataFrame({"month": index.to_pydatetime(), "sales": np.asarray(values, dtype=float)})
    last = index[-1] + pd.offsets.MonthEnd(0)
    return build_monthly_series(frame, datetime(2001, 1, 1), last.to_pydatetime())


CLASSIC_CARS_USA = Segment("Classic Cars", "USA")


def write_sample_report(
    directory: Path, segment: Segment = CLASSIC_CARS_USA, months: int = 30
) -> WrittenReport:
    """A full report of `segment` on `months` generated months, written under `directory` (JSON and PNG)."""
    return write_report(build_report(segment, series_of(months), QUICK), directory)
