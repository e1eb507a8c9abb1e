"""Strict numbers (no booleans, no strings) and a cap on unknown fields, on every scoring route."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sales_serving.app import create_app
from sales_serving.schema import SalesFeatures
from sales_serving.settings import ServingSettings

NUMERIC = ("QUANTITYORDERED", "PRICEEACH", "ORDERLINENUMBER", "MSRP", "QTR_ID", "MONTH_ID", "YEAR_ID")
NOT_NUMBERS = [True, False, "30", "1e3", " 2 "]


@pytest.mark.parametrize("field", NUMERIC)
@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_booleans_and_strings_are_refused_for_numbers(
    client: TestClient, example_row: dict, field: str, value: object
) -> None:
    row = example_row | {field: value}
    single = client.post("/predict", json=row)
    batch = client.post("/predict/batch", json={"rows": [example_row, row]})
    mlflow = client.post("/invocations", json={"dataframe_records": [row]})
    assert single.status_code == 422
    assert single.json()["errors"][0]["field"] == field
    assert "expected a JSON number" in single.json()["errors"][0]["message"]
    assert batch.status_code == 422 and batch.json()["errors"][0]["field"] == f"rows.1.{field}"
    assert mlflow.status_code == 400 and f"rows.0.{field}" in mlflow.json()["message"]


def test_integral_floats_and_csv_text_are_still_numbers(client: TestClient, example_row: dict) -> None:
    assert client.post("/predict", json=example_row | {"QUANTITYORDERED": 30.0}).status_code == 200
    assert client.post("/predict", json=example_row | {"QUANTITYORDERED": 30.5}).status_code == 422
    # CSV cells arrive as text, and sales-predict validates them in pydantic's strings mode.
    row = SalesFeatures.model_validate_strings({key: str(value) for key, value in example_row.items()})
    assert (row.QUANTITYORDERED, row.PRICEEACH) == (30, 95.7)


def test_unknown_fields_are_capped_with_the_cap_in_the_message(
    data_dir: Path, bundle_v1: Path, example_row: dict
) -> None:
    settings = ServingSettings(data_dir=data_dir, serving_max_unknown_fields=3)
    at_cap = example_row | {f"EXTRA_{n}": n for n in range(3)}
    over = example_row | {f"EXTRA_{n}": n for n in range(4)}
    with TestClient(create_app(settings)) as capped:
        assert capped.post("/predict", json=at_cap).status_code == 200
        single = capped.post("/predict", json=over)
        batch = capped.post("/predict/batch", json={"rows": [at_cap, over]})
        mlflow = capped.post("/invocations", json={"dataframe_records": [over]})
    assert single.status_code == 422
    assert "at most 3 per row" in single.json()["message"]
    assert "SALES_SERVING_MAX_UNKNOWN_FIELDS" in single.json()["message"]
    assert batch.status_code == 422 and batch.json()["errors"][0]["field"] == "rows.1"
    assert mlflow.status_code == 400 and "at most 3 per row" in mlflow.json()["message"]
