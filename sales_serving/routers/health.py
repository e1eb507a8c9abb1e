"""GET /health (is a model served, which, under which policy) and GET /model (the served bundle's metadata)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sales_serving.dependencies import Holder, ServedModel, Settings
from sales_serving.errors import ERROR_RESPONSES
from sales_serving.instrumentation import InstrumentedRoute
from sales_serving.schema import HealthResponse

router = APIRouter(tags=["service"], route_class=InstrumentedRoute)


@router.get("/health", response_model=HealthResponse)
async def health(holder: Holder, settings: Settings) -> HealthResponse:
    """Whether a model is served (`ok`), a newer bundle was refused (`degraded`), or none exists (`no_model`)."""
    status = holder.status()
    model = status.model
    if model is None:
        return HealthResponse(
            status=status.status,
            reason=status.reason,
            serving_policy=None,
            promoted=None,
            model_name=None,
            model_version=None,
            mlflow_run_id=None,
            mlflow_training_run_id=None,
            mlflow_model_version=None,
            dagster_run_id=None,
            backend=None,
            leaky=None,
            intervals=None,
            features=[],
            loaded_at=None,
            model_dir=str(settings.model_dir),
        )
    metadata = model.metadata
    promotion = metadata.promotion
    return HealthResponse(
        status=status.status,
        reason=status.reason,
        serving_policy=promotion.policy if promotion else "unknown",
        promoted=promotion.promoted if promotion else None,
        model_name=metadata.model_name,
        model_version=metadata.version,
        mlflow_run_id=metadata.lineage.mlflow_model_run_id,
        mlflow_training_run_id=metadata.lineage.mlflow_run_id,
        mlflow_model_version=metadata.lineage.mlflow_model_version,
        dagster_run_id=metadata.lineage.dagster_run_id,
        backend=model.backend,
        leaky=metadata.leaky,
        intervals=sorted(metadata.intervals.levels) if metadata.intervals else None,
        features=metadata.feature_names,
        loaded_at=model.loaded_at,
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
