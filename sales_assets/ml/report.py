"""The documents training writes: the metrics file (leaderboard, champion, seed report, promotion, lineage)
and the feature records of the model card."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from sales_assets.ml.features import FeatureSpec
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
) -> dict:
    by_model = {result.model: result for result in outcome.results}
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "target": outcome.spec.target,
        "features": outcome.spec.columns,
        "leaky": outcome.leaky,
        "leaky_features": outcome.leaky_features,
        "protocol": {
            "rows": len(outcome.features),
            "rows_train": len(outcome.split.train_index),
            "rows_test": len(outcome.split.test_index),
            "test_size": settings.ml.test_size,
            "random_state": settings.ml.random_state,
            "cv_folds": settings.ml.cv_folds,
            "cv_repeats": settings.ml.cv_repeats,
            "champion_rule": "lowest CV RMSE among models whose ONNX export passes parity",
            "table_rows": data["table_rows"],
            "sampled": data["sampled"],
        },
        "models": [
            {
                "model": row["model"],
                "estimator": row["estimator"],
                "cv": by_model[row["model"]].summary(),
                "cv_folds": by_model[row["model"]].fold_scores,
                "fit_seconds": row["fit_seconds"],
                "eligible": row["model"] not in outcome.ineligible,
                "ineligible_reason": outcome.ineligible.get(row["model"]),
            }
            for row in outcome.board.iter_rows(named=True)
        ],
        "champion": {
            "model": outcome.champion,
            "estimator": by_model[outcome.champion].estimator,
            "cv": outcome.champion_cv,
            "holdout": outcome.champion_holdout,
            "onnx_parity": outcome.champion_parity.as_dict(),
        },
        "seed_protocol": seed_report,
        "leakage": outcome.leakage.to_dicts(),
        "intervals": outcome.intervals.as_dict() if outcome.intervals else None,
        "promotion": tracking["promotion"],
        "lineage": {
            "dagster_run_id": run_id,
            "mlflow_run_id": tracking["mlflow_run_id"],
            "mlflow_model_version": tracking["mlflow_model_version"],
            "mlflow_model_run_id": tracking["mlflow_model_run_id"],
            **data,
        },
    }


def candidate_card(outcome: TrainingOutcome, payload: dict) -> dict:
    """The draft model card of the champion candidate, which the export step turns into bundle metadata."""
    return {
        "target": outcome.spec.target,
        "estimator": payload["champion"]["estimator"],
        "model": outcome.champion,
        "leaky": outcome.leaky,
        "leaky_features": outcome.leaky_features,
        "request_fields": outcome.spec.request_fields,
        "derived_features": outcome.spec.derived,
        "features": feature_records(outcome.spec, outcome.features),
        "metrics": {"cv": outcome.champion_cv, "holdout": outcome.champion_holdout},
        "intervals": payload["intervals"],
        "promotion": payload["promotion"],
        "lineage": payload["lineage"],
    }
