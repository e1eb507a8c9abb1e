"""POST /predict (one order line) and POST /predict/batch (many), in this project's own request shape.

/predict is the hot path: `fast_predict.answer_predict` parses, validates, scores and encodes it (see that
module); its OpenAPI entry here names SalesFeatures and PredictionResponse as usual.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from sales_serving.dependencies import ServedModel, Settings
from sales_serving.errors import ERROR_RESPONSES, field_error
from sales_serving.fast_predict import answer_predict
from sales_serving.features import RowError
from sales_serving.instrumentation import InstrumentedRoute
from sales_serving.limits import check_batch_size, check_unknown_fields
from sales_serving.metrics import predicted_rows
from sales_serving.precision import PRECISION_PARAMETER, Precision, rounded_batch
from sales_serving.protocols import SECOND_LINE
from sales_serving.schema import EXAMPLE_ROW, BatchPredictionResponse, BatchRequest, PredictionResponse
from sales_serving.scoring import predict_many

BATCH_EXAMPLES = {
    "two_order_lines": {
        "summary": "The export's first two order lines",
        "value": {"rows": [EXAMPLE_ROW, SECOND_LINE]},
    }
}

router = APIRouter(tags=["predict"], responses=ERROR_RESPONSES, route_class=InstrumentedRoute)

PREDICT_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/SalesFeatures"},
                "examples": {
                    "order_line": {
                        "summary": "Order 10107, line 2: 30 motorcycles at 95.70 (the export's first row)",
                        "value": EXAMPLE_ROW,
                    }
                },
            }
        },
    },
    "parameters": [
        {
            "name": "echo_features",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": False},
            "description": "Also return the model's inputs (derived features included) as `features_used`.",
        },
        PRECISION_PARAMETER,
    ],
}


@router.post("/predict", response_model=PredictionResponse, openapi_extra=PREDICT_OPENAPI)
async def predict(request: Request) -> Response:
    """Predicts SALES for one order line, with 80% and 95% intervals (the seed's SalesFeatures payload works
    unchanged), in USD to the cent; `?precision=full` answers the model's unrounded floats.
    `?echo_features=true` adds the model's inputs."""
    # In the running service fast_predict.PredictFastPath answers this route with the same function,
    # without the framework (a comment, not the docstring: /docs shows the docstring).
    content = answer_predict(
        request.app.state, await request.body(), request.headers.get("content-type"), request.url.query
    )
    return Response(content, media_type="application/json")


@router.post("/predict/batch", response_model=BatchPredictionResponse)
async def predict_batch(
    batch: Annotated[BatchRequest, Body(openapi_examples=BATCH_EXAMPLES)],
    model: ServedModel,
    settings: Settings,
    precision: Annotated[Precision, Query(description=PRECISION_PARAMETER["description"])] = "cents",
) -> BatchPredictionResponse:
    """Predicts SALES for up to SALES_SERVING_BATCH_LIMIT rows, one prediction (and interval) per row in order,
    in USD to the cent; `?precision=full` answers the model's unrounded floats."""
    rows = batch.rows
    check_batch_size(len(rows), settings.serving_batch_limit)
    check_unknown_fields(rows, settings.serving_max_unknown_fields, ["rows"])
    # Off the event loop: a big batch must not stall /health and single predictions.
    try:
        response = await run_in_threadpool(predict_many, model, rows)
    except RowError as error:
        raise field_error(error, "rows") from error
    predicted_rows(model.backend).inc(len(rows))
    return rounded_batch(response, precision)
