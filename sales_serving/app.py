"""The FastAPI service over the bundle CURRENT names: builds the app from the routers and runs it (`sales-serve`).

Run with `sales-serve` or `uvicorn sales_serving.app:app`; configure with SALES_* variables (settings.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sales_serving.errors import install_error_handlers
from sales_serving.metrics import MetricsMiddleware, ServiceMetrics
from sales_serving.middleware import BodyLimitMiddleware
from sales_serving.routers import health, metrics, predict
from sales_serving.served_model import ModelHolder
from sales_serving.settings import ServingSettings

log = logging.getLogger(__name__)


async def watch_current(holder: ModelHolder) -> None:
    """Looks at CURRENT every interval; the old model keeps serving whatever goes wrong here."""
    while True:
        await asyncio.sleep(holder.check_interval_seconds)
        try:
            await asyncio.to_thread(holder.refresh, True)
        except Exception:  # the watcher must outlive any surprise
            log.exception("checking %s for a new bundle failed", holder.models_dir)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    holder: ModelHolder = app.state.holder
    await asyncio.to_thread(holder.refresh, True)
    status = holder.status()
    log.info("model status %s: %s", status.status, status.model.version if status.model else status.reason)
    watcher = asyncio.create_task(watch_current(holder))
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or ServingSettings()
    app = FastAPI(
        title="Sales regressor",
        summary="Predicts order-line SALES (USD) with the model bundle CURRENT names.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = ModelHolder(
        settings.model_dir, settings.serving_backend, settings.serving_reload_interval_ms / 1000
    )
    app.state.metrics = ServiceMetrics()
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.serving_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app, settings.serving_max_body_bytes)
    for router in (health.router, predict.router, metrics.router):
        app.include_router(router)
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
