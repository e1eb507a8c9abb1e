"""The standard protocols beside /predict: MLflow's scoring server (`POST /invocations`) and the Open
Inference Protocol v2 (`/v2/...`, as KServe, Triton and Seldon speak it). Shapes live in sales_serving.protocols;
errors come in each protocol's own shape (sales_serving.errors.error_response), 4xx for every bad request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from sales_serving.dependencies import Holder, ServedModel, Settings
from sales_serving.errors import ServiceError, field_error
from sales_serving.features import RowError
from sales_serving.instrumentation import InstrumentedRoute
from sales_serving.limits import validate_rows
from sales_serving.loading import LoadedModel
from sales_serving.metrics import predicted_rows
from sales_serving.protocols import (
    INFER_EXAMPLES,
    INVOCATIONS_EXAMPLES,
    MODEL_ENDPOINT_NAME,
    InferenceRequest,
    InferenceResponse,
    InvocationsRequest,
    InvocationsResponse,
    MlflowError,
    ModelMetadataResponse,
    OipError,
    ProtocolInputError,
    ResponseOutput,
    TensorMetadata,
    input_tensors,
    tensors_to_rows,
)
from sales_serving.scoring import Scored, row_mapping, score

router = APIRouter(route_class=InstrumentedRoute)

MLFLOW_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": MlflowError,
        "description": "The body is not one of the scoring server's input shapes, or a row is invalid.",
    },
    413: {"model": MlflowError, "description": "Body or rows over the configured limit."},
    503: {"model": MlflowError, "description": "No model loaded yet."},
}
OIP_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OipError, "description": "A tensor or row that does not fit the model's inputs."},
    404: {"model": OipError, "description": "No model of that name or version is served."},
    413: {"model": OipError, "description": "Body or rows over the configured limit."},
    503: {"model": OipError, "description": "No model loaded yet."},
}


async def _score_raw_rows(
    model: LoadedModel, raw: list[Any], settings: Settings, prefix: tuple[str, ...]
) -> Scored:
    rows = validate_rows(raw, settings, prefix)
    try:
        scored = await run_in_threadpool(score, model, [row_mapping(row) for row in rows])
    except RowError as error:
        raise field_error(error, ".".join(prefix)) from error
    predicted_rows(model.backend).inc(len(rows))
    return scored


def _bad_request(error: ProtocolInputError) -> ServiceError:
    return ServiceError(400, "bad_request", str(error))


# ------------------------------------------------------------------------------------ MLflow /invocations


@router.post("/invocations", response_model=InvocationsResponse, responses=MLFLOW_ERRORS, tags=["mlflow"])
async def invocations(
    body: Annotated[InvocationsRequest, Body(openapi_examples=INVOCATIONS_EXAMPLES)],
    model: ServedModel,
    settings: Settings,
) -> InvocationsResponse:
    """MLflow scoring server protocol: `dataframe_split`, `dataframe_records`, `inputs` (or `instances`)
    with the SalesFeatures columns; answers `{"predictions": [...]}` plus 80%/95% `intervals`."""
    try:
        raw = body.rows()
    except ProtocolInputError as error:
        raise _bad_request(error) from error
    scored = await _score_raw_rows(model, raw, settings, ("rows",))
    intervals = None
    if scored.intervals is not None:
        intervals = {
            f"{level:g}": {"lower": lower.tolist(), "upper": upper.tolist()}
            for level, (lower, upper) in scored.intervals.items()
        }
    warnings = scored.model_warnings + [f"row {row}: {message}" for row, message in scored.row_warnings]
    return InvocationsResponse(
        predictions=scored.predictions.tolist(), intervals=intervals, warnings=warnings
    )


# ------------------------------------------------------------------------------- Open Inference Protocol


def _output_names(model: LoadedModel) -> list[str]:
    target = model.metadata.target
    names = [target]
    if model.metadata.intervals is not None:
        for level in sorted(model.metadata.intervals.levels):
            names += [f"{target}_lower_{level * 100:g}", f"{target}_upper_{level * 100:g}"]
    return names


def _check_name(name: str) -> None:
    if name != MODEL_ENDPOINT_NAME:
        raise ServiceError(
            404, "not_found", f"no model named {name!r}; this server serves {MODEL_ENDPOINT_NAME!r}"
        )


def _served(holder: Holder, name: str, version: str | None = None) -> LoadedModel:
    _check_name(name)
    model = holder.model
    if model is None:
        raise ServiceError(503, "no_model", holder.status().reason or "no model loaded")
    if version is not None and version != model.version:
        raise ServiceError(
            404, "not_found", f"version {version!r} is not served; the served version is {model.version!r}"
        )
    return model


@router.get("/v2/health/live", tags=["open inference protocol"])
async def server_live() -> dict[str, bool]:
    """Liveness: the process answers."""
    return {"live": True}


@router.get(
    "/v2/health/ready",
    tags=["open inference protocol"],
    responses={
        503: {"description": "Not ready: no model loaded yet (`ready: false`), as KServe's server answers."}
    },
)
async def server_ready(holder: Holder) -> JSONResponse:
    """Readiness: a model is loaded (200), or not yet (503 with `ready: false`: the server is up but cannot
    serve yet, which is not the client's error; readiness probes read any non-2xx as not ready)."""
    ready = holder.model is not None
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get(
    "/v2/models/{model_name}/ready",
    tags=["open inference protocol"],
    responses={503: {"description": "The model is not loaded yet (`ready: false`)."}, 404: OIP_ERRORS[404]},
)
async def model_ready(model_name: str, holder: Holder) -> JSONResponse:
    """Model readiness, as `/v2/health/ready` but for the named model."""
    _check_name(model_name)
    ready = holder.model is not None
    return JSONResponse({"name": model_name, "ready": ready}, status_code=200 if ready else 503)


@router.get(
    "/v2/models/{model_name}",
    response_model=ModelMetadataResponse,
    responses=OIP_ERRORS,
    tags=["open inference protocol"],
)
async def model_metadata(model_name: str, holder: Holder) -> ModelMetadataResponse:
    """The served model's name, version, and input and output tensors."""
    model = _served(holder, model_name)
    return ModelMetadataResponse(
        name=MODEL_ENDPOINT_NAME,
        versions=[model.version],
        platform="onnxruntime_onnx" if model.backend == "onnx" else "sklearn",
        inputs=input_tensors(),
        outputs=[TensorMetadata(name=name, datatype="FP64", shape=[-1]) for name in _output_names(model)],
    )


async def _infer(model: LoadedModel, request: InferenceRequest, settings: Settings) -> InferenceResponse:
    try:
        raw = tensors_to_rows(request.inputs)
    except ProtocolInputError as error:
        raise _bad_request(error) from error
    available = _output_names(model)
    wanted = [output.name for output in request.outputs] if request.outputs else available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ServiceError(
            400, "bad_request", f"outputs {unknown} are not outputs of this model; outputs: {available}"
        )
    scored = await _score_raw_rows(model, raw, settings, ("inputs",))
    data = {model.metadata.target: scored.predictions}
    for level, (lower, upper) in (scored.intervals or {}).items():
        data[f"{model.metadata.target}_lower_{level * 100:g}"] = lower
        data[f"{model.metadata.target}_upper_{level * 100:g}"] = upper
    count = len(raw)
    return InferenceResponse(
        model_name=MODEL_ENDPOINT_NAME,
        model_version=model.version,
        id=request.id,
        parameters={"warnings": scored.model_warnings} if scored.model_warnings else None,
        outputs=[
            ResponseOutput(name=name, shape=[count], datatype="FP64", data=data[name].tolist())
            for name in wanted
        ],
    )


@router.post(
    "/v2/models/{model_name}/infer",
    response_model=InferenceResponse,
    responses=OIP_ERRORS,
    tags=["open inference protocol"],
)
async def infer(
    model_name: str,
    request: Annotated[InferenceRequest, Body(openapi_examples=INFER_EXAMPLES)],
    holder: Holder,
    settings: Settings,
) -> InferenceResponse:
    """Inference with named input tensors, one per SalesFeatures field (shape [N] or [N, 1]); outputs SALES and
    its interval bounds (`SALES_lower_80`, `SALES_upper_80`, `SALES_lower_95`, `SALES_upper_95`)."""
    return await _infer(_served(holder, model_name), request, settings)


@router.post(
    "/v2/models/{model_name}/versions/{model_version}/infer",
    response_model=InferenceResponse,
    responses=OIP_ERRORS,
    tags=["open inference protocol"],
)
async def infer_version(
    model_name: str,
    model_version: str,
    request: Annotated[InferenceRequest, Body(openapi_examples=INFER_EXAMPLES)],
    holder: Holder,
    settings: Settings,
) -> InferenceResponse:
    """As `/v2/models/{model_name}/infer`, for the served version only (404 for any other)."""
    return await _infer(_served(holder, model_name, model_version), request, settings)
