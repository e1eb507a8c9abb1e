"""Loading bundles: backend choice, parity between backends, and refusals that say why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from sales_serving.contract.bundle import BundleError
from sales_serving.loading import load_bundle, served_version
from sales_tests.serving.bundle_factory import (
    REQUEST_FIELDS,
    export_onnx,
    reseal,
    synthetic_frame,
    write_bundle,
)
from sales_tests.serving.conftest import VERSION_1


def rewrite_metadata(bundle: Path, **changes: object) -> None:
    path = bundle / "metadata.json"
    metadata = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del metadata[key]
        else:
            metadata[key] = value
    path.write_text(json.dumps(metadata))


def test_auto_backend_is_onnx_when_parity_passed(bundle_v1: Path) -> None:
    model = load_bundle(bundle_v1)
    assert model.backend == "onnx"
    assert model.version == VERSION_1
    assert model.metadata.lineage.mlflow_run_id == f"mlflow-{VERSION_1}"
    assert model.metadata.feature_names[-1] == "SEASON"


def test_auto_backend_falls_back_to_joblib_when_parity_failed(models_dir: Path, trained: dict) -> None:
    pipeline, onnx_bytes = trained[VERSION_1]
    bundle = write_bundle(models_dir, "v-parity-failed", pipeline, onnx_bytes, parity_passed=False)
    assert load_bundle(bundle).backend == "joblib"
    assert load_bundle(bundle, "onnx").backend == "onnx"


def test_onnx_and_joblib_agree_within_parity_tolerance(models_dir: Path, trained: dict) -> None:
    # float32 inputs, as skl2onnx exports tree ensembles (double trees do not load in onnxruntime 1.32).
    pipeline: Pipeline = trained[VERSION_1][0]
    bundle = write_bundle(models_dir, "v-parity", pipeline, export_onnx(pipeline))
    frame, _ = synthetic_frame(300, seed=7)
    rows = frame[REQUEST_FIELDS]
    records = rows.to_dict("records")
    onnx_predictions, _ = load_bundle(bundle, "onnx").predict(records)
    joblib_predictions, _ = load_bundle(bundle, "joblib").predict(records)
    assert onnx_predictions.shape == (300,)
    assert np.max(np.abs(onnx_predictions - joblib_predictions)) <= 0.01
    # The serving path must reproduce what the pipeline gives on the training-side frame.
    np.testing.assert_allclose(joblib_predictions, pipeline.predict(frame), rtol=0, atol=1e-9)


def test_served_version_names_the_problem(models_dir: Path) -> None:
    with pytest.raises(BundleError, match="CURRENT: missing, so there is no model to serve yet"):
        served_version(models_dir)
    models_dir.mkdir(parents=True)
    (models_dir / "CURRENT").write_text("../elsewhere\n")
    with pytest.raises(BundleError, match="expected one bundle directory name"):
        served_version(models_dir)
    (models_dir / "CURRENT").write_text("20261127T091500Z-aaaaaaaa\n")
    assert served_version(models_dir) == "20261127T091500Z-aaaaaaaa"


@pytest.mark.parametrize(
    ("break_bundle", "expected"),
    [
        (lambda b: (b / "metadata.json").unlink(), r"metadata.json: missing"),
        (lambda b: (b / "metadata.json").write_text("{not json"), r"metadata.json: not valid JSON"),
        (
            lambda b: rewrite_metadata(b, features=None),
            r"breaks the bundle contract: features: Field required",
        ),
        (lambda b: rewrite_metadata(b, schema_version=2), r"schema_version"),
        (lambda b: rewrite_metadata(b, version="other"), r"says version 'other'"),
        (
            lambda b: rewrite_metadata(b, derived_features=[{"name": "X", "op": "log", "inputs": ["MSRP"]}]),
            r"derived_features.0.op",
        ),
        (
            lambda b: rewrite_metadata(b, request_fields=["PRICEEACH"]),
            r"derived feature 'YEAR' needs \['YEAR_ID'\]",
        ),
        (lambda b: (b / "model.onnx").write_bytes(b"garbage"), r"onnxruntime cannot load the model"),
        (lambda b: (b / "model.onnx").unlink(), r"pipeline.joblib|test prediction"),
    ],
    ids=[
        "no-metadata",
        "bad-json",
        "missing-key",
        "schema-version",
        "version-mismatch",
        "unknown-op",
        "unknown-input",
        "corrupt-onnx",
        "no-onnx",
    ],
)
def test_broken_bundles_are_refused_with_the_reason(bundle_v1: Path, break_bundle, expected: str) -> None:
    break_bundle(bundle_v1)
    # Published broken (manifest over the broken files): the contract checks refuse it.
    reseal(bundle_v1)
    if not (bundle_v1 / "model.onnx").exists():
        # Without model.onnx auto uses joblib (and succeeds); forcing onnx must refuse.
        assert load_bundle(bundle_v1).backend == "joblib"
        with pytest.raises(BundleError, match="model.onnx: missing"):
            load_bundle(bundle_v1, "onnx")
        return
    with pytest.raises(BundleError, match=expected):
        load_bundle(bundle_v1)


def test_onnx_inputs_that_do_not_match_the_graph_are_refused(bundle_v1: Path) -> None:
    metadata = json.loads((bundle_v1 / "metadata.json").read_text())
    metadata["onnx"]["inputs"][0]["type"] = "float64"
    (bundle_v1 / "metadata.json").write_text(json.dumps(metadata))
    reseal(bundle_v1)
    with pytest.raises(BundleError, match="graph inputs .* differ from metadata"):
        load_bundle(bundle_v1)


def test_unpicklable_pipeline_is_refused(bundle_v1: Path) -> None:
    (bundle_v1 / "pipeline.joblib").write_bytes(b"not a pickle")
    reseal(bundle_v1)
    with pytest.raises(BundleError, match="cannot unpickle the pipeline"):
        load_bundle(bundle_v1, "joblib")


def _request_field_graph(numeric: list[str], text: list[str]) -> bytes:
    """A graph as training exports it for any runtime: request fields in (float64 / string), SALES out
    (here QUANTITYORDERED x PRICEEACH, so the answer is known)."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(name, TensorProto.DOUBLE, [None, 1]) for name in numeric]
    inputs += [helper.make_tensor_value_info(name, TensorProto.STRING, [None, 1]) for name in text]
    output = helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["QUANTITYORDERED", "PRICEEACH"], ["variable"])], "sales", inputs, [output]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def test_an_onnx_graph_taking_request_fields_is_fed_the_request_fields(
    models_dir: Path, trained: dict
) -> None:
    from sales_serving.contract.bundle import OnnxSpec

    if "input_kind" not in OnnxSpec.model_fields:
        pytest.skip("this contract version has no onnx.input_kind")
    text = ["PRODUCTLINE", "COUNTRY"]
    numeric = [name for name in REQUEST_FIELDS if name not in text]
    inputs = [{"name": name, "type": "string" if name in text else "float64"} for name in REQUEST_FIELDS]
    graph = _request_field_graph(numeric, text)
    pipeline = trained[VERSION_1][0]
    bundle = write_bundle(models_dir, "v-request-fields", pipeline, graph)
    metadata = json.loads((bundle / "metadata.json").read_text())
    metadata["onnx"] |= {"input_kind": "request_fields", "inputs": inputs, "output": "variable"}
    (bundle / "metadata.json").write_text(json.dumps(metadata))
    reseal(bundle)

    model = load_bundle(bundle, "onnx")
    row = dict(zip(numeric, [30, 95.7, 2, 95, 1, 2, 2003], strict=True)) | {
        "PRODUCTLINE": "Ships",
        "COUNTRY": "USA",
    }
    predictions, _ = model.predict([row])
    assert predictions.tolist() == pytest.approx([30 * 95.7])
