"""MLflow's scoring server (/invocations) and the Open Inference Protocol v2 (/v2), sent the request shapes those
protocols' own documentation shows; answers match /predict/batch, bad requests get the protocol's 4xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sales_serving.app import create_app
from sales_serving.settings import ServingSettings
from sales_tests.serving.conftest import VERSION_1

NUMERIC = ("QUANTITYORDERED", "PRICEEACH", "ORDERLINENUMBER", "MSRP", "QTR_ID", "MONTH_ID", "YEAR_ID")


@pytest.fixture
def rows(example_row: dict) -> list[dict]:
    # One row below the price cap (exact) and one at it (capped: the unit price is estimated).
    return [example_row, example_row | {"PRICEEACH": 100.0, "QUANTITYORDERED": 41}]


@pytest.fixture
def expected(client: TestClient, rows: list[dict]) -> dict:
    # Full precision: the protocol routes answer the model's floats, /predict/batch rounds to the cent.
    return client.post("/predict/batch?precision=full", json={"rows": rows}).json()


def _tensor(name: str, values: list, shape: list[int] | None = None) -> dict:
    datatype = "BYTES" if isinstance(values[0], str) else ("INT64" if isinstance(values[0], int) else "FP64")
    return {"name": name, "shape": shape or [len(values)], "datatype": datatype, "data": values}


def _tensors(rows: list[dict]) -> list[dict]:
    return [_tensor(name, [row[name] for row in rows]) for name in rows[0]]


# ------------------------------------------------------------------------------------ MLflow /invocations


def _mlflow_bodies(rows: list[dict]) -> dict[str, dict]:
    columns = list(rows[0])
    return {
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [list(r.values()) for r in rows]}
        },
        "dataframe_records": {"dataframe_records": rows},
        "inputs_columns": {"inputs": {name: [row[name] for row in rows] for name in columns}},
        "instances_records": {"instances": rows},
        "with_params": {"dataframe_records": rows, "params": {"ignored": 1}},
    }


@pytest.mark.parametrize(
    "shape", ["dataframe_split", "dataframe_records", "inputs_columns", "instances_records", "with_params"]
)
def test_invocations_answers_every_documented_body_like_predict_batch(
    client: TestClient, rows: list[dict], expected: dict, shape: str
) -> None:
    response = client.post("/invocations", json=_mlflow_bodies(rows)[shape])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == pytest.approx(expected["predictions"], abs=1e-9)
    by_level = {item["level"]: item for item in expected["intervals"]}
    assert set(body["intervals"]) == {"0.8", "0.95"}
    assert body["intervals"]["0.8"]["lower"] == pytest.approx(by_level[0.8]["lower"])
    assert body["intervals"]["0.95"]["upper"] == pytest.approx(by_level[0.95]["upper"])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "exactly one of"),
        ({"dataframe_records": [{}], "inputs": {"a": [1]}}, "exactly one of"),
        (
            {"dataframe_split": {"columns": ["QUANTITYORDERED", "PRICEEACH"], "data": [[30]]}},
            "has 1 values for 2",
        ),
        ({"inputs": [[30, 95.7]]}, "inputs"),
        ({"inputs": {"QUANTITYORDERED": [30, 31], "PRICEEACH": [95.7]}}, "same number of values"),
        ({"dataframe_records": []}, "dataframe_records"),
        ({"data": [[1]]}, "data"),
    ],
    ids=["empty", "two-keys", "ragged-split", "unnamed-tensor", "ragged-columns", "no-rows", "mlflow1-shape"],
)
def test_invocations_malformed_bodies_are_400_bad_request(
    client: TestClient, body: dict, expected: str
) -> None:
    response = client.post("/invocations", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert expected in response.json()["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"MONTH_ID": 13}, "rows.1.MONTH_ID"), ({"QUANTITYORDERED": True}, "rows.1.QUANTITYORDERED")],
)
def test_invocations_invalid_rows_name_row_and_field(
    client: TestClient, rows: list[dict], change: dict, field: str
) -> None:
    response = client.post("/invocations", json={"dataframe_records": [rows[0], rows[1] | change]})
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_invocations_malformed_json_and_no_model_are_protocol_errors(settings: ServingSettings) -> None:
    with TestClient(create_app(settings)) as empty:
        bad = empty.post(
            "/invocations", content=b'{"dataframe_records": [', headers={"content-type": "application/json"}
        )
        missing = empty.post("/invocations", json={"dataframe_records": [{"QUANTITYORDERED": 1}]})
    assert (bad.status_code, bad.json()["error_code"]) == (400, "BAD_REQUEST")
    assert (missing.status_code, missing.json()["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE")
    assert "onnx_model" in missing.json()["message"]


def test_invocations_respects_the_batch_limit(client: TestClient, example_row: dict) -> None:
    response = client.post("/invocations", json={"dataframe_records": [example_row] * 51})
    assert response.status_code == 413
    assert "SALES_SERVING_BATCH_LIMIT" in response.json()["message"]


# ------------------------------------------------------------------------------- Open Inference Protocol


def test_v2_health_and_model_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert client.get("/v2/models/sales_regressor/ready").json() == {"name": "sales_regressor", "ready": True}
    metadata = client.get("/v2/models/sales_regressor").json()
    assert metadata["name"] == "sales_regressor" and metadata["versions"] == [VERSION_1]
    assert metadata["platform"] == "onnxruntime_onnx"
    datatypes = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    assert datatypes["QUANTITYORDERED"] == "FP64" and datatypes["PRODUCTLINE"] == "BYTES"
    assert [tensor["name"] for tensor in metadata["outputs"]] == [
        "SALES",
        "SALES_lower_80",
        "SALES_upper_80",
        "SALES_lower_95",
        "SALES_upper_95",
    ]


def test_v2_not_ready_without_a_model_is_503_as_kserve_answers(settings: ServingSettings) -> None:
    with TestClient(create_app(settings)) as empty:
        assert empty.get("/v2/health/live").status_code == 200
        ready = empty.get("/v2/health/ready")
        infer = empty.post("/v2/models/sales_regressor/infer", json={"inputs": [_tensor("MSRP", [95])]})
        model_ready = empty.get("/v2/models/sales_regressor/ready")
    assert (ready.status_code, ready.json()) == (503, {"ready": False})
    assert (model_ready.status_code, model_ready.json()["ready"]) == (503, False)
    assert infer.status_code == 503 and "onnx_model" in infer.json()["error"]


@pytest.mark.parametrize("nested", [False, True], ids=["flat-[N]", "nested-[N,1]"])
def test_v2_infer_with_named_tensors_matches_predict_batch(
    client: TestClient, rows: list[dict], expected: dict, nested: bool
) -> None:
    inputs = _tensors(rows)
    if nested:
        inputs = [
            tensor | {"shape": [2, 1], "data": [[value] for value in tensor["data"]]} for tensor in inputs
        ]
    response = client.post("/v2/models/sales_regressor/infer", json={"id": "req-1", "inputs": inputs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("sales_regressor", VERSION_1, "req-1")
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["SALES"]["shape"] == [2] and outputs["SALES"]["datatype"] == "FP64"
    assert outputs["SALES"]["data"] == pytest.approx(expected["predictions"], abs=1e-9)
    band = next(item for item in expected["intervals"] if item["level"] == 0.95)
    assert outputs["SALES_lower_95"]["data"] == pytest.approx(band["lower"])
    assert outputs["SALES_upper_95"]["data"] == pytest.approx(band["upper"])


def test_v2_infer_returns_only_the_requested_outputs(client: TestClient, rows: list[dict]) -> None:
    body = {"inputs": _tensors(rows), "outputs": [{"name": "SALES_upper_80"}]}
    response = client.post(f"/v2/models/sales_regressor/versions/{VERSION_1}/infer", json=body)
    assert [output["name"] for output in response.json()["outputs"]] == ["SALES_upper_80"]


def _change(tensors: list[dict], name: str, **fields) -> list[dict]:
    return [tensor | fields if tensor["name"] == name else tensor for tensor in tensors]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t + [_tensor("DISCOUNT", [1, 2])], "'DISCOUNT' is not an input"),
        (lambda t: t + [t[0]], "given twice"),
        (lambda t: _change(t, "MSRP", datatype="BYTES", data=["95", "95"]), "datatype 'BYTES' does not fit"),
        (lambda t: _change(t, "MSRP", datatype="BOOL", data=[True, True]), "datatype 'BOOL' does not fit"),
        (lambda t: _change(t, "COUNTRY", datatype="FP64", data=[1.0, 2.0]), "expected BYTES"),
        (lambda t: _change(t, "MSRP", shape=[3]), "needs 3 values, got 2"),
        (lambda t: _change(t, "MSRP", shape=[2, 2], data=[95, 95, 95, 95]), "must be [N] or [N, 1]"),
        (lambda t: _change(t, "MSRP", shape=[1], data=[95]), "same number of rows"),
        (lambda t: _change(t, "MONTH_ID", data=[2, 13]), "inputs.1.MONTH_ID"),
        (lambda t: _change(t, "QUANTITYORDERED", data=[30, True]), "inputs.1.QUANTITYORDERED"),
        (
            lambda t: [tensor for tensor in t if tensor["name"] != "YEAR_ID"],
            "YEAR_ID: required field is missing",
        ),
    ],
    ids=[
        "unknown-input",
        "duplicate",
        "text-for-number",
        "bool-datatype",
        "number-for-text",
        "shape-vs-data",
        "wide-shape",
        "row-count",
        "out-of-range",
        "bool-value",
        "missing-input",
    ],
)
def test_v2_bad_tensors_are_400_naming_the_tensor(
    client: TestClient, rows: list[dict], mutate, expected: str
) -> None:
    response = client.post("/v2/models/sales_regressor/infer", json={"inputs": mutate(_tensors(rows))})
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


def test_v2_unknown_model_version_and_output_are_4xx(client: TestClient, rows: list[dict]) -> None:
    inputs = _tensors(rows)
    other = client.post("/v2/models/other/infer", json={"inputs": inputs})
    assert other.status_code == 404 and "sales_regressor" in other.json()["error"]
    assert client.get("/v2/models/other").status_code == 404
    old = client.post("/v2/models/sales_regressor/versions/v0/infer", json={"inputs": inputs})
    assert old.status_code == 404 and VERSION_1 in old.json()["error"]
    output = client.post(
        "/v2/models/sales_regressor/infer", json={"inputs": inputs, "outputs": [{"name": "X"}]}
    )
    assert output.status_code == 400 and "SALES_lower_80" in output.json()["error"]
    malformed = client.post("/v2/models/sales_regressor/infer", json={"inputs": [{"name": "MSRP"}]})
    assert malformed.status_code == 400 and "inputs.0.shape" in malformed.json()["error"]


def test_no_interval_bundle_answers_without_intervals_and_says_so(
    settings: ServingSettings, models_dir: Path, trained: dict, example_row: dict
) -> None:
    from sales_serving.intervals import NO_INTERVALS_WARNING
    from sales_tests.serving.bundle_factory import write_bundle

    write_bundle(models_dir, VERSION_1, *trained[VERSION_1], metadata_overrides={"intervals": None})
    with TestClient(create_app(settings)) as plain:
        single = plain.post("/predict", json=example_row).json()
        batch = plain.post("/predict/batch", json={"rows": [example_row]}).json()
        mlflow = plain.post("/invocations", json={"dataframe_records": [example_row]}).json()
        outputs = [t["name"] for t in plain.get("/v2/models/sales_regressor").json()["outputs"]]
        health = plain.get("/health").json()
    assert single["intervals"] is None and NO_INTERVALS_WARNING in single["warnings"]
    assert batch["intervals"] is None and {"row": None, "message": NO_INTERVALS_WARNING} in batch["warnings"]
    assert mlflow["intervals"] is None and NO_INTERVALS_WARNING in mlflow["warnings"]
    assert outputs == ["SALES"] and health["intervals"] is None
