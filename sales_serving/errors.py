"""Errors the service answers: ServiceError and the handlers that turn every failure into ErrorResponse JSON.

Every 4xx body names the field (or the setting) that settles it; nothing expected ever becomes a 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sales_serving.features import RowError
from sales_serving.metrics import observe_unrouted
from sales_serving.schema import ErrorResponse, FieldError

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed JSON."},
    413: {"model": ErrorResponse, "description": "Body or batch over the configured limit."},
    422: {"model": ErrorResponse, "description": "A field is missing, of the wrong type or out of range."},
    503: {"model": ErrorResponse, "description": "No model loaded yet; the message says how to train one."},
}
HTTP_ERROR_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ServiceError(Exception):
    """An expected failure answered as ErrorResponse JSON with the given status."""

    def __init__(self, status: int, error: str, message: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(error=error, message=message, errors=list(errors))


def body_too_large_message(max_body_bytes: int) -> str:
    return f"request body is larger than {max_body_bytes} bytes (SALES_SERVING_MAX_BODY_BYTES); send fewer rows per call"


def field_path(location: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in location)


def describe_validation_error(error: dict[str, Any]) -> FieldError:
    """One pydantic error as a FieldError: the field path without `body`, a message a client can act on."""
    location: list[str | int] = [part for part in error["loc"] if part != "body"]
    # A cross-field check (QTR_ID vs MONTH_ID) fails at the row level; its ctx names the field to blame.
    if "field" in error.get("ctx", {}):
        location.append(error["ctx"]["field"])
    location = location or ["body"]
    message = error["msg"]
    if isinstance(error.get("input"), bytes):
        message = "expected a JSON object sent with Content-Type: application/json"
    elif error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] not in ("quarter_mismatch", "number_type"):
        message = f"{message}; got {error.get('input')!r}"[:300]
    return FieldError(
        field=field_path(location), location=list(location), message=message, type=error["type"]
    )


def validation_failure(problems: Sequence[dict[str, Any]], prefix: Sequence[str | int] = ()) -> ServiceError:
    """A 422 ServiceError from pydantic errors (those of `ValidationError.errors()`), located under `prefix`."""
    details = [describe_validation_error(item | {"loc": (*prefix, *item["loc"])}) for item in problems]
    summary = "; ".join(f"{detail.field}: {detail.message}" for detail in details[:5])
    return ServiceError(422, "validation_error", f"invalid request: {summary}", details)


def field_error(error: RowError, prefix: str | None = None) -> ServiceError:
    location: list[str | int] = [prefix, error.row, error.field] if prefix else [error.field]
    detail = FieldError(
        field=field_path(location), location=location, message=error.message, type="value_error"
    )
    return ServiceError(422, "validation_error", f"{detail.field}: {error.message}", [detail])


MLFLOW_ERROR_CODES = {404: "RESOURCE_DOES_NOT_EXIST", 503: "TEMPORARILY_UNAVAILABLE"}


def _speaks_protocol(path: str) -> bool:
    return path == "/invocations" or path.startswith("/v2")


def _answered_status(status: int, path: str) -> int:
    # MLflow's scoring server and the Open Inference Protocol answer bad input with 400, not 422.
    return 400 if status == 422 and _speaks_protocol(path) else status


def status_for(error: Exception, path: str) -> int:
    """The status the handlers below answer `error` with on `path` (500 for an unexpected exception)."""
    if isinstance(error, ServiceError):
        return _answered_status(error.status, path)
    if isinstance(error, RequestValidationError):
        malformed = any(item["type"] == "json_invalid" for item in error.errors())
        return 400 if malformed else _answered_status(422, path)
    if isinstance(error, StarletteHTTPException):
        return error.status_code
    return 500


def error_response(
    error: ServiceError, path: str = "", headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The error in the shape the route's protocol speaks: MLflow's scoring server for /invocations
    (`error_code`, `message`, 400 for bad input), the Open Inference Protocol for /v2 (`error`, 400 for bad
    input), ErrorResponse everywhere else."""
    if _speaks_protocol(path):
        status = _answered_status(error.status, path)
        if path == "/invocations":
            body: dict[str, Any] = {
                "error_code": MLFLOW_ERROR_CODES.get(status, "BAD_REQUEST"),
                "message": error.body.message,
            }
        else:
            body = {"error": error.body.message}
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(error.body.model_dump(), status_code=error.status, headers=headers)


async def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return error_response(error, request.url.path)


async def _request_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = list(error.errors())
    malformed = next((item for item in problems if item["type"] == "json_invalid"), None)
    if malformed is not None:
        position = malformed["loc"][-1]
        reason = malformed.get("ctx", {}).get("error", "JSON decode error")
        message = f"request body is not valid JSON: {reason} at character {position}"
        return error_response(ServiceError(400, "malformed_json", message), request.url.path)
    return error_response(validation_failure(problems), request.url.path)


def install_error_handlers(app: FastAPI, max_body_bytes: int) -> None:
    """ServiceError, request validation (400 malformed JSON / 422) and Starlette's HTTP errors, each in the
    shape of the route's protocol (see `error_response`)."""

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        message = str(error.detail)
        if error.status_code == 413:
            message = body_too_large_message(max_body_bytes)
        kind = HTTP_ERROR_KINDS.get(error.status_code, "http_error")
        if error.status_code in (404, 405):
            # No route took the request, so InstrumentedRoute did not count it.
            observe_unrouted(request.method, error.status_code)
        return error_response(ServiceError(error.status_code, kind, message), request.url.path, error.headers)

    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
