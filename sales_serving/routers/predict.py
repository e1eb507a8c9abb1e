"""POST /predict (one order line) and POST /predict/batch (many), in this project's own request shape."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from sales_serving.dependencies import ServedModel, Settings
from sales_serving.errors import ERROR_RESPONSES, ServiceError, field_error
from sales_serving.features import RowError
from sales_serving.schema import (
    BatchPredictionResponse,
    BatchRequest,
    FieldError,
    PredictionResponse,
    SalesFeatures,
)
from sales_serving.scoring import predict_many, predict_one

router = APIRouter(tags=["predict"], responses=ERROR_RESPONSES)


@router.post("/predict", response_model=PredictionResponse)
async def predict(row: SalesFeatures, model: ServedModel, request: Request) -> PredictionResponse:
    """Predicts SALES for one order line (the seed's SalesFeatures payload works unchanged)."""
    try:
        response = predict_one(model, row)
    except RowError as error:
        raise field_error(error) from error
    request.app.state.metrics.observe_predictions(model.backend, 1)
    return response


@router.post("/predict/batch", response_model=BatchPredictionResponse)
async def predict_batch(
    batch: BatchRequest, model: ServedModel, settings: Settings, request: Request
) -> BatchPredictionResponse:
    """Predicts SALES for up to SALES_SERVING_BATCH_LIMIT rows, one prediction per row in order."""
    rows = batch.rows
    limit = settings.serving_batch_limit
    if len(rows) > limit:
        detail = FieldError(
            field="rows",
            location=["rows"],
            message=f"at most {limit} rows per call (SALES_SERVING_BATCH_LIMIT), got {len(rows)}",
            type="too_long",
        )
        raise ServiceError(413, "batch_too_large", detail.message, [detail])
    # Off the event loop: a big batch must not stall /health and single predictions.
    try:
        response = await run_in_threadpool(predict_many, model, rows)
    except RowError as error:
        raise field_error(error, "rows") from error
    request.app.state.metrics.observe_predictions(model.backend, len(rows))
    return response
