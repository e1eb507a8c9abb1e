"""Scoring validated SalesFeatures rows with a LoadedModel: predictions, intervals, warnings.

`score` is the one scoring path; `predict_one` / `predict_many` shape its result for /predict, /predict/batch
and the CLI, and the protocol routers (/invocations, /v2) shape it their own way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sales_serving.features import FeatureColumns
from sales_serving.intervals import NO_INTERVALS_WARNING
from sales_serving.loading import LoadedModel
from sales_serving.schema import (
    BatchInterval,
    BatchPredictionResponse,
    PredictionResponse,
    RowWarning,
    SalesFeatures,
)

LEAKY_MODEL_WARNING = (
    "this model is marked leaky: one of its inputs is derived from SALES itself, so its answers look better "
    "than they can be on new orders"
)


@dataclass(frozen=True)
class Scored:
    """Predictions (SALES, USD, one per row), interval bounds per level (None without calibration), the
    model's input columns, and warnings: about the model, then (row, message) pairs."""

    predictions: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]] | None
    features: FeatureColumns
    model_warnings: list[str]

    @property
    def row_warnings(self) -> list[tuple[int, str]]:
        return self.features.warnings


def row_mapping(row: SalesFeatures) -> dict[str, Any]:
    return {**row.__dict__, **row.model_extra} if row.model_extra else row.__dict__


def model_warnings(model: LoadedModel) -> list[str]:
    warnings = [LEAKY_MODEL_WARNING] if model.metadata.leaky else []
    if model.metadata.intervals is None:
        warnings.append(NO_INTERVALS_WARNING)
    return warnings


def score(model: LoadedModel, rows: Sequence[Mapping[str, Any]]) -> Scored:
    """Scores request rows (validated SalesFeatures as mappings); raises features.RowError naming the
    0-based row when the bundle needs a field a row lacks or a value it cannot take."""
    predictions, features = model.predict(rows)
    bands = model.intervals
    bounds = None
    if bands is not None:
        price = None
        if bands.price_cap is not None:
            price = np.fromiter((row[bands.price_field] for row in rows), dtype=np.float64, count=len(rows))
        bounds = bands.bounds(predictions, price)
    return Scored(predictions, bounds, features, model_warnings(model))


def ignored_fields(rows: Sequence[SalesFeatures], model: LoadedModel) -> list[str]:
    used = set(model.metadata.request_fields)
    sent: set[str] = set()
    for row in rows:
        sent.update(row.model_fields_set)
        if row.model_extra:
            sent.update(row.model_extra)
    return sorted(sent - used)


def identity(model: LoadedModel, rows: Sequence[SalesFeatures]) -> dict[str, Any]:
    metadata = model.metadata
    return {
        "target": metadata.target,
        "model_name": metadata.model_name,
        "model_version": metadata.version,
        "mlflow_run_id": metadata.lineage.mlflow_model_run_id,
        "backend": model.backend,
        "ignored_features": ignored_fields(rows, model),
    }


def prediction_payload(model: LoadedModel, row: SalesFeatures, echo_features: bool = False) -> dict[str, Any]:
    """/predict's answer as plain JSON-ready values (PredictionResponse's fields); `echo_features` adds the
    model's inputs. Raises features.RowError."""
    scored = score(model, [row_mapping(row)])
    intervals = None
    if scored.intervals is not None:
        intervals = [
            {"level": level, "lower": float(lower[0]), "upper": float(upper[0])}
            for level, (lower, upper) in scored.intervals.items()
        ]
    return {
        "currency": "USD",
        **identity(model, [row]),
        "prediction": float(scored.predictions[0]),
        "intervals": intervals,
        "features_used": scored.features.row(0) if echo_features else None,
        "warnings": scored.model_warnings + [message for _, message in scored.row_warnings],
    }


def predict_one(model: LoadedModel, row: SalesFeatures, echo_features: bool = False) -> PredictionResponse:
    """prediction_payload as a PredictionResponse (for the CLI). Raises features.RowError."""
    return PredictionResponse.model_validate(prediction_payload(model, row, echo_features))


def predict_many(model: LoadedModel, rows: Sequence[SalesFeatures]) -> BatchPredictionResponse:
    """/predict/batch's answer. Raises features.RowError naming the 0-based row."""
    scored = score(model, [row_mapping(row) for row in rows])
    intervals = None
    if scored.intervals is not None:
        intervals = [
            BatchInterval(level=level, lower=lower.tolist(), upper=upper.tolist())
            for level, (lower, upper) in scored.intervals.items()
        ]
    return BatchPredictionResponse(
        count=len(rows),
        predictions=scored.predictions.tolist(),
        intervals=intervals,
        warnings=[RowWarning(row=None, message=message) for message in scored.model_warnings]
        + [RowWarning(row=row, message=message) for row, message in scored.row_warnings],
        **identity(model, rows),
    )
