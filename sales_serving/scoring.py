"""Scoring validated SalesFeatures rows with a LoadedModel into response objects; shared by the app and CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sales_serving.loading import LoadedModel
from sales_serving.schema import BatchPredictionResponse, PredictionResponse, RowWarning, SalesFeatures


def row_mapping(row: SalesFeatures) -> dict[str, Any]:
    return {**row.__dict__, **row.model_extra} if row.model_extra else row.__dict__


def ignored_fields(rows: Sequence[SalesFeatures], model: LoadedModel) -> list[str]:
    used = set(model.metadata.request_fields)
    sent: set[str] = set()
    for row in rows:
        sent.update(row.model_fields_set)
        if row.model_extra:
            sent.update(row.model_extra)
    return sorted(sent - used)


def _identity(model: LoadedModel, rows: Sequence[SalesFeatures]) -> dict[str, Any]:
    metadata = model.metadata
    return {
        "target": metadata.target,
        "model_name": metadata.model_name,
        "model_version": metadata.version,
        "mlflow_run_id": metadata.lineage.mlflow_run_id,
        "backend": model.backend,
        "ignored_features": ignored_fields(rows, model),
    }


LEAKY_MODEL_WARNING = (
    "this model is marked leaky: one of its inputs is derived from SALES itself, so its answers look better "
    "than they can be on new orders"
)


def model_warnings(model: LoadedModel) -> list[str]:
    return [LEAKY_MODEL_WARNING] if model.metadata.leaky else []


def predict_one(model: LoadedModel, row: SalesFeatures) -> PredictionResponse:
    """Raises features.RowError when the bundle needs a field the row lacks."""
    predictions, features = model.predict([row_mapping(row)])
    return PredictionResponse(
        prediction=float(predictions[0]),
        features_used=features.row(0),
        warnings=model_warnings(model) + [message for _, message in features.warnings],
        **_identity(model, [row]),
    )


def predict_many(model: LoadedModel, rows: Sequence[SalesFeatures]) -> BatchPredictionResponse:
    """Raises features.RowError (naming the 0-based row) when the bundle needs a field a row lacks."""
    predictions, features = model.predict([row_mapping(row) for row in rows])
    return BatchPredictionResponse(
        count=len(rows),
        predictions=predictions.tolist(),
        warnings=[RowWarning(row=None, message=message) for message in model_warnings(model)]
        + [RowWarning(row=row, message=message) for row, message in features.warnings],
        **_identity(model, rows),
    )
