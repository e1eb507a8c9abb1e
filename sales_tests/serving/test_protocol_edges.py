"""The protocols' edge cases answered as their schemas say, and /docs as a newcomer reads it: named,
realistic examples on every body (each one answered 200), no internal names."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from sales_serving.schema import EXAMPLE_ROW
from sales_serving.served_model import HOW_TO_TRAIN


def schema_of(client: TestClient, name: str) -> dict:
    return client.get("/openapi.json").json()["components"]["schemas"][name]


@pytest.mark.parametrize("key", ["instances", "inputs"])
@pytest.mark.parametrize("empty", [[], {}, {"MSRP": []}], ids=["no-records", "no-columns", "empty-column"])
def test_an_empty_mlflow_input_breaks_the_schema_and_is_answered_400(
    client: TestClient, key: str, empty
) -> None:
    forms = schema_of(client, "InvocationsRequest")["properties"][key]["anyOf"]
    assert forms[1]["minItems"] == 1
    assert forms[0]["minProperties"] == 1 and forms[0]["additionalProperties"]["minItems"] == 1
    answer = client.post("/invocations", json={key: empty})
    assert answer.status_code == 400 and answer.json()["error_code"] == "BAD_REQUEST"


def test_a_tensor_name_outside_the_schemas_enum_is_answered_400_naming_it(client: TestClient) -> None:
    names = schema_of(client, "RequestInput")["properties"]["name"]["enum"]
    assert "0" not in names and names == list(EXAMPLE_ROW)
    tensor = {"name": "0", "shape": [1], "datatype": "FP64", "data": [1.0]}
    answer = client.post("/v2/models/sales_regressor/infer", json={"inputs": [tensor]})
    assert answer.status_code == 400 and "input '0' is not an input" in answer.json()["error"]


@pytest.mark.parametrize("value", ["null", "", "maybe", "2"])
def test_echo_features_that_is_not_a_boolean_is_refused(client: TestClient, value: str) -> None:
    answer = client.post(f"/predict?echo_features={value}", json=EXAMPLE_ROW)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "query.echo_features"


@pytest.mark.parametrize(("value", "echoed"), [("true", True), ("1", True), ("false", False), ("off", False)])
def test_echo_features_booleans_are_read_as_booleans(client: TestClient, value: str, echoed: bool) -> None:
    answer = client.post(f"/predict?echo_features={value}", json=EXAMPLE_ROW)
    assert answer.status_code == 200
    assert (answer.json().get("features_used") is not None) is echoed


def test_docs_name_no_internal_class_and_every_example_is_answered(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    text = json.dumps(spec)
    assert "fast_predict" not in text and "PredictFastPath" not in text
    posted = 0
    for path, operations in spec["paths"].items():
        body = operations.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            continue
        assert body.get("examples"), f"{path} has no named example in /docs"
        url = path.replace("{model_name}", "sales_regressor").replace(
            "{model_version}", client.get("/health").json()["model_version"]
        )
        for example in body["examples"].values():
            answer = client.post(url, json=example["value"])
            assert answer.status_code == 200, (path, answer.text)
            posted += 1
    assert posted >= 7


def test_the_no_model_hint_names_the_commands_as_they_are_installed() -> None:
    assert ".venv/bin/sales-dagster asset materialize" in HOW_TO_TRAIN
