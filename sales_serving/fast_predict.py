"""POST /predict without the framework on its path: the hot route answered by one ASGI layer.

Measured (bench/bench_serving.py, in-process layers) FastAPI's routing, dependency solving and exception
layers cost more than the model for a single-row request, so `PredictFastPath` answers `POST /predict`
itself with `answer_predict`, the same function the documented FastAPI route calls: one parsing, validation,
scoring and error path, with the route's metrics. Every other request goes on to FastAPI.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from sales_serving.errors import (
    HTTP_ERROR_KINDS,
    ServiceError,
    body_too_large_message,
    error_response,
    field_error,
    validation_failure,
)
from sales_serving.features import RowError
from sales_serving.limits import check_json_shape, check_unknown_fields
from sales_serving.metrics import LATENCY, predicted_rows, request_counter
from sales_serving.precision import requested_precision, rounded_payload
from sales_serving.schema import SalesFeatures
from sales_serving.scoring import prediction_payload

PREDICT_PATH = "/predict"
# The words FastAPI (pydantic) reads as a boolean query parameter; anything else is refused, as the schema
# (`boolean`) says.
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "t", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "f", "n"})
JSON_HEADERS = [(b"content-type", b"application/json")]


def parse_row(body: bytes, content_type: str | None) -> SalesFeatures:
    """One SalesFeatures from a JSON body (pydantic's Rust parser validates straight from the bytes);
    ServiceError 400 for malformed JSON, 422 naming the field otherwise."""
    if content_type is None or "json" not in content_type:
        raise validation_failure(
            [{"type": "model_attributes_type", "loc": ("body",), "msg": "", "input": body}]
        )
    try:
        return SalesFeatures.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors()
        malformed = next((item for item in problems if item["type"] == "json_invalid"), None)
        if malformed is not None:
            reason = malformed.get("ctx", {}).get("error", "JSON decode error")
            raise ServiceError(400, "malformed_json", f"request body is not valid JSON: {reason}") from error
        raise validation_failure(problems) from error


def echo_features(query_string: str) -> bool:
    """The `echo_features` query parameter as a boolean (absent: False); ServiceError 422 for a value that
    is not a boolean (`null`, empty, `maybe`)."""
    given = parse_qs(query_string, keep_blank_values=True).get("echo_features")
    if given is None:
        return False
    word = given[-1].lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise validation_failure(
        [
            {
                "type": "bool_parsing",
                "loc": ("query", "echo_features"),
                "msg": f"Input should be a valid boolean, unable to interpret input {given[-1]!r}",
                "input": given[-1],
            }
        ],
        (),
    )


def answer_predict(state: Any, body: bytes, content_type: str | None, query_string: str) -> bytes:
    """/predict's JSON answer (PredictionResponse) for one request body; ServiceError for every refusal
    (503 no model, 400 malformed JSON, 422 a field, 422 too many unknown fields, 422 an unknown
    `precision`). Amounts are to the cent unless the query asks `precision=full` (`precision`)."""
    model = state.holder.model
    if model is None:
        raise ServiceError(503, "no_model", state.holder.status().reason or "no model loaded")
    row = parse_row(body, content_type)
    check_unknown_fields([row], state.settings.serving_max_unknown_fields)
    query = parse_qs(query_string) if query_string else {}
    echo = query_string != "" and echo_features(query_string)
    precision = requested_precision(query)
    try:
        payload = prediction_payload(model, row, echo)
    except RowError as error:
        raise field_error(error) from error
    predicted_rows(model.backend).inc()
    return orjson.dumps(rounded_payload(payload, precision))


class PredictFastPath:
    """Answers `POST /predict` with `answer_predict` after the JSON shape gate (`limits.check_json_shape`, as
    `BodyShapeMiddleware` applies it to every other POST); passes everything else on. Counts and times its
    requests as `InstrumentedRoute` does for the other routes."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state
        self.latency = LATENCY.labels(PREDICT_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        try:
            try:
                body = await _read_body(receive)
                # This layer sits outside BodyShapeMiddleware (one read of the body), so it applies the gate.
                settings = self.state.settings
                check_json_shape(body, settings.serving_max_object_keys, settings.serving_max_json_depth)
                content = answer_predict(
                    self.state,
                    body,
                    _content_type(scope),
                    scope.get("query_string", b"").decode("latin-1"),
                )
            except ServiceError as error:
                response = error_response(error, PREDICT_PATH)
            except StarletteHTTPException as error:  # the body limit stopped a streamed body
                message = body_too_large_message(self.state.settings.serving_max_body_bytes)
                kind = HTTP_ERROR_KINDS.get(error.status_code, "http_error")
                response = error_response(ServiceError(error.status_code, kind, message), PREDICT_PATH)
            else:
                # The two ASGI messages Response would send, without building one (a few us a request).
                status = 200
                headers = [*JSON_HEADERS, (b"content-length", str(len(content)).encode("latin-1"))]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": content})
                return
            status = response.status_code
            await response(scope, receive, send)
        finally:
            self.latency.observe(time.perf_counter() - started)
            request_counter(PREDICT_PATH, "POST", str(status)).inc()


def _content_type(scope: Scope) -> str | None:
    """The first Content-Type header, read from the raw (lower-cased, per ASGI) header list as starlette's
    Headers.get reads it, without building a Headers object."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)
