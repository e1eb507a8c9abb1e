"""The typed shape of the ML reports: the metrics file `trained_models` writes
(`output/metrics/sales_regression_metrics.json`) and the SHAP file `shap_importance` writes
(`output/explainability/shap_global_importance.json`). The assets build these models and write their JSON
dump; the dashboard reads through them, so a change of shape fails on both sides.

Scores are of one order line's SALES: RMSE and MAE in the data's currency (US dollars), R2 unitless.
Pydantic only: importing this module stays cheap (no numpy, pandas or scikit-learn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sales_assets.report_files import read_report

METRICS_FILE = "sales_regression_metrics.json"
SHAP_FILE = "shap_global_importance.json"


class _Model(BaseModel):
    # inf/NaN are written as JSON's Infinity/NaN (as json.dumps did before), not null: a parity check with a
    # non-finite prediction reports max_abs_diff = inf, and that must read back as inf.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class Scores(_Model):
    """Scores of one evaluation (a CV fold or the held-out split)."""

    rmse: float
    mae: float
    r2: float


class CVSummary(_Model):
    """Mean and sample standard deviation (ddof=1; 0 for one fold) over the repeated K-fold folds."""

    rmse_mean: float
    rmse_std: float
    mae_mean: float
    mae_std: float
    r2_mean: float
    r2_std: float


class TrainingProtocol(_Model):
    rows: int = Field(description="rows trained and tested on (the sample of the sales table)")
    rows_train: int
    rows_test: int
    test_size: float
    random_state: int
    cv_folds: int
    cv_repeats: int
    champion_rule: str
    table_rows: int = Field(description="rows of the sales table the sample was drawn from")
    sampled: bool


class ModelEntry(_Model):
    """One model of the leaderboard: CV on the training part only."""

    model: str
    estimator: str
    cv: CVSummary
    cv_folds: list[Scores]
    fit_seconds: float
    eligible: bool
    ineligible_reason: str | None


class OnnxParity(_Model):
    passed: bool
    max_abs_diff: float = Field(description="inf when either side gave a non-finite prediction")
    tolerance: float
    rows_checked: int
    rows_outside: int
    rows_non_finite: int = 0


class Champion(_Model):
    model: str
    estimator: str
    cv: CVSummary
    holdout: Scores = Field(description="the one score on the held-out split, after the choice")
    onnx_parity: OnnxParity


class SeedProtocol(_Model):
    """The seed's v1 table reproduced for comparison: leaky (DEALSIZE among the inputs), never a champion."""

    label: str
    leaky: bool
    eligible_as_champion: bool
    model: str
    rows_before_filter: int
    rows_after_filter: int
    iqr_columns: list[str]
    iqr_factor: float
    test_size: float
    random_state: int
    features: list[str]
    holdout: Scores
    fit_seconds: float


class LeakageRow(_Model):
    feature: str
    kind: Literal["numeric", "categorical"]
    score: float = Field(description="the largest out-of-fold fit (R2 or kappa) named by `measure`")
    measure: str
    leaky: bool


class IntervalBand(_Model):
    lower_relative: float
    upper_relative: float


class Intervals(_Model):
    """Relative prediction intervals per nominal level (keys like "0.8") and their held-out coverage."""

    method: str
    price_field: str
    price_cap: float | None
    levels: dict[str, IntervalBand]
    calibration_rows: int
    coverage_holdout: dict[str, float]
    coverage_holdout_scope: str
    coverage_holdout_all_rows: dict[str, float]
    holdout_rows_with_band: int


class Promotion(_Model):
    promote: bool
    reason: str
    candidate_rmse: float
    incumbent_rmse: float | None
    incumbent_version: str | None


class Lineage(_Model):
    dagster_run_id: str
    mlflow_run_id: str
    mlflow_model_version: str
    mlflow_model_run_id: str
    data_sha256: str = Field(description="digest of the clean Parquet layer the sales table was built from")
    parquet_files: int
    parquet_dir: str
    raw_path: str | None = Field(
        description="the file raw_csv landed (with a folder of exports: the folder); None when nothing was landed"
    )
    raw_copy: str | None = Field(
        default=None, description="the landed, content-addressed copy clean_parquet read (single CSV only)"
    )
    raw_sha256: str | None = Field(
        description="sha256 of the landed copy's bytes; None with a folder of exports or when nothing was landed"
    )
    table_rows: int
    sampled: bool
    exports: list[str] | None = Field(
        default=None,
        description="with a folder of exports: the partition keys the sales table was built from, oldest "
        "first (data_sha256 digests them with their sha256); None for the single CSV",
    )


class MetricsReport(_Model):
    """`sales_regression_metrics.json`: the leaderboard, the champion, the seed-protocol comparison, the
    leakage report, the intervals, the promotion decision and the lineage of one `trained_models` run."""

    generated_at: str = Field(description="ISO 8601, UTC")
    target: str
    features: list[str]
    leaky: bool
    leaky_features: list[str]
    protocol: TrainingProtocol
    models: list[ModelEntry] = Field(min_length=1)
    champion: Champion
    seed_protocol: SeedProtocol
    leakage: list[LeakageRow]
    intervals: Intervals | None = Field(description="None when no interval could be calibrated")
    promotion: Promotion
    lineage: Lineage

    @classmethod
    def read(cls, path: Path) -> MetricsReport:
        """Validate a written metrics file; `ValueError` names the file and what does not match."""
        return read_report(cls, path, "trained_models")


class FeatureImportance(_Model):
    rank: int = Field(ge=1)
    feature: str
    mean_abs_shap: float = Field(ge=0, description="mean |SHAP| over the explained rows, SALES in US dollars")


class ShapReport(_Model):
    """`shap_global_importance.json`: the champion candidate's global importance, one-hot columns summed
    back to their feature, largest first."""

    model: str
    estimator: str
    explainer: str = Field(
        description="TreeExplainer, LinearExplainer, ExactExplainer (exact Shapley values over the columns the "
        "model reads, sales_assets.ml.explain.ExactShapley) or PermutationExplainer"
    )
    rows: int = Field(description="training rows explained")
    mlflow_model_version: str
    importance: list[FeatureImportance] = Field(min_length=1)

    @classmethod
    def read(cls, path: Path) -> ShapReport:
        """Validate a written SHAP file; `ValueError` names the file and what does not match."""
        return read_report(cls, path, "shap_importance")
