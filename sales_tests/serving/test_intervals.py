"""Prediction intervals from the bundle's calibration: zero width below the price cap, relative bands on
capped rows, the same bounds on /predict and /predict/batch."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sales_serving.contract.bundle import PredictionIntervals
from sales_serving.intervals import IntervalBands
from sales_tests.serving.bundle_factory import TEST_INTERVALS

BANDS = IntervalBands.from_spec(PredictionIntervals.model_validate(TEST_INTERVALS))


def test_rows_below_the_cap_are_exact_and_capped_rows_get_relative_bands() -> None:
    predictions = np.array([2871.0, 4100.0, 500.0])
    price = np.array([95.7, 100.0, 120.0])
    bounds = BANDS.bounds(predictions, price)
    assert list(bounds) == [0.8, 0.95]
    lower, upper = bounds[0.8]
    np.testing.assert_allclose(lower, [2871.0, 4100.0 * 0.9, 500.0 * 0.9])
    np.testing.assert_allclose(upper, [2871.0, 4100.0 * 1.12, 500.0 * 1.12])
    wide_lower, wide_upper = bounds[0.95]
    assert (wide_lower <= lower).all() and (wide_upper >= upper).all()


def test_bounds_stay_ordered_for_a_negative_prediction_and_without_a_cap() -> None:
    uncapped = IntervalBands.from_spec(
        PredictionIntervals.model_validate(TEST_INTERVALS | {"price_cap": None})
    )
    lower, upper = uncapped.bounds(np.array([-100.0, 50.0]), None)[0.8]
    assert (lower <= upper).all()
    np.testing.assert_allclose(lower, [-112.0, 45.0])
    with pytest.raises(ValueError, match="PRICEEACH"):
        BANDS.bounds(np.array([1.0]), None)


def test_predict_and_batch_serve_the_same_intervals(client: TestClient, example_row: dict) -> None:
    exact_row = example_row
    capped_row = example_row | {"PRICEEACH": 100.0, "QUANTITYORDERED": 41}
    # Full precision: the bounds are compared with the prediction times the band's factors.
    singles = [client.post("/predict?precision=full", json=row).json() for row in (exact_row, capped_row)]
    batch = client.post("/predict/batch?precision=full", json={"rows": [exact_row, capped_row]}).json()

    exact, capped = singles
    assert [item["level"] for item in exact["intervals"]] == [0.8, 0.95]
    for item in exact["intervals"]:
        assert item["lower"] == item["upper"] == exact["prediction"]
    eighty = capped["intervals"][0]
    assert eighty["lower"] == pytest.approx(capped["prediction"] * 0.9)
    assert eighty["upper"] == pytest.approx(capped["prediction"] * 1.12)
    for level_index, item in enumerate(batch["intervals"]):
        assert item["lower"] == pytest.approx([s["intervals"][level_index]["lower"] for s in singles])
        assert item["upper"] == pytest.approx([s["intervals"][level_index]["upper"] for s in singles])


@pytest.mark.parametrize("cap", [TEST_INTERVALS["price_cap"], None])
def test_one_row_gets_the_bounds_of_the_same_row_in_a_batch(cap: float | None) -> None:
    """`bounds` computes one row on Python floats; the values must be the arrays' to the bit."""
    bands = IntervalBands.from_spec(PredictionIntervals.model_validate(TEST_INTERVALS | {"price_cap": cap}))
    generator = np.random.default_rng(3)
    predictions = np.concatenate([generator.normal(2000, 3000, 500), [0.0, -0.0, 1e30, -1e30]])
    prices = np.concatenate([generator.uniform(20, 200, 500), [100.0, 99.99, 100.0, 50.0]])
    batch = bands.bounds(predictions, prices)
    for index in range(len(predictions)):
        alone = bands.bounds(predictions[index : index + 1], prices[index : index + 1])
        for level, (lower, upper) in alone.items():
            assert lower.shape == upper.shape == (1,)
            assert (lower[0], upper[0]) == (batch[level][0][index], batch[level][1][index])
