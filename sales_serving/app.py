"""The FastAPI service: /health, /model, /predict, /predict/batch, /metrics over the bundle CURRENT names.

Run with `sales-serve` or `uvicorn sales_serving.app:app`; configure with SALES_* variables (settings.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sales_serving.features import RowError
from sales_serving.loading import LoadedModel
from sales_serving.metrics import MetricsMiddleware, ServiceMetrics
from sales_serving.registry import ModelHolder
from sales_serving.schema import (
    BatchPredictionResponse,
    BatchRequest,
    ErrorResponse,
    FieldError,
    HealthResponse,
    PredictionResponse,
    SalesFeatures,
)
from sales_serving.scoring import predict_many, predict_one
from sales_serving.settings import ServingSettings

log = logging.getLogger(__name__)

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


class BodyLimitMiddleware:
    """Answers 413 before reading a body whose Content-Length is over the limit, and stops a chunked one there."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            body = ErrorResponse(
                error="payload_too_large", message=body_too_large_message(self.max_body_bytes)
            )
            await JSONResponse(body.model_dump(), status_code=413)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # FastAPI re-raises HTTPException from body reading, so the 413 handler answers it.
                raise StarletteHTTPException(413)
            return message

        await self.app(scope, receive_within_limit, send)


def _field_path(location: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in location)


def _describe(error: dict[str, Any]) -> FieldError:
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
    elif error["type"] != "quarter_mismatch":
        message = f"{message}; got {error.get('input')!r}"[:300]
    return FieldError(
        field=_field_path(location), location=list(location), message=message, type=error["type"]
    )


def field_error(error: RowError, prefix: str | None = None) -> ServiceError:
    location: list[str | int] = [prefix, error.row, error.field] if prefix else [error.field]
    detail = FieldError(
        field=_field_path(location), location=location, message=error.message, type="value_error"
    )
    return ServiceError(422, "validation_error", f"{detail.field}: {error.message}", [detail])


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or ServingSettings()
    holder = ModelHolder(
        settings.model_dir, settings.serving_backend, settings.serving_reload_interval_ms / 1000
    )
    metrics = ServiceMetrics()

    async def watch_current() -> None:
        while True:
            await asyncio.sleep(holder.check_interval_seconds)
            try:
                await asyncio.to_thread(holder.refresh, True)
            except Exception:  # the watcher must outlive any surprise; the old model keeps serving
                log.exception("checking %s for a new bundle failed", settings.model_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(holder.refresh, True)
        status = holder.status()
        log.info(
            "model status %s: %s", status.status, status.model.version if status.model else status.reason
        )
        watcher = asyncio.create_task(watch_current())
        yield
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    app = FastAPI(
        title="Sales regressor",
        summary="Predicts order-line SALES (USD) with the newest model bundle the Dagster assets produced.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.metrics = metrics
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.serving_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def served_model() -> LoadedModel:
        model = holder.model
        if model is None:
            raise ServiceError(503, "no_model", holder.status().reason or "no model loaded")
        return model

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse(error.body.model_dump(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = list(error.errors())
        malformed = next((item for item in problems if item["type"] == "json_invalid"), None)
        if malformed is not None:
            position = malformed["loc"][-1]
            reason = malformed.get("ctx", {}).get("error", "JSON decode error")
            body = ErrorResponse(
                error="malformed_json",
                message=f"request body is not valid JSON: {reason} at character {position}",
            )
            return JSONResponse(body.model_dump(), status_code=400)
        details = [_describe(item) for item in problems]
        summary = "; ".join(f"{detail.field}: {detail.message}" for detail in details[:5])
        body = ErrorResponse(error="validation_error", message=f"invalid request: {summary}", errors=details)
        return JSONResponse(body.model_dump(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail)
        if error.status_code == 413:
            message = body_too_large_message(settings.serving_max_body_bytes)
        body = ErrorResponse(error=HTTP_ERROR_KINDS.get(error.status_code, "http_error"), message=message)
        return JSONResponse(body.model_dump(), status_code=error.status_code, headers=error.headers)

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> HealthResponse:
        """Whether a model is served (`ok`), a newer bundle was refused (`degraded`), or none exists (`no_model`)."""
        status = holder.status()
        model = status.model
        metadata = model.metadata if model else None
        return HealthResponse(
            status=status.status,
            reason=status.reason,
            model_name=metadata.model_name if metadata else None,
            model_version=metadata.version if metadata else None,
            mlflow_run_id=metadata.lineage.mlflow_run_id if metadata else None,
            dagster_run_id=metadata.lineage.dagster_run_id if metadata else None,
            backend=model.backend if model else None,
            leaky=metadata.leaky if metadata else None,
            features=metadata.feature_names if metadata else [],
            loaded_at=model.loaded_at if model else None,
            model_dir=str(settings.model_dir),
        )

    @app.get("/model", response_model=dict[str, Any], responses={503: ERROR_RESPONSES[503]}, tags=["service"])
    async def model_card() -> dict[str, Any]:
        """The served bundle's metadata.json (features, metrics, lineage) plus where and how it is served."""
        model = served_model()
        return model.metadata.model_dump(mode="json") | {
            "backend": model.backend,
            "directory": str(model.directory),
            "loaded_at": model.loaded_at.isoformat(),
        }

    @app.post("/predict", response_model=PredictionResponse, responses=ERROR_RESPONSES, tags=["predict"])
    async def predict(row: SalesFeatures) -> PredictionResponse:
        """Predicts SALES for one order line (the seed's SalesFeatures payload works unchanged)."""
        # One reference for the whole request: a reload mid-request cannot mix two models.
        model = served_model()
        try:
            response = predict_one(model, row)
        except RowError as error:
            raise field_error(error) from error
        metrics.observe_predictions(model.backend, 1)
        return response

    @app.post(
        "/predict/batch", response_model=BatchPredictionResponse, responses=ERROR_RESPONSES, tags=["predict"]
    )
    async def predict_batch(request: BatchRequest) -> BatchPredictionResponse:
        """Predicts SALES for up to SALES_SERVING_BATCH_LIMIT rows, one prediction per row in order."""
        rows = request.rows
        limit = settings.serving_batch_limit
        if len(rows) > limit:
            detail = FieldError(
                field="rows",
                location=["rows"],
                message=f"at most {limit} rows per call (SALES_SERVING_BATCH_LIMIT), got {len(rows)}",
                type="too_long",
            )
            raise ServiceError(413, "batch_too_large", detail.message, [detail])
        model = served_model()
        # Off the event loop: a big batch must not stall /health and single predictions.
        try:
            response = await run_in_threadpool(predict_many, model, rows)
        except RowError as error:
            raise field_error(error, "rows") from error
        metrics.observe_predictions(model.backend, len(rows))
        return response

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    async def prometheus_metrics() -> PlainTextResponse:
        """Prometheus text format: requests, latency histogram, predictions, served model version."""
        model = holder.model
        info = (
            {"model_name": model.metadata.model_name, "version": model.version, "backend": model.backend}
            if model
            else None
        )
        text = metrics.render(info, holder.reloads, holder.refusals)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


app = create_app()


def main(argv: Sequence[str] | None = None) -> None:
    """`sales-serve`: run the service under uvicorn (one process; scale with more processes behind a proxy)."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="sales-serve", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument("--no-access-log", action="store_true", help="skip per-request log lines (faster)")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
    )
