"""Bounded cost per request: the shape of a JSON body (keys per object, names per `columns` list, nesting)
is checked before any of it is parsed into a model, so a body inside the byte limit but stuffed with keys is
refused by the shape gate (its error type says so), not by the routes' models after parsing it."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from sales_serving.schema import EXAMPLE_ROW

FLOOD = {f"unknown_{i}": 0 for i in range(100_000)}


def refused_by_the_gate(response, setting: str = "SALES_SERVING_MAX_OBJECT_KEYS") -> dict:
    """The answer is the gate's (413 naming the shape setting; the routes' models never say that)."""
    assert response.status_code == 413, response.text
    answer = response.json()
    # OIP answers {"error": ...}, MLflow and this API {"message": ...}.
    answer["message"] = answer.get("message", answer.get("error"))
    assert setting in answer["message"]
    return answer


def test_a_100k_key_body_is_refused_before_it_is_parsed(client: TestClient) -> None:
    body = orjson.dumps(EXAMPLE_ROW | FLOOD)
    assert 1_500_000 < len(body) < 8 * 1024 * 1024  # inside the byte limit
    answer = refused_by_the_gate(
        client.post("/predict", content=body, headers={"content-type": "application/json"})
    )
    assert answer["errors"][0]["type"] == "body_shape_too_large"
    assert f"an object with {len(EXAMPLE_ROW) + len(FLOOD)} keys; at most 128" in answer["message"]
    records = orjson.dumps({"dataframe_records": [EXAMPLE_ROW | FLOOD]})
    answer = refused_by_the_gate(
        client.post("/invocations", content=records, headers={"content-type": "application/json"})
    )
    assert answer["message"].startswith("body.dataframe_records.0: an object with")


def test_a_columns_list_of_100k_names_is_refused(client: TestClient) -> None:
    split = {"dataframe_split": {"columns": list(FLOOD), "data": [[0] * 3]}}
    answer = refused_by_the_gate(client.post("/invocations", json=split))
    assert "100000 columns" in answer["message"]


def test_deep_nesting_is_refused(client: TestClient) -> None:
    nested: object = 1
    for _ in range(50):
        nested = [nested]
    refused_by_the_gate(
        client.post("/v2/models/sales_regressor/infer", json={"inputs": nested}),
        "SALES_SERVING_MAX_JSON_DEPTH",
    )


def test_bodies_inside_the_limits_reach_the_routes(client: TestClient) -> None:
    """Inside the shape limits the routes' own rules answer: 60 unknown fields are over the per-row cap
    (a model-level refusal), 10 are accepted."""
    many = {f"unknown_{i}": 0 for i in range(60)}
    over = client.post("/predict", json=EXAMPLE_ROW | many)
    assert over.status_code == 422 and "too_many_unknown_fields" in over.text
    few = {f"unknown_{i}": 0 for i in range(10)}
    assert client.post("/predict", json=EXAMPLE_ROW | few).status_code == 200
    assert client.post("/invocations", json={"dataframe_records": [EXAMPLE_ROW] * 3}).status_code == 200


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_a_streamed_body_over_the_byte_limit_is_still_413(client: TestClient, path: str) -> None:
    def chunks():
        for _ in range(10):
            yield b" " * (1024 * 1024)

    response = client.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
