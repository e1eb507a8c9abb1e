"""The documents training writes: the metrics file (leaderboard, champion, seed report, promotion, lineage)
as its `MetricsReport` model, and the draft model card of the champion candidate."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from sales_assets.ml.features import FeatureSpec
from sales_assets.ml.report_model import (
    Champion,
    CVSummary,
    Intervals,
    LeakageRow,
    Lineage,
    MetricsReport,
    ModelEntry,
    OnnxParity,
    Promotion,
    Scores,
    SeedProtocol,
    TrainingProtocol,
)
from sales_assets.ml.training import TrainingOutcome
from sales_assets.settings import Settings


def feature_records(spec: FeatureSpec, features: pd.DataFrame) -> list[dict]:
    numeric = [{"name": name, "kind": "numeric", "dtype": "float64"} for name in spec.numeric]
    categorical = [
        {
            "name": name,
            "kind": "categorical",
            "dtype": "string",
            "allowed_categories": sorted(features[name].astype(str).unique().tolist()),
        }
        for name in spec.categorical
    ]
    return numeric + categorical


def metrics_payload(
    outcome: TrainingOutcome,
    settings: Settings,
    seed_report: dict,
    tracking: dict,
    run_id: str,
    data: dict,
) -> MetricsReport:
    """The metrics file of one training as its model (`sales_regression_metrics.json`). Raises pydantic's
    `ValidationError` when a part (seed report, tracking, lineage `data`) is not of the shape the file
    promises, before anything is written."""
    by_model = {result.model: result for result in outcome.results}
    return MetricsReport(
        generated_at=datetime.now(UTC).isoformat(),
        target=outcome.spec.target,
        features=outcome.spec.columns,
        leaky=outcome.leaky,
        leaky_features=outcome.leaky_features,
        protocol=TrainingProtocol(
            rows=len(outcome.features),
            rows_train=len(outcome.split.train_index),
            rows_test=len(outcome.split.test_index),
            test_size=settings.ml.test_size,
            random_state=settings.ml.random_state,
            cv_folds=settings.ml.cv_folds,
            cv_repeats=settings.ml.cv_repeats,
            champion_rule="lowest CV RMSE among models whose ONNX export passes parity",
            table_rows=data["table_rows"],
            sampled=data["sampled"],
        ),
        models=[
            ModelEntry(
                model=row["model"],
                estimator=row["estimator"],
                cv=CVSummary(**by_model[row["model"]].summary()),
                cv_folds=[Scores(**fold) for fold in by_model[row["model"]].fold_scores],
                fit_seconds=row["fit_seconds"],
                eligible=row["model"] not in outcome.ineligible,
                ineligible_reason=outcome.ineligible.get(row["model"]),
            )
            for row in outcome.board.iter_rows(named=True)
        ],
        champion=Champion(
            model=outcome.champion,
            estimator=by_model[outcome.champion].estimator,
            cv=CVSummary(**outcome.champion_cv),
            holdout=Scores(**outcome.champion_holdout),
            onnx_parity=OnnxParity(**outcome.champion_parity.as_dict()),
        ),
        seed_protocol=SeedProtocol.model_validate(seed_report),
        leakage=[LeakageRow(**row) for row in outcome.leakage.to_dicts()],
        intervals=Intervals.model_validate(outcome.intervals.as_dict()) if outcome.intervals else None,
        promotion=Promotion.model_validate(tracking["promotion"]),
        lineage=Lineage(
            dagster_run_id=run_id,
            mlflow_run_id=tracking["mlflow_run_id"],
            mlflow_model_version=tracking["mlflow_model_version"],
            mlflow_model_run_id=tracking["mlflow_model_run_id"],
            **data,
        ),
    )


def candidate_card(outcome: TrainingOutcome, report: MetricsReport) -> dict:
    """The draft model card of the champion candidate, which the export step turns into bundle metadata."""
    return {
        "target": outcome.spec.target,
        "estimator": report.champion.estimator,
        "model": outcome.champion,
        "leaky": outcome.leaky,
        "leaky_features": outcome.leaky_features,
        "request_fields": outcome.spec.request_fields,
        "derived_features": outcome.spec.derived,
        "features": feature_records(outcome.spec, outcome.features),
        "metrics": {
            "cv": report.champion.cv.model_dump(mode="json"),
            "holdout": report.champion.holdout.model_dump(mode="json"),
        },
        "intervals": report.intervals.model_dump(mode="json") if report.intervals else None,
        "promotion": report.promotion.model_dump(mode="json"),
        "lineage": report.lineage.model_dump(mode="json"),
    }
