"""The prediction routes answer USD to the cent unless the client asks `?precision=full`."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _amounts(body: dict) -> list[float]:
    bounds = [value for item in body["intervals"] for value in (item["lower"], item["upper"])]
    return [body["prediction"], *bounds]


def _batch_amounts(body: dict) -> list[float]:
    bounds = [value for item in body["intervals"] for value in (*item["lower"], *item["upper"])]
    return [*body["predictions"], *bounds]


def test_predict_answers_cents_by_default_and_full_floats_on_request(client: TestClient, example_row: dict):
    # A capped price gives interval bounds that are not whole cents, so the rounding has work to do.
    row = example_row | {"PRICEEACH": 100.0, "QUANTITYORDERED": 41}
    full = client.post("/predict?precision=full", json=row).json()
    cents = client.post("/predict", json=row).json()
    assert any(round(value, 2) != value for value in _amounts(full))  # the comparison below can fail
    assert _amounts(cents) == [round(value, 2) for value in _amounts(full)]
    assert (
        client.post("/predict?precision=cents&echo_features=true", json=row).json()["prediction"]
        == (cents["prediction"])
    )


def test_batch_answers_cents_by_default_and_full_floats_on_request(client: TestClient, example_row: dict):
    rows = {"rows": [example_row, example_row | {"PRICEEACH": 100.0, "QUANTITYORDERED": 41}]}
    full = client.post("/predict/batch?precision=full", json=rows).json()
    cents = client.post("/predict/batch", json=rows).json()
    assert any(round(value, 2) != value for value in _batch_amounts(full))
    assert _batch_amounts(cents) == [round(value, 2) for value in _batch_amounts(full)]


def test_an_unknown_precision_is_refused_naming_the_parameter(client: TestClient, example_row: dict):
    for path, body in (("/predict", example_row), ("/predict/batch", {"rows": [example_row]})):
        response = client.post(f"{path}?precision=exact", json=body)
        assert response.status_code == 422, path
        assert "precision" in response.text, path


def test_the_precision_parameter_is_documented_on_both_routes(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict/batch"):
        [parameter] = [p for p in paths[path]["post"]["parameters"] if p["name"] == "precision"]
        assert parameter["in"] == "query" and "cents" in str(parameter["schema"]), path
