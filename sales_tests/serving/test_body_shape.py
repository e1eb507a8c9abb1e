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


def _post_predict(client: TestClient, document: object):
    return client.post(
        "/predict", content=orjson.dumps(document), headers={"content-type": "application/json"}
    )


def test_predict_applies_the_gate_to_small_bodies_too(client: TestClient) -> None:
    """/predict's fast path answers outside BodyShapeMiddleware, so it applies the gate itself: one key over
    the limit in a 3 KB body is the gate's 413, exactly at the limit the row's own rule answers."""
    filler = 128 - len(EXAMPLE_ROW)
    at_limit = EXAMPLE_ROW | {f"unknown_{i}": 0 for i in range(filler)}
    over = EXAMPLE_ROW | {f"unknown_{i}": 0 for i in range(filler + 1)}
    answer = refused_by_the_gate(_post_predict(client, over))
    assert "an object with 129 keys; at most 128" in answer["message"]
    reached = _post_predict(client, at_limit)
    assert reached.status_code == 422 and "too_many_unknown_fields" in reached.text


def test_commas_and_brackets_inside_strings_do_not_refuse_a_body(client: TestClient) -> None:
    """The byte counts only decide when a parse is needed; the parse then answers on the real shape."""
    noisy = EXAMPLE_ROW | {"note": "{[" * 80 + "," * 300}
    assert _post_predict(client, noisy).status_code == 200
    assert client.post("/invocations", json={"dataframe_records": [noisy]}).status_code == 200


def _json_documents():
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="ab,[]{}", max_size=4)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=5) | st.dictionaries(st.text("xyz", max_size=3), inner, max_size=5)
        ),
        max_leaves=20,
    )


def test_the_byte_counts_never_pass_a_body_the_walk_refuses() -> None:
    """Soundness of `surely_within_shape`: whenever it says a body is within the limits, the full walk
    agrees, for any document and limits (small limits, so the boundaries are reached)."""
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from sales_serving.errors import ServiceError
    from sales_serving.limits import check_document_shape, surely_within_shape

    @settings(max_examples=400, deadline=None)
    @given(_json_documents(), st.integers(1, 5), st.integers(1, 5))
    @example([0, 0, 0], 2, 5)  # 3 items, 2 commas: over 2 keys
    @example({"x": 0, "y": 0, "z": 0}, 3, 5)  # exactly at the limit
    @example([[[0]]], 5, 2)  # depth 3 over 2
    @example([[0]], 5, 2)  # depth 2 at 2
    def check(document: object, max_keys: int, max_depth: int) -> None:
        body = orjson.dumps(document)
        if surely_within_shape(body, max_keys, max_depth):
            try:
                check_document_shape(document, max_keys, max_depth)
            except ServiceError as refused:  # pragma: no cover - the failure hypothesis reports
                raise AssertionError(f"{body!r} passed the byte counts but the walk says {refused}") from None

    check()
