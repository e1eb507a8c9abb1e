"""Loading one model bundle (sales_serving.contract.bundle) into a ready predictor: ONNX or joblib backend.

A bundle that breaks the contract is refused with a BundleError that names the file and what is wrong.
Every file is checked against the bundle's manifest before anything is parsed, and the model is built from
the very bytes that were checked, so a file changed after publication is never unpickled or served. The
ONNX graph (data, no code) is preferred; the joblib pipeline is unpickled only when the graph cannot serve,
and only after the check (skops was considered and not chosen: its trusted-type lists would have to name
every estimator of the catalogue's boosting libraries, and the manifest already confines loading to the
bytes training published).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from sales_serving.contract.bundle import (
    CURRENT_FILE,
    METADATA_FILE,
    PIPELINE_FILE,
    BundleError,
    BundleMetadata,
    Manifest,
    OnnxSpec,
    read_current,
    read_metadata,
    read_verified,
    verify_bundle,
)
from sales_serving.features import DerivedFeature, FeatureBuilder, FeatureColumns
from sales_serving.intervals import IntervalBands
from sales_serving.settings import Backend

ONNX_NUMPY_TYPES = {"float32": np.float32, "float64": np.float64, "string": np.object_}
ONNX_TENSOR_TYPES = {"float32": "tensor(float)", "float64": "tensor(double)", "string": "tensor(string)"}


class Predictor(Protocol):
    def predict(self, features: FeatureColumns) -> np.ndarray: ...


class OnnxPredictor:
    """onnxruntime on one thread per call (the service scales by processes, not intra-op threads)."""

    def __init__(self, path: Path, spec: OnnxSpec, graph: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
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
        # "request_fields": the graph takes the request fields and derives the features itself (so any
        # runtime can call it); "features" (older bundles): it takes the derived feature columns.
        # getattr: bundles name it in metadata.json whether or not this contract version declares it.
        self.takes_request_fields = getattr(spec, "input_kind", "features") == "request_fields"

    def predict(self, features: FeatureColumns) -> np.ndarray:
        columns = features.inputs if self.takes_request_fields else features.columns
        feed = {
            name: columns[name].astype(dtype, copy=False).reshape(-1, 1) for name, dtype in self.input_types
        }
        return self.session.run(self.output_names, feed)[0].reshape(-1).astype(np.float64)


class JoblibPredictor:
    """The fitted sklearn Pipeline; pandas is imported here only, off the ONNX hot path."""

    def __init__(self, path: Path, feature_names: list[str], pickled: bytes) -> None:
        import io

        import joblib

        try:
            self.pipeline = joblib.load(io.BytesIO(pickled))
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

    def predict(self, features: FeatureColumns) -> np.ndarray:
        import pandas as pd

        columns = features.columns
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
    # The bundle's interval calibration as arrays; None when it carries none.
    intervals: IntervalBands | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def identity(self) -> tuple[str, str, str]:
        """(model_name, version, backend): the labels of the `sales_model_info` metric."""
        return (self.metadata.model_name, self.metadata.version, self.backend)

    def predict(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, FeatureColumns]:
        features = self.builder.build(rows)
        return self.predictor.predict(features), features


def build_feature_builder(metadata: BundleMetadata) -> FeatureBuilder:
    derived = [DerivedFeature(spec.name, spec.op, tuple(spec.inputs)) for spec in metadata.derived_features]
    categorical = {
        spec.name: frozenset(spec.allowed_categories) if spec.allowed_categories is not None else None
        for spec in metadata.features
        if spec.kind == "categorical"
    }
    return FeatureBuilder(metadata.request_fields, derived, metadata.feature_names, categorical)


def choose_backend(
    metadata: BundleMetadata, manifest: Manifest, backend: Backend
) -> Literal["onnx", "joblib"]:
    """The asked-for backend; under "auto" the ONNX graph when it passed parity, else the pipeline."""
    if backend != "auto":
        return backend
    onnx_ready = metadata.onnx.parity_passed and metadata.onnx.file in manifest.files
    return "onnx" if onnx_ready else "joblib"


def served_version(models_dir: Path) -> str:
    """The version CURRENT names; BundleError when there is no CURRENT (serving has nothing to load)."""
    version = read_current(models_dir)
    if version is None:
        raise BundleError(f"{models_dir / CURRENT_FILE}: missing, so there is no model to serve yet")
    return version


def load_current(models_dir: Path, backend: Backend = "auto") -> LoadedModel:
    """The bundle CURRENT names, loaded; BundleError when there is no CURRENT or the bundle is refused."""
    return load_bundle(models_dir / served_version(models_dir), backend)


def load_bundle(directory: Path, backend: Backend = "auto") -> LoadedModel:
    """Loads and checks one bundle; a smoke prediction proves the inputs line up before it is served."""
    if not directory.is_dir():
        raise BundleError(f"{directory}: bundle directory does not exist")
    manifest = verify_bundle(directory)
    read_verified(directory, METADATA_FILE, manifest)
    metadata = read_metadata(directory)
    chosen = choose_backend(metadata, manifest, backend)
    predictor: Predictor
    if chosen == "onnx":
        onnx_path = directory / metadata.onnx.file
        if metadata.onnx.file not in manifest.files:
            raise BundleError(f"{onnx_path}: missing, and the onnx backend was asked for")
        predictor = OnnxPredictor(
            onnx_path, metadata.onnx, read_verified(directory, metadata.onnx.file, manifest)
        )
    else:
        if PIPELINE_FILE not in manifest.files:
            raise BundleError(f"{directory / PIPELINE_FILE}: missing (the bundle has no {PIPELINE_FILE})")
        pickled = read_verified(directory, PIPELINE_FILE, manifest)
        predictor = JoblibPredictor(directory / PIPELINE_FILE, metadata.feature_names, pickled)
    bands = IntervalBands.from_spec(metadata.intervals) if metadata.intervals else None
    model = LoadedModel(directory, metadata, chosen, predictor, build_feature_builder(metadata), bands)
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
