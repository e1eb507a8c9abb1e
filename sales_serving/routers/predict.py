"""POST /predict (one order line) and POST /predict/batch (many), in this project's own request shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from sales_serving.dependencies import ServedModel, Settings
from sales_serving.errors import ERROR_RESPONSES, field_error
from sales_serving.features import RowError
from sales_serving.instrumentation import InstrumentedRoute
from sales_serving.limits import check_batch_size, check_unknown_fields
from sales_serving.metrics import PREDICTED_ROWS
from sales_serving.schema import BatchPredictionResponse, BatchRequest, PredictionResponse, SalesFeatures
from sales_serving.scoring import predict_many, predict_one

router = APIRouter(tags=["predict"], responses=ERROR_RESPONSES, route_class=InstrumentedRoute)

EchoFeatures = Annotated[
    bool, Query(description="Also return the model's inputs (derived features included) as `features_used`.")
]


@router.post("/predict", response_model=PredictionResponse)
async def predict(
    row: SalesFeatures, model: ServedModel, settings: Settings, echo_features: EchoFeatures = False
) -> PredictionResponse:
    """Predicts SALES for one order line, with 80% and 95% intervals (the seed's SalesFeatures payload works
    unchanged)."""
    check_unknown_fields([row], settings.serving_max_unknown_fields)
    try:
        response = predict_one(model, row, echo_features)
    except RowError as error:
        raise field_error(error) from error
    PREDICTED_ROWS.labels(model.backend).inc()
    return response


@router.post("/predict/batch", response_model=BatchPredictionResponse)
async def predict_batch(
    batch: BatchRequest, model: ServedModel, settings: Settings
) -> BatchPredictionResponse:
    """Predicts SALES for up to SALES_SERVING_BATCH_LIMIT rows, one prediction (and interval) per row in order."""
    rows = batch.rows
    check_batch_size(len(rows), settings.serving_batch_limit)
    check_unknown_fields(rows, settings.serving_max_unknown_fields, ["rows"])
    # Off the event loop: a big batch must not stall /health and single predictions.
    try:
        response = await run_in_threadpool(predict_many, model, rows)
    except RowError as error:
        raise field_error(error, "rows") from error
    PREDICTED_ROWS.labels(model.backend).inc(len(rows))
    return response
