"""Request and response shapes of the standard protocols, and their conversion to and from order-line rows.

- MLflow scoring server (`POST /invocations`): a body with exactly one of `dataframe_split`,
  `dataframe_records`, `inputs` or `instances` (MLflow 2+ "Deploy MLflow Model as a Local Inference Server");
  the answer is `{"predictions": [...]}`, errors `{"error_code": "BAD_REQUEST", "message": ...}`.
- Open Inference Protocol v2 (KServe, Triton, Seldon; kserve/open-inference-protocol `inference_rest.md`):
  named input tensors `{name, shape, datatype, data}`, one per request field; errors `{"error": ...}`.

Rows made here are validated by SalesFeatures exactly as /predict validates them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sales_serving.schema import EXAMPLE_ROW, SalesFeatures

MODEL_ENDPOINT_NAME = "sales_regressor"
MLFLOW_INPUT_KEYS = ("dataframe_split", "dataframe_records", "inputs", "instances")
NUMERIC_DATATYPES = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64"}
)
TEXT_DATATYPE = "BYTES"


# Named request examples for /docs (and the schemas' `examples`): the export's first two order lines.
SECOND_LINE = EXAMPLE_ROW | {
    "QUANTITYORDERED": 34,
    "PRICEEACH": 81.35,
    "ORDERLINENUMBER": 5,
    "QTR_ID": 2,
    "MONTH_ID": 5,
    "COUNTRY": "France",
}
INVOCATIONS_EXAMPLES: dict[str, dict[str, Any]] = {
    "dataframe_split": {
        "summary": "Two order lines as pandas' split orientation",
        "value": {
            "dataframe_split": {
                "columns": list(EXAMPLE_ROW),
                "data": [list(EXAMPLE_ROW.values()), list(SECOND_LINE.values())],
            }
        },
    },
    "dataframe_records": {
        "summary": "Two order lines as records",
        "value": {"dataframe_records": [EXAMPLE_ROW, SECOND_LINE]},
    },
    "inputs": {
        "summary": "One order line as named columns",
        "value": {"inputs": {name: [value] for name, value in EXAMPLE_ROW.items()}},
    },
}
INFER_EXAMPLES: dict[str, dict[str, Any]] = {
    "one_order_line": {
        "summary": "Order 10107, line 2: 30 motorcycles at 95.70, one tensor per field",
        "value": {
            "id": "order-10107-2",
            "inputs": [
                {
                    "name": name,
                    "shape": [1],
                    "datatype": "BYTES" if isinstance(value, str) else "FP64",
                    "data": [value],
                }
                for name, value in EXAMPLE_ROW.items()
            ],
        },
    }
}


class ProtocolInputError(ValueError):
    """A request the protocol cannot turn into rows; the message names the key, tensor or row."""


# ------------------------------------------------------------------------------------ MLflow /invocations


class DataframeSplit(BaseModel):
    columns: list[str] = Field(min_length=1)
    data: list[list[Any]] = Field(min_length=1)
    index: list[Any] | None = None


# `inputs`/`instances`: columns (name -> values) or records, at least one row either way (the schema says
# so, and an empty one is answered 400 like any body that breaks it).
TensorInput = (
    Annotated[dict[str, Annotated[list[Any], Field(min_length=1)]], Field(min_length=1)]
    | Annotated[list[dict[str, Any]], Field(min_length=1)]
)


class InvocationsRequest(BaseModel):
    """Exactly one of the MLflow scoring server's input keys; `params` is accepted and ignored."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": [key]} for key in MLFLOW_INPUT_KEYS],
            "examples": [example["value"] for example in INVOCATIONS_EXAMPLES.values()],
        },
    )

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    inputs: TensorInput | None = None
    instances: TensorInput | None = None
    params: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one_input(self) -> InvocationsRequest:
        given = [key for key in MLFLOW_INPUT_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                f"the body must hold exactly one of {list(MLFLOW_INPUT_KEYS)}, got {given or 'none'}"
            )
        return self

    def rows(self) -> list[dict[str, Any]]:
        """The request as order-line mappings (not yet validated); ProtocolInputError when malformed."""
        if self.dataframe_split is not None:
            split = self.dataframe_split
            width = len(split.columns)
            for number, values in enumerate(split.data):
                if len(values) != width:
                    raise ProtocolInputError(
                        f"dataframe_split.data[{number}] has {len(values)} values for {width} columns"
                    )
            return [dict(zip(split.columns, values, strict=True)) for values in split.data]
        if self.dataframe_records is not None:
            return self.dataframe_records
        key = "inputs" if self.inputs is not None else "instances"
        tensor = self.inputs if self.inputs is not None else self.instances
        if isinstance(tensor, list):
            if not tensor:
                raise ProtocolInputError(f"{key} is empty")
            return tensor
        assert tensor is not None
        return _columns_to_rows(key, tensor)


def _columns_to_rows(key: str, columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    lengths = {name: len(values) for name, values in columns.items()}
    if not lengths or set(lengths.values()) == {0}:
        raise ProtocolInputError(f"{key} holds no values")
    if len(set(lengths.values())) != 1:
        raise ProtocolInputError(f"{key}: every column needs the same number of values, got {lengths}")
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


class InvocationsResponse(BaseModel):
    predictions: list[float] = Field(description="Predicted SALES (USD) per row, in request order.")
    intervals: dict[str, dict[str, list[float]]] | None = Field(
        description="Per level ('0.8', '0.95'): `lower` and `upper` SALES per row; null without calibration."
    )
    warnings: list[str]


class MlflowError(BaseModel):
    error_code: Literal["BAD_REQUEST", "RESOURCE_DOES_NOT_EXIST", "TEMPORARILY_UNAVAILABLE"]
    message: str


# ------------------------------------------------------------------------------- Open Inference Protocol


class RequestInput(BaseModel):
    # The schema names the accepted values; a value outside them is answered 400 naming the tensor.
    name: str = Field(min_length=1, json_schema_extra={"enum": list(SalesFeatures.model_fields)})
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: str = Field(json_schema_extra={"enum": sorted(NUMERIC_DATATYPES | {TEXT_DATATYPE})})
    data: list[Any]
    parameters: dict[str, Any] | None = None


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [example["value"] for example in INFER_EXAMPLES.values()]}
    )

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferenceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class OipError(BaseModel):
    error: str


def _is_text_field(name: str) -> bool:
    annotation = SalesFeatures.model_fields[name].annotation
    return annotation is str or annotation == (str | None)


def input_tensors() -> list[TensorMetadata]:
    """One tensor per SalesFeatures field: FP64 for numbers (any numeric datatype is taken), BYTES for text."""
    return [
        TensorMetadata(name=name, datatype=TEXT_DATATYPE if _is_text_field(name) else "FP64", shape=[-1])
        for name in SalesFeatures.model_fields
    ]


def tensors_to_rows(inputs: Sequence[RequestInput]) -> list[dict[str, Any]]:
    """Named [N] or [N, 1] tensors -> N row mappings; ProtocolInputError naming the tensor when its name,
    datatype, shape or data do not fit."""
    known = SalesFeatures.model_fields
    columns: dict[str, list[Any]] = {}
    for tensor in inputs:
        where = f"input {tensor.name!r}"
        if tensor.name not in known:
            raise ProtocolInputError(
                f"{where} is not an input of {MODEL_ENDPOINT_NAME}; inputs: {list(known)}"
            )
        if tensor.name in columns:
            raise ProtocolInputError(f"{where} is given twice")
        text = _is_text_field(tensor.name)
        expected = {TEXT_DATATYPE} if text else NUMERIC_DATATYPES
        if tensor.datatype not in expected:
            raise ProtocolInputError(
                f"{where}: datatype {tensor.datatype!r} does not fit; expected {' or '.join(sorted(expected))}"
            )
        if any(size < 0 for size in tensor.shape) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise ProtocolInputError(f"{where}: shape {tensor.shape} must be [N] or [N, 1]")
        values = _flatten(tensor.data, where)
        if len(values) != math.prod(tensor.shape):
            raise ProtocolInputError(
                f"{where}: shape {tensor.shape} needs {math.prod(tensor.shape)} values, got {len(values)}"
            )
        columns[tensor.name] = values
    sizes = {name: len(values) for name, values in columns.items()}
    if len(set(sizes.values())) != 1 or 0 in sizes.values():
        raise ProtocolInputError(f"every input needs the same number of rows (at least one), got {sizes}")
    return _columns_to_rows("inputs", columns)


def _flatten(data: list[Any], where: str) -> list[Any]:
    """Row-major flattening of nested lists (the protocol allows both flat and nested data)."""
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            if any(isinstance(inner, list) for inner in item):
                raise ProtocolInputError(f"{where}: data nested deeper than the shape allows")
            flat.extend(item)
        else:
            raise ProtocolInputError(f"{where}: data mixes lists and values")
    return flat
