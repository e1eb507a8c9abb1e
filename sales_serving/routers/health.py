"""GET /health (is a model served, which, under which policy) and GET /model (the served bundle's metadata)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sales_serving.dependencies import Holder, ServedModel, Settings
from sales_serving.errors import ERROR_RESPONSES
from sales_serving.schema import HealthResponse

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthResponse)
async def health(holder: Holder, settings: Settings) -> HealthResponse:
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


@router.get("/model", response_model=dict[str, Any], responses={503: ERROR_RESPONSES[503]})
async def model_card(model: ServedModel) -> dict[str, Any]:
    """The served bundle's metadata.json (features, metrics, lineage) plus where and how it is served."""
    return model.metadata.model_dump(mode="json") | {
        "backend": model.backend,
        "directory": str(model.directory),
        "loaded_at": model.loaded_at.isoformat(),
    }
