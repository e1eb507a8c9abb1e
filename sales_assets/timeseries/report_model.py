"""The typed shape of the time-series outputs: one segment's report (`sales_ts_risk_<product>_<country>.json`)
and the hierarchy's coherent forecasts (`sales_ts_hierarchy.json`). The assets validate what they write
with these models and the dashboard reads through them, so a change of shape fails on both sides.

Pydantic only: importing this module stays cheap (no numpy, pandas or statsmodels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sales_assets.report_files import read_report

OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"
# Bumped when the JSON changes shape; the dashboard names files of another version instead of misreading them.
REPORT_SCHEMA_VERSION = 3
# Written by the ALL partition of `ts_risk_reports` beside the segment reports.
HIERARCHY_FILE = "sales_ts_hierarchy.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentInfo(_Model):
    key: str
    product_line: str | None
    country: str | None


class DataSummary(_Model):
    first_order_date: str
    last_order_date: str
    months: int = Field(description="months from the first to the last month of the whole table")
    model_months: int = Field(description="months the models see (a partial last month left out)")
    zero_months: list[str]
    n_zero_months: int
    partial_last_month: bool
    partial_month_excluded: str | None
    required_months: int
    total_sales: float


class MonthValue(_Model):
    month: str  # YYYY-MM-DD, the first day of the month
    sales: float


class Errors(_Model):
    """Pooled errors of forecasts against actual monthly SALES (currency of the data; percent for MAPE/sMAPE)."""

    rmse: float
    mae: float
    mape: float | None
    smape: float
    points: int
    mape_points: int


class CandidateResult(_Model):
    model: str
    kind: Literal["baseline", "statsforecast", "sarima"]
    parameters: int = Field(description="estimated AR/MA coefficients; with kind, the order for ties")
    eligible: bool
    problems: list[str] = Field(description="why a fit estimated nothing one can trust (not eligible)")
    failure: str | None = None
    selection: Errors | None = Field(description="errors on the selection origins, the choice rests on these")
    evaluation: Errors | None = Field(
        default=None, description="errors pooled over the evaluation origins, where every fit succeeded"
    )
    evaluation_rmse_by_origin: list[float | None] = Field(
        default=[], description="RMSE at each evaluation origin (None where the fit failed)"
    )
    evaluation_mean_rmse: float | None = Field(
        default=None, description="mean of the per-origin RMSE (None unless every origin has one)"
    )


class OriginForecast(_Model):
    phase: Literal["selection", "evaluation"]  # evaluation: an evaluation origin (it may also select)
    origin: str  # YYYY-MM, the first forecast month
    forecast: list[float]
    model: str | None = Field(default=None, description="in `Backtest.chosen`: what the rule chose there")


class Protocol(_Model):
    horizon: int
    step: int
    selection_origins: list[str]
    evaluation_origins: list[str]
    selection_last_month: str = Field(description="the last month any selection forecast covered")
    description: str


class Backtest(_Model):
    protocol: Protocol
    selection_metric: str
    candidates: list[CandidateResult]
    forecasts: dict[str, list[OriginForecast]]
    chosen: list[OriginForecast] = Field(
        default=[], description="at each evaluation origin, the forecast of what the rule chose there"
    )


class OriginScore(_Model):
    """The choice made at one evaluation origin, on months before it, and its score from the origin on."""

    origin: str = Field(description="YYYY-MM, the first forecast month")
    shipped_model: str = Field(description="what the choice made at this origin shipped")
    chosen_on_origins: list[str]
    choice_saw_until: str = Field(
        description="the last month any of the choice's selection forecasts covered"
    )
    rmse: float
    seasonal_naive_rmse: float | None
    difference: float | None = Field(
        description="rmse minus seasonal naive's at this origin (negative: better)"
    )
    points: int
    selection_months: int = Field(
        description="distinct calendar months (of 12) the choice's selection forecasts covered; with "
        "fewer, seasonal naive ships"
    )


class Evaluation(_Model):
    """The reported score: the mean over the evaluation origins, each origin's choice made only on data
    before it, with the paired comparison against seasonal naive on the same origins."""

    origins: list[OriginScore]
    configured_origins: int = Field(description="evaluation origins the settings ask for")
    points: int = Field(description="forecast months scored, over all origins")
    mean_rmse: float
    seasonal_naive_mean_rmse: float | None
    mean_difference: float | None = Field(description="mean over origins of rmse minus seasonal naive's")
    difference_sd: float | None = Field(
        description="sample standard deviation of that difference across origins"
    )
    note: str = Field(description="how many origins the score rests on, and why fewer than configured")


class Decision(_Model):
    """The one decision that the message, the forecast, the plot legend and the dashboard all show."""

    shipped_model: str
    shipped_kind: Literal["baseline", "statsforecast", "sarima"]
    reason: str = Field(description="the message: what ships and why, built from the fields below")
    margin_rule: str
    min_improvement: float
    best_on_selection: str
    selection_months: int = Field(
        description="distinct calendar months (of 12) the shipped choice's selection forecasts cover"
    )
    selection_rmse: dict[str, float] = Field(
        description="eligible candidates' selection RMSE, the choice rests on these"
    )
    not_eligible: dict[str, str]
    chosen_on_origins: list[str] = Field(description="the selection origins of the shipped forecast's choice")
    evaluation: Evaluation = Field(description="the same rule applied at each evaluation origin, scored")


class Coverage(_Model):
    level: int
    coverage: float
    points: int


class ForecastPoint(_Model):
    month: str
    forecast: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float


class ShippedForecast(_Model):
    model: str
    steps: int
    interval_levels: list[int]
    interval_method: str
    calibration_points: int = Field(description="backtest errors the shipped intervals are calibrated on")
    calibration_segments: list[str] = Field(
        default=[], description="the segments whose scaled errors were pooled for the intervals"
    )
    capped_levels: list[int] = Field(
        description="levels with too few errors for the conformal rank: largest score used"
    )
    coverage: list[Coverage] = Field(
        description="at each evaluation origin, intervals calibrated on errors before it, measured from it on"
    )
    points: list[ForecastPoint]


class Risk(_Model):
    """Month-to-month volatility of SALES (GARCH(1,1) on percentage changes). Monthly figures only: the
    changes of a seasonal sales level revert to the mean, so they do not scale with the square root of time."""

    return_method: str
    skipped_zero_denominator_months: list[str]
    horizon: int
    forecast_months: list[str]
    model: str
    n_observations: int
    min_observations: int
    exploratory: bool
    mean_return_pct: float | None
    sd_return_pct: float | None
    status: str
    reason: str | None = None
    params: dict[str, float] | None = None
    persistence: float | None = None
    converged: bool | None = None
    optimizer_message: str | None = None
    parameters_on_bounds: dict[str, str] = {}
    long_run_volatility_monthly_pct: float | None = None
    conditional_variance_forecast: list[float] = []
    conditional_volatility_forecast_pct: list[float] = []
    log_likelihood: float | None = None
    caveats: list[str]


class WarningCount(_Model):
    warning: str
    count: int


class TimeseriesReport(_Model):
    """One segment's report, as written to `sales_ts_risk_<product>_<country>.json`."""

    schema_version: int = REPORT_SCHEMA_VERSION
    segment: SegmentInfo
    status: Literal["ok", "insufficient_data"]
    reason: str | None = None
    data: DataSummary
    history: list[MonthValue]
    settings: dict
    backtest: Backtest | None = None
    decision: Decision | None = None
    forecast: ShippedForecast | None = None
    risk: Risk
    warnings: list[WarningCount]
    seconds: float
    plot: str | None = Field(default=None, description="the PNG beside the JSON")
    plot_legend: list[str] = Field(default=[], description="the legend labels of the plot's forecast panel")

    @classmethod
    def read(cls, path: Path) -> TimeseriesReport:
        """Validate a written report; `ValueError` names the file and what does not match."""
        return read_report(
            cls, path, "ts_risk_reports", f"{cls.__name__} of schema version {REPORT_SCHEMA_VERSION}"
        )


class NodeForecast(_Model):
    """One node of the hierarchy (ALL or a product line): coherent forecasts and their intervals."""

    segment: str
    points: list[ForecastPoint]


class MethodScore(_Model):
    method: str
    selection_rmse: float | None = Field(
        description="summed over nodes' RMSE on the selection origins (None: there were none)"
    )
    evaluation_rmse: float = Field(description="summed over nodes' RMSE on the evaluation origins (reported)")
    evaluation_by_node: dict[str, float]


class HierarchyReport(_Model):
    """Coherent forecasts of ALL and the product lines, written to `sales_ts_hierarchy.json`."""

    schema_version: int = REPORT_SCHEMA_VERSION
    nodes: list[str] = Field(description="ALL first, then the product lines that sum to it")
    base_models: dict[str, str] = Field(description="the shipped model of each node's own report")
    protocol: str
    scores: list[MethodScore] = Field(description="base (incoherent), bottom_up and mint_shrink")
    shipped_method: str
    reason: str
    shrinkage: float | None = Field(description="MinT shrinkage intensity towards the diagonal")
    interval_method: str
    coverage: list[Coverage]
    forecasts: list[NodeForecast]

    @classmethod
    def read(cls, path: Path) -> HierarchyReport:
        # The ALL partition of ts_risk_reports reconciles the hierarchy and writes this file.
        return read_report(cls, path, "ts_risk_reports --partition ALL", "hierarchy report")
