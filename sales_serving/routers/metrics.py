"""GET /metrics: Prometheus text exposition (all workers' values when the service runs with workers)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from sales_serving import metrics

router = APIRouter(tags=["service"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def prometheus_metrics() -> Response:
    """Requests by endpoint and status, latency histograms, predicted rows, the served model, reloads and
    refusals, and process figures (per worker with workers)."""
    # Reading every worker's files is disk work: off the event loop.
    body, content_type = await run_in_threadpool(metrics.render)
    return Response(body, media_type=content_type)
