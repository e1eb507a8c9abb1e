"""Minimal materialised outputs for the dashboard: a hive-partitioned Parquet copy, a leaderboard, SHAP
importances and one segment's time-series report, with numbers the tests can assert."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl

from sales_assets.ml.report_model import (
    METRICS_FILE,
    SHAP_FILE,
    Champion,
    CVSummary,
    FeatureImportance,
    Lineage,
    MetricsReport,
    ModelEntry,
    OnnxParity,
    Promotion,
    Scores,
    SeedProtocol,
    ShapReport,
    TrainingProtocol,
)
from sales_assets.settings import Settings
from sales_assets.timeseries.report_model import (
    Backtest,
    CandidateResult,
    Coverage,
    DataSummary,
    Errors,
    ForecastPoint,
    MonthValue,
    Protocol,
    Risk,
    SegmentInfo,
    ShippedForecast,
    TimeseriesReport,
)

CHAMPION = "gradient_boosting_200"
RUNNER_UP = "linear_regression"
SEGMENT = "Classic Cars|USA"
SHAP_IMPORTANCES = {
    "QUANTITYORDERED": 1210.5,
    "PRICEEACH": 910.0,
    "MSRP": 402.3,
    "PRODUCTLINE": 120.8,
    "COUNTRY": 64.1,
}
# Monthly SALES with a November peak, and a six-month forecast after it.
HISTORY = {f"{year}-{month:02d}": 40_000.0 + 5_000 * month + (90_000 if month == 11 else 0)
           for year in (2003, 2004) for month in range(1, 13)}  # fmt: skip
FORECAST = {f"2005-{month:02d}": 40_000.0 + 5_500 * month for month in range(1, 7)}

SALES_ROWS = [
    # ORDERNUMBER, SALES, ORDERDATE, PRODUCTLINE, COUNTRY, CUSTOMERNAME
    (10100, 1000.0, dt.datetime(2003, 1, 6), "Classic Cars", "USA", "Land of Toys Inc."),
    (10100, 500.0, dt.datetime(2003, 1, 6), "Motorcycles", "USA", "Land of Toys Inc."),
    (10101, 2000.0, dt.datetime(2003, 2, 9), "Classic Cars", "France", "Atelier graphique"),
    (10200, 4000.0, dt.datetime(2004, 3, 1), "Vintage Cars", "France", "Atelier graphique"),
    (10201, 2500.5, dt.datetime(2004, 3, 15), "Classic Cars", "Norway", "Baane Mini Imports"),
]


def sales_frame() -> pl.DataFrame:
    frame = pl.DataFrame(
        SALES_ROWS,
        schema=["ORDERNUMBER", "SALES", "ORDERDATE", "PRODUCTLINE", "COUNTRY", "CUSTOMERNAME"],
        orient="row",
    )
    return frame.with_columns(
        pl.col("ORDERDATE").dt.year().cast(pl.Int64).alias("YEAR"),
        pl.col("ORDERDATE").dt.month().cast(pl.Int64).alias("MONTH"),
    )


def write_dashboard_outputs(data_dir: Path, parquet_from: Path | None = None) -> Settings:
    """Write every output the dashboard reads under `data_dir`, laid out as the assets lay them out; the
    sales Parquet is the five rows above, or a copy of the `parquet_from` data dir's cleaned Parquet."""
    settings = Settings(data_dir=data_dir)
    if parquet_from is None:
        settings.parquet_dir.mkdir(parents=True)
        sales_frame().write_parquet(settings.parquet_dir, partition_by="YEAR")
    else:
        shutil.copytree(Settings(data_dir=parquet_from).parquet_dir, settings.parquet_dir)

    # Through the models `trained_models` and `shap_importance` write with (sales_assets/ml/report_model.py).
    settings.metrics_dir.mkdir(parents=True)
    (settings.metrics_dir / METRICS_FILE).write_text(metrics_report().model_dump_json())
    settings.explainability_dir.mkdir(parents=True)
    (settings.explainability_dir / SHAP_FILE).write_text(shap_report().model_dump_json())

    settings.timeseries_dir.mkdir(parents=True)
    (settings.timeseries_dir / "sales_ts_risk_classic_cars_usa.json").write_text(
        timeseries_report().model_dump_json()
    )
    return settings


def timeseries_report() -> TimeseriesReport:
    """One segment's report through the model `ts_risk_reports` validates it with: the history and
    forecast above, a GARCH fit with unrounded figures (the dashboard rounds them)."""
    return TimeseriesReport(
        segment=SegmentInfo(key=SEGMENT, product_line="Classic Cars", country="USA"),
        status="ok",
        data=DataSummary(
            first_order_date="2003-01-06", last_order_date="2004-12-31", months=len(HISTORY),
            model_months=len(HISTORY), zero_months=[], n_zero_months=0, partial_last_month=False,
            partial_month_excluded=None, required_months=24, total_sales=sum(HISTORY.values()),
        ),
        history=[MonthValue(month=f"{month}-01", sales=value) for month, value in HISTORY.items()],
        settings={"forecast_steps": len(FORECAST)},
        # A shipped forecast always comes with the backtest that chose it and its measured coverage.
        backtest=Backtest(
            protocol=Protocol(
                horizon=6, step=1, selection_origins=["2004-01"], evaluation_origins=["2004-07"],
                selection_last_month="2004-06", description="Rolling origins, 6 months ahead.",
            ),
            selection_metric="rmse",
            candidates=[
                CandidateResult(
                    model="seasonal_naive", kind="baseline", parameters=0, eligible=True, problems=[],
                    selection=Errors(rmse=33_868.4, mae=25_000.0, mape=None, smape=20.0, points=6, mape_points=0),
                )
            ],
            forecasts={},
        ),
        forecast=ShippedForecast(
            model="seasonal_naive", steps=len(FORECAST), interval_levels=[80, 95], interval_method="conformal",
            calibration_points=12, capped_levels=[],
            coverage=[Coverage(level=80, coverage=0.83, points=6), Coverage(level=95, coverage=1.0, points=6)],
            points=[
                ForecastPoint(month=f"{month}-01", forecast=value, lower_80=value * 0.8, upper_80=value * 1.2,
                              lower_95=value * 0.7, upper_95=value * 1.3)
                for month, value in FORECAST.items()
            ],
        ),
        risk=Risk(
            return_method="percentage change", skipped_zero_denominator_months=[], horizon=6,
            forecast_months=list(FORECAST), model="GARCH(1,1)", n_observations=23, min_observations=36,
            exploratory=True, mean_return_pct=1.23456789, sd_return_pct=12.3456789, status="ok",
            params={"omega": 12.3456789, "alpha[1]": 0.123456789}, persistence=0.912345678, converged=True,
            long_run_volatility_monthly_pct=14.56789, caveats=["23 returns: exploratory"],
        ),
        warnings=[],
        seconds=1.0,
    )  # fmt: skip


def _model_entry(
    model: str, estimator: str, rmse: float, mae: float, r2: float, fit_seconds: float
) -> ModelEntry:
    cv = CVSummary(
        rmse_mean=rmse, rmse_std=rmse / 15, mae_mean=mae, mae_std=mae / 20, r2_mean=r2, r2_std=0.01
    )
    folds = [Scores(rmse=rmse - 10, mae=mae, r2=r2), Scores(rmse=rmse + 10, mae=mae, r2=r2)]
    return ModelEntry(
        model=model,
        estimator=estimator,
        cv=cv,
        cv_folds=folds,
        fit_seconds=fit_seconds,
        eligible=True,
        ineligible_reason=None,
    )


def metrics_report() -> MetricsReport:
    """A leaderboard of two models (the champion listed second, so the dashboard must sort by CV RMSE)."""
    runner_up = _model_entry(RUNNER_UP, "LinearRegression", 812.4, 455.0, 0.81, 0.05)
    champion = _model_entry(CHAMPION, "GradientBoostingRegressor", 569.3, 311.0, 0.904, 1.5)
    holdout = Scores(rmse=701.0, mae=338.0, r2=0.887)
    features = list(SHAP_IMPORTANCES)
    return MetricsReport(
        generated_at="2026-01-05T06:00:00+00:00", target="SALES", features=features, leaky=False,
        leaky_features=[],
        protocol=TrainingProtocol(
            rows=2_000, rows_train=1_600, rows_test=400, test_size=0.2, random_state=42, cv_folds=2,
            cv_repeats=1, champion_rule="lowest CV RMSE", table_rows=2_000, sampled=False,
        ),
        models=[runner_up, champion],
        champion=Champion(
            model=CHAMPION, estimator="GradientBoostingRegressor", cv=champion.cv, holdout=holdout,
            onnx_parity=OnnxParity(passed=True, max_abs_diff=0.001, tolerance=0.01, rows_checked=400,
                                   rows_outside=0),
        ),
        seed_protocol=SeedProtocol(
            label="seed protocol (v1)", leaky=True, eligible_as_champion=False, model="GradientBoostingRegressor",
            rows_before_filter=2_000, rows_after_filter=1_900, iqr_columns=["SALES"], iqr_factor=1.5,
            test_size=0.2, random_state=42, features=[*features, "DEALSIZE"],
            holdout=Scores(rmse=388.0, mae=220.0, r2=0.94), fit_seconds=0.4,
        ),
        leakage=[],
        intervals=None,
        promotion=Promotion(promote=True, reason="no incumbent", candidate_rmse=holdout.rmse, incumbent_rmse=None,
                            incumbent_version=None),
        lineage=Lineage(
            dagster_run_id="run-1", mlflow_run_id="mlflow-1", mlflow_model_version="1",
            mlflow_model_run_id="mlflow-model-1", data_sha256="0" * 64, parquet_files=3, parquet_dir="processed",
            raw_path="raw/sales_data_sample.csv", raw_sha256=None, table_rows=2_000, sampled=False,
        ),
    )  # fmt: skip


def shap_report() -> ShapReport:
    return ShapReport(
        model=CHAMPION,
        estimator="GradientBoostingRegressor",
        explainer="TreeExplainer",
        rows=120,
        mlflow_model_version="1",
        importance=[
            FeatureImportance(rank=rank, feature=name, mean_abs_shap=value)
            for rank, (name, value) in enumerate(SHAP_IMPORTANCES.items(), start=1)
        ],
    )
