"""How many digits the prediction routes and `sales-predict` answer with: USD to the cent unless the client
asks for `?precision=full` (`--precision full`): the model's float, e.g. 3208.949951171875 instead of 3208.95."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sales_serving.contract.formatting import money_number, round_money
from sales_serving.errors import validation_failure
from sales_serving.schema import BatchPredictionResponse

Precision = Literal["cents", "full"]
PRECISIONS: tuple[Precision, ...] = ("cents", "full")
PRECISION_PARAMETER = {
    "name": "precision",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": list(PRECISIONS), "default": "cents"},
    "description": "`cents` (default): the prediction and the interval bounds in USD rounded to the cent; "
    "`full`: the model's own floats, unrounded.",
}


def requested_precision(query: Mapping[str, list[str]]) -> Precision:
    """The `precision` of a parsed query string (`urllib.parse.parse_qs`), `cents` when absent. Raises
    ServiceError 422 naming the parameter for any other value."""
    value = query.get("precision", ["cents"])[-1].lower()
    if value not in PRECISIONS:
        raise validation_failure(
            [
                {
                    "type": "literal_error",
                    "loc": ("query", "precision"),
                    "msg": "Input should be 'cents' or 'full'",
                    "input": value,
                }
            ]
        )
    return value


def rounded_payload(payload: dict[str, Any], precision: Precision) -> dict[str, Any]:
    """/predict's answer (`scoring.prediction_payload`) with the prediction and the interval bounds rounded
    to the cent, unless `precision` is `full`; the echoed features are the request's and stay as sent."""
    if precision == "full":
        return payload
    intervals = payload["intervals"]
    return payload | {
        "prediction": round_money(payload["prediction"]),
        "intervals": None
        if intervals is None
        else [
            item | {"lower": round_money(item["lower"]), "upper": round_money(item["upper"])}
            for item in intervals
        ],
    }


def rounded_batch(response: BatchPredictionResponse, precision: Precision) -> BatchPredictionResponse:
    """/predict/batch's answer with the predictions and the interval bounds rounded to the cent, unless
    `precision` is `full`."""
    if precision == "full":
        return response
    intervals = (
        None
        if response.intervals is None
        else [
            item.model_copy(update={"lower": _cents(item.lower), "upper": _cents(item.upper)})
            for item in response.intervals
        ]
    )
    return response.model_copy(update={"predictions": _cents(response.predictions), "intervals": intervals})


def amount_cell(amount: float, precision: Precision) -> str:
    """One amount (USD) as a CSV cell: to the cent (`formatting.money_number`: `3208.95`), or with `full`
    the float's shortest exact text (`3208.949951171875`)."""
    return repr(amount) if precision == "full" else money_number(amount)


def _cents(amounts: list[float]) -> list[float]:
    return [round_money(amount) for amount in amounts]
