"""Prediction intervals: the conformal quantile ranks, the two regimes (exact below the price cap, a band
relative to the prediction above it), coverage on fresh rows near nominal, and on the real export."""

import duckdb
import numpy as np
import pandas as pd
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


def _noisy_order_lines(rows: int, seed: int):
    """Order lines with a known noise: the unit price is MSRP x U(0.8, 1.2) (a uniform 20% either way no
    feature explains), PRICEEACH capped at 100, SALES = quantity x unit price."""
    rng = np.random.default_rng(seed)
    msrp = rng.integers(40, 210, rows).astype(float)
    unit = np.round(msrp * rng.uniform(0.8, 1.2, rows), 2)
    quantity = rng.integers(6, 70, rows)
    month = rng.integers(1, 13, rows)
    sales = np.round(quantity * unit, 2)
    return pd.DataFrame(
        {
            "ORDERNUMBER": np.arange(10100, 10100 + rows),
            "QUANTITYORDERED": quantity,
            "PRICEEACH": np.minimum(unit, CAP),
            "ORDERLINENUMBER": rng.integers(1, 18, rows),
            "SALES": sales,
            "QTR_ID": (month - 1) // 3 + 1,
            "MONTH_ID": month,
            "YEAR_ID": rng.choice([2003, 2004, 2005], rows),
            "PRODUCTLINE": rng.choice(["Classic Cars", "Ships", "Planes"], rows),
            "MSRP": msrp,
            "COUNTRY": rng.choice(["USA", "France", "Spain"], rows),
            "DEALSIZE": np.where(sales < 3000, "Small", np.where(sales < 7000, "Medium", "Large")),
        }
    )


def test_training_calibrates_on_out_of_fold_residuals_not_in_sample_ones(tmp_path):
    """Without the Kaggle file: a forest fits its own training rows' noise, so intervals calibrated on its
    in-sample residuals are far too narrow on held-out rows (measured below as the control); training's
    out-of-fold calibration keeps held-out coverage near nominal. Fails if training calibrates in-sample."""
    settings = Settings(data_dir=tmp_path)
    settings.ml.cv_folds, settings.ml.cv_repeats = 2, 1
    settings.ml.models = ["random_forest_200"]
    outcome = train_models(_noisy_order_lines(1000, seed=11), settings)
    intervals = outcome.intervals

    assert intervals is not None and intervals.price_cap is None  # a forest is not exact below the cap
    for level in LEVELS:
        assert intervals.coverage_holdout[level] >= level - 0.05, intervals.coverage_holdout

    # The control: the same champion calibrated on its in-sample predictions misses by far.
    train = outcome.split.train_index
    train_x, train_y = outcome.features.iloc[train], outcome.target[train]
    in_sample = calibrate_intervals(
        train_y, outcome.pipelines[outcome.champion].predict(train_x), train_x["PRICEEACH"], CAP
    )
    test = outcome.split.test_index
    measured = with_holdout_coverage(
        in_sample,
        outcome.target[test],
        outcome.pipelines[outcome.champion].predict(outcome.features.iloc[test]),
        outcome.features["PRICEEACH"].to_numpy()[test],
    )
    for level in LEVELS:
        assert measured.coverage_holdout[level] < level - 0.1, measured.coverage_holdout
