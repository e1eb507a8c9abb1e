"""Reading one model bundle directory (metadata.json, model.onnx, pipeline.joblib) into a ready predictor.

A bundle that breaks the contract is refused with a BundleError that names the file and what is wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sales_serving.features import OPERAND_COUNTS, DerivedFeature, FeatureBuilder, FeatureColumns
from sales_serving.settings import Backend

CURRENT_FILE = "CURRENT"
METADATA_FILE = "metadata.json"
PIPELINE_FILE = "pipeline.joblib"
ONNX_NUMPY_TYPES = {"float32": np.float32, "float64": np.float64, "string": np.object_}
ONNX_TENSOR_TYPES = {"float32": "tensor(float)", "float64": "tensor(double)", "string": "tensor(string)"}


class BundleError(Exception):
    """A bundle that cannot be served."""


class FeatureSpec(BaseModel):
    name: str = Field(min_length=1)
    kind: Literal["numeric", "categorical"]
    dtype: str
    allowed_categories: list[str] | None = None


class DerivedFeatureSpec(BaseModel):
    name: str = Field(min_length=1)
    op: Literal["copy", "divide", "multiply", "season"]
    inputs: list[str]

    @model_validator(mode="after")
    def _operand_count(self) -> DerivedFeatureSpec:
        if len(self.inputs) != OPERAND_COUNTS[self.op]:
            raise ValueError(f"op {self.op!r} takes {OPERAND_COUNTS[self.op]} input(s), got {self.inputs}")
        return self


class OnnxInputSpec(BaseModel):
    name: str
    type: Literal["float32", "float64", "string"]


class OnnxSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    file: str = "model.onnx"
    inputs: list[OnnxInputSpec]
    output: str
    parity_passed: bool
    max_abs_diff: float | None = None
    tolerance: float
    rows_checked: int | None = None


class Lineage(BaseModel):
    model_config = ConfigDict(extra="allow")

    dagster_run_id: str | None
    mlflow_run_id: str | None
    mlflow_model_version: str | None = None
    data_sha256: str | None


class BundleMetadata(BaseModel):
    """metadata.json, schema_version 1 (see the bundle contract)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    schema_version: Literal[1]
    model_name: str
    version: str
    created_at: str
    target: str
    estimator: str
    leaky: bool
    request_fields: list[str] = Field(min_length=1)
    derived_features: list[DerivedFeatureSpec]
    features: list[FeatureSpec] = Field(min_length=1)
    onnx: OnnxSpec
    metrics: dict[str, Any]
    lineage: Lineage
    library_versions: dict[str, Any]

    @model_validator(mode="after")
    def _consistent(self) -> BundleMetadata:
        known = set(self.request_fields)
        for derived in self.derived_features:
            missing = [name for name in derived.inputs if name not in known]
            if missing:
                raise ValueError(
                    f"derived feature {derived.name!r} needs {missing}, which no request field or earlier derived feature provides"
                )
            known.add(derived.name)
        unknown = [spec.name for spec in self.features if spec.name not in known]
        if unknown:
            raise ValueError(f"features {unknown} are neither request fields nor derived features")
        names = [spec.name for spec in self.features]
        if [spec.name for spec in self.onnx.inputs] != names:
            raise ValueError(f"onnx.inputs must name the features in order {names}")
        for spec, onnx_input in zip(self.features, self.onnx.inputs, strict=True):
            if (spec.kind == "categorical") != (onnx_input.type == "string"):
                raise ValueError(
                    f"feature {spec.name!r} is {spec.kind} but its ONNX input is {onnx_input.type}"
                )
        return self

    @property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.features]


class Predictor(Protocol):
    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray: ...


class OnnxPredictor:
    """onnxruntime on one thread per call (the service scales by processes, not intra-op threads)."""

    def __init__(self, path: Path, spec: OnnxSpec) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for corrupt graphs
            raise BundleError(f"{path}: onnxruntime cannot load the model: {error}") from error
        graph_inputs = {node.name: node.type for node in self.session.get_inputs()}
        expected = {item.name: ONNX_TENSOR_TYPES[item.type] for item in spec.inputs}
        if graph_inputs != expected:
            raise BundleError(
                f"{path}: graph inputs {graph_inputs} differ from metadata onnx.inputs {expected}"
            )
        outputs = [node.name for node in self.session.get_outputs()]
        if spec.output not in outputs:
            raise BundleError(f"{path}: no output named {spec.output!r} (graph outputs: {outputs})")
        self.output_names = [spec.output]
        self.input_types = [(item.name, ONNX_NUMPY_TYPES[item.type]) for item in spec.inputs]

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        feed = {
            name: columns[name].astype(dtype, copy=False).reshape(-1, 1) for name, dtype in self.input_types
        }
        return self.session.run(self.output_names, feed)[0].reshape(-1).astype(np.float64)


class JoblibPredictor:
    """The fitted sklearn Pipeline; pandas is imported here only, off the ONNX hot path."""

    def __init__(self, path: Path, feature_names: list[str]) -> None:
        import joblib

        if not path.is_file():
            raise BundleError(f"{path}: missing (the bundle has no {PIPELINE_FILE})")
        try:
            self.pipeline = joblib.load(path)
        except Exception as error:  # unpickling can raise anything the pickled objects raise
            raise BundleError(f"{path}: cannot unpickle the pipeline: {error!r}") from error
        if not hasattr(self.pipeline, "predict"):
            raise BundleError(f"{path}: holds a {type(self.pipeline).__name__}, which has no predict()")
        fitted_names = getattr(self.pipeline, "feature_names_in_", None)
        if fitted_names is not None and set(fitted_names) != set(feature_names):
            raise BundleError(
                f"{path}: pipeline was fitted on {list(fitted_names)}, metadata says {feature_names}"
            )
        # Columns go in the order the pipeline was fitted with; ColumnTransformer selects by name anyway.
        self.feature_names = list(fitted_names) if fitted_names is not None else feature_names

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        import pandas as pd

        frame = pd.DataFrame({name: columns[name] for name in self.feature_names})
        return np.asarray(self.pipeline.predict(frame), dtype=np.float64).reshape(-1)


@dataclass
class LoadedModel:
    """One served bundle: its metadata, feature builder and predictor. Never mutated after loading."""

    directory: Path
    metadata: BundleMetadata
    backend: Literal["onnx", "joblib"]
    predictor: Predictor
    builder: FeatureBuilder
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def version(self) -> str:
        return self.metadata.version

    def predict(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, FeatureColumns]:
        features = self.builder.build(rows)
        return self.predictor.predict(features.columns), features


def read_current(models_dir: Path) -> str:
    """The version named by CURRENT; BundleError when there is none."""
    current = models_dir / CURRENT_FILE
    try:
        version = current.read_text(encoding="utf-8").strip()
    except FileNotFoundError as error:
        raise BundleError(f"{current}: missing, so there is no model to serve yet") from error
    if not version or "/" in version or "\\" in version or version.startswith("."):
        raise BundleError(f"{current}: expected one bundle directory name, got {version!r}")
    return version


def read_metadata(directory: Path) -> BundleMetadata:
    path = directory / METADATA_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BundleError(f"{path}: missing (is {directory.name} a complete bundle?)") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{path}: not valid JSON: {error}") from error
    try:
        metadata = BundleMetadata.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}"
            for item in error.errors()
        )
        raise BundleError(f"{path}: breaks the bundle contract: {problems}") from error
    if metadata.version != directory.name:
        raise BundleError(f"{path}: says version {metadata.version!r} but lives in {directory.name!r}")
    return metadata


def build_feature_builder(metadata: BundleMetadata) -> FeatureBuilder:
    derived = [DerivedFeature(spec.name, spec.op, tuple(spec.inputs)) for spec in metadata.derived_features]
    categorical = {
        spec.name: frozenset(spec.allowed_categories) if spec.allowed_categories is not None else None
        for spec in metadata.features
        if spec.kind == "categorical"
    }
    return FeatureBuilder(metadata.request_fields, derived, metadata.feature_names, categorical)


def choose_backend(metadata: BundleMetadata, directory: Path, backend: Backend) -> Literal["onnx", "joblib"]:
    if backend != "auto":
        return backend
    onnx_ready = metadata.onnx.parity_passed and (directory / metadata.onnx.file).is_file()
    return "onnx" if onnx_ready else "joblib"


def load_bundle(directory: Path, backend: Backend = "auto") -> LoadedModel:
    """Loads and checks one bundle; a smoke prediction proves the inputs line up before it is served."""
    if not directory.is_dir():
        raise BundleError(f"{directory}: bundle directory does not exist")
    metadata = read_metadata(directory)
    chosen = choose_backend(metadata, directory, backend)
    predictor: Predictor
    if chosen == "onnx":
        onnx_path = directory / metadata.onnx.file
        if not onnx_path.is_file():
            raise BundleError(f"{onnx_path}: missing, and the onnx backend was asked for")
        predictor = OnnxPredictor(onnx_path, metadata.onnx)
    else:
        predictor = JoblibPredictor(directory / PIPELINE_FILE, metadata.feature_names)
    model = LoadedModel(directory, metadata, chosen, predictor, build_feature_builder(metadata))
    _smoke_test(model)
    return model


def _smoke_test(model: LoadedModel) -> None:
    categorical = model.builder.categorical
    row: dict[str, Any] = {}
    for name in model.metadata.request_fields:
        if name in categorical:
            row[name] = sorted(categorical[name] or {"unknown"})[0]
        else:
            row[name] = 1.0
    try:
        predictions, _ = model.predict([row])
    except Exception as error:  # whatever the backend raises, the bundle is unusable
        raise BundleError(
            f"{model.directory}: a test prediction failed on the {model.backend} backend: {error!r}"
        ) from error
    if predictions.shape != (1,) or not math.isfinite(float(predictions[0])):
        raise BundleError(
            f"{model.directory}: a test prediction gave {predictions!r}, expected one finite number"
        )
