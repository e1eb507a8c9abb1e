"""The FastAPI service over the bundle CURRENT names: builds the app from the routers and runs it (`sales-serve`).

Run with `sales-serve [--workers N]` or `uvicorn sales_serving.app:app`; configure with SALES_* variables
(settings.py). /docs and /redoc work offline: their assets come from the fastapi-offline package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from sales_serving import metrics as service_metrics
from sales_serving.errors import install_error_handlers
from sales_serving.fast_predict import PredictFastPath
from sales_serving.middleware import BodyLimitMiddleware, BodyShapeMiddleware
from sales_serving.routers import health, metrics, predict, protocols
from sales_serving.served_model import ModelHolder
from sales_serving.settings import ServingSettings

log = logging.getLogger(__name__)
DOCS_ASSETS_URL = "/docs-assets"


async def watch_current(holder: ModelHolder) -> None:
    """Looks at CURRENT every interval (and refreshes this worker's process gauges); the old model keeps
    serving whatever goes wrong here."""
    while True:
        await asyncio.sleep(holder.check_interval_seconds)
        try:
            await asyncio.to_thread(holder.refresh, True)
            service_metrics.record_worker_process()
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
    service_metrics.worker_exited()


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or ServingSettings()
    app = FastAPIOffline(
        title="Sales regressor",
        summary="Predicts order-line SALES (USD) with 80% and 95% intervals, using the model bundle CURRENT "
        "names; speaks its own /predict, MLflow's /invocations and the Open Inference Protocol v2.",
        version="2.0.0",
        lifespan=lifespan,
        static_url=DOCS_ASSETS_URL,
        # Metrics are Prometheus's (sales_serving.metrics); skip OpenTelemetry's per-request provider checks.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.holder = ModelHolder(
        settings.model_dir, settings.serving_backend, settings.serving_reload_interval_ms / 1000
    )
    # The last added layer is the outermost: body limit, then /predict's fast path (it checks the JSON shape
    # itself, so a /predict body is read once), then the shape gate for every other POST, then FastAPI.
    app.add_middleware(
        BodyShapeMiddleware,
        max_keys=settings.serving_max_object_keys,
        max_depth=settings.serving_max_json_depth,
        max_body_bytes=settings.serving_max_body_bytes,
    )
    app.add_middleware(PredictFastPath, state=app.state)
    # Our own limit, not FastAPI's max_body_size: that one answers a declared oversize body in plain text.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.serving_max_body_bytes)
    install_error_handlers(app, settings.serving_max_body_bytes)
    for router in (predict.router, health.router, protocols.router, metrics.router):
        app.include_router(router)
    return app


app = create_app()


def _metrics_directory() -> tuple[Path, bool]:
    """The multiprocess metrics folder (PROMETHEUS_MULTIPROC_DIR, else a new temporary one) emptied of an
    earlier run's files, and whether this call created it."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given is None:
        return Path(tempfile.mkdtemp(prefix="sales-serve-metrics-")), True
    directory = Path(given)
    directory.mkdir(parents=True, exist_ok=True)
    # prometheus_client's multiprocess mode needs the folder wiped between runs, or old counts carry over.
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory, False


def main(argv: Sequence[str] | None = None) -> None:
    """`sales-serve`: run the service under uvicorn, in one process or `--workers N` processes whose
    /metrics all count every worker's requests."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="sales-serve", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument("--no-access-log", action="store_true", help="skip per-request log lines (faster)")
    parser.add_argument(
        "--worker-healthcheck-timeout",
        type=float,
        default=30.0,
        help="seconds a worker may take to answer uvicorn's health ping before it is restarted (default 30; "
        "uvicorn's own 5 s restarts workers that are still importing on a busy machine)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": not args.no_access_log,
    }
    if args.workers == 1:
        uvicorn.run(create_app(), **options)
        return
    directory, created = _metrics_directory()
    # Workers are new processes that import the app, so they see this before prometheus_client loads.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    try:
        uvicorn.run(
            "sales_serving.app:app",
            workers=args.workers,
            timeout_worker_healthcheck=args.worker_healthcheck_timeout,
            **options,
        )
    finally:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
