"""GET /metrics: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from sales_serving.dependencies import Holder

router = APIRouter(tags=["service"])


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(holder: Holder, request: Request) -> PlainTextResponse:
    """Prometheus text format: requests, latency histogram, predictions, served model version."""
    model = holder.model
    info = (
        {"model_name": model.metadata.model_name, "version": model.version, "backend": model.backend}
        if model
        else None
    )
    text = request.app.state.metrics.render(info, holder.reloads, holder.refusals)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
