"""Prediction intervals: the conformal quantile ranks, the two regimes (exact below the price cap, a band
relative to the prediction above it), coverage on fresh rows near nominal, and on the real export."""

import duckdb
import numpy as np
import pytest

from sales_assets.ml.intervals import (
    LEVELS,
    calibrate_intervals,
    conformal_bounds,
    interval_bounds,
    with_holdout_coverage,
)
from sales_assets.ml.training import train_models
from sales_assets.settings import Settings

CAP = 100.0


def _order_lines(rows: int, seed: int, exact_below_cap: bool = True):
    """(target, prediction, price) like the export: unit prices vary about 15% around what the model
    predicts; PRICEEACH is capped at 100, and below the cap the model is exact when asked to be."""
    rng = np.random.default_rng(seed)
    quantity = rng.integers(6, 70, rows).astype(float)
    predicted_unit = rng.uniform(40, 200, rows)
    unit = np.round(predicted_unit * rng.lognormal(0, 0.15, rows), 2)
    price = np.minimum(unit, CAP)
    target = np.round(quantity * unit, 2)
    predicted = np.where(price < CAP, quantity * price, quantity * predicted_unit)
    if not exact_below_cap:
        predicted = predicted * rng.lognormal(0, 0.05, rows)
    return target, predicted, price


def test_conformal_bounds_take_the_finite_sample_ranks():
    scores = np.arange(1.0, 20.0)  # n = 19: (n + 1) x 0.05 = 1 and (n + 1) x 0.95 = 19
    assert conformal_bounds(scores, 0.9) == (1.0, 19.0)
    assert conformal_bounds(np.arange(1.0, 10.0), 0.95) == (-np.inf, np.inf)  # too few rows for 95%


def test_an_exact_model_gets_zero_width_below_the_cap_and_a_relative_band_above():
    target, predicted, price = _order_lines(4000, seed=1)
    calibration = calibrate_intervals(target, predicted, price, CAP)

    assert calibration.price_cap == CAP and calibration.calibration_rows == int((price >= CAP).sum())
    for level in LEVELS:
        band = calibration.levels[level]
        assert -1 < band["lower_relative"] < 0 < band["upper_relative"]
        lower, upper = interval_bounds(calibration, level, predicted, price)
        below = price < CAP
        assert (lower[below] == predicted[below]).all() and (upper[below] == predicted[below]).all()
        ratio = upper[~below] / predicted[~below]
        assert np.allclose(ratio, 1 + band["upper_relative"])  # relative to the predicted unit price
    assert calibration.levels[0.95]["upper_relative"] > calibration.levels[0.8]["upper_relative"]


@pytest.mark.parametrize("exact_below_cap", [True, False], ids=["exact-below-cap", "approximate-everywhere"])
def test_coverage_on_fresh_rows_is_near_nominal(exact_below_cap):
    calibration = calibrate_intervals(*_order_lines(4000, seed=2, exact_below_cap=exact_below_cap), CAP)
    fresh_target, fresh_predicted, fresh_price = _order_lines(4000, seed=3, exact_below_cap=exact_below_cap)

    measured = with_holdout_coverage(calibration, fresh_target, fresh_predicted, fresh_price)

    assert (measured.price_cap is None) is (not exact_below_cap)
    for level in LEVELS:
        assert abs(measured.coverage_holdout[level] - level) <= 0.03
        assert measured.coverage_holdout_all_rows[level] >= measured.coverage_holdout[level] - 1e-9
    card = measured.as_dict()
    assert set(card["levels"]) == {"0.8", "0.95"} and set(card["coverage_holdout"]) == {"0.8", "0.95"}


def test_a_model_that_misses_below_the_cap_by_a_cent_is_not_called_exact():
    target, predicted, price = _order_lines(2000, seed=4)
    below = np.flatnonzero(price < CAP)
    predicted[below[0]] += 0.02
    assert calibrate_intervals(target, predicted, price, CAP).price_cap is None


def test_no_row_to_calibrate_on_is_an_error():
    with pytest.raises(ValueError, match="no training row"):
        calibrate_intervals(np.array([10.0, 20.0]), np.array([-1.0, -2.0]), np.array([120.0, 130.0]), CAP)


@pytest.mark.real_data
def test_held_out_coverage_is_within_three_points_of_nominal_on_the_real_export(real_warehouse_data_dir):
    settings = Settings(data_dir=real_warehouse_data_dir)
    settings.ml.models = ["capped_price_residual"]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        frame = conn.execute("SELECT * FROM sales ORDER BY ORDERNUMBER, ORDERLINENUMBER, PRODUCTCODE").df()

    intervals = train_models(frame, settings).intervals

    assert intervals is not None and intervals.price_cap == settings.ingest.price_cap
    for level in LEVELS:
        assert abs(intervals.coverage_holdout[level] - level) <= 0.03, intervals.coverage_holdout
