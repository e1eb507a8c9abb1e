"""Conformal intervals from backtest errors: the rank rule, the scale per step ahead, and coverage near
nominal on 200 simulated series for the shipped model (baselines, and a SARIMA through the report's own
selection), measured on months the intervals never saw."""

from collections import Counter

import numpy as np
import pytest

from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.backtest import actuals, rolling_origins, run_candidate
from sales_assets.timeseries.forecast import WarningLog, baseline_candidate
from sales_assets.timeseries.intervals import (
    backtest_intervals,
    calibrate,
    conformal_quantile,
    error_scale,
    interval_bounds,
    measured_coverage,
)
from sales_assets.timeseries.report import forecast_sections

HORIZON = 6
MONTHS = 29  # as the real file


def test_scale_never_shrinks_and_holds_past_the_horizon() -> None:
    errors = np.array([[3.0, 1.0, 5.0], [-3.0, 1.0, -5.0]])
    assert error_scale(errors, 5).tolist() == [3.0, 3.0, 5.0, 5.0, 5.0]


def test_conformal_rank_and_its_cap() -> None:
    scores = np.arange(1.0, 11.0)  # n = 10
    assert conformal_quantile(scores, 0.8) == (9.0, False)  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantile(scores, 0.95) == (10.0, True)  # ceil(11 * 0.95) = 11 > n: the largest, flagged


def test_bounds_are_nested_and_floored_at_zero() -> None:
    errors = np.random.default_rng(0).normal(0, 10, (6, HORIZON))
    calibration = calibrate(errors, 8)
    bounds = interval_bounds(np.full(8, 5.0), calibration)
    (low80, high80), (low95, high95) = bounds[80], bounds[95]
    assert (low95 <= low80).all() and (high80 <= high95).all() and (low95 >= 0).all()
    assert calibration.points == 36 and calibration.scale.shape == (8,)
    assert measured_coverage(calibration, np.zeros((2, HORIZON))) == {80: 1.0, 95: 1.0}


def seasonal_with_noise(rng: np.random.Generator, months: int) -> np.ndarray:
    return 1000 + 400 * np.sin(2 * np.pi * np.arange(months) / 12) + rng.normal(0, 60, months)


def random_walk(rng: np.random.Generator, months: int) -> np.ndarray:
    return 5000 + np.cumsum(rng.normal(0, 100, months))


@pytest.mark.parametrize(
    ("model", "simulate"),
    [("seasonal_naive", seasonal_with_noise), ("last_value", random_walk)],
    ids=["seasonal", "random-walk"],
)
def test_coverage_is_near_nominal_on_200_simulated_series(model, simulate) -> None:
    """The report's procedure on 29 months: errors at every backtested origin, intervals for the next 6
    months; the 6 months are then drawn and counted. The coverage the report states (at each of the 4
    evaluation origins, intervals calibrated on the errors before it) is checked the same way. The random
    walk's errors grow with the step ahead, which the per-step scale has to follow."""
    candidate = baseline_candidate(model)
    origins = rolling_origins(MONTHS, HORIZON, 3, 4, 1)
    inside: dict[int, list[float]] = {80: [], 95: []}
    measured: dict[int, list[float]] = {80: [], 95: []}
    for seed in range(200):
        series = simulate(np.random.default_rng(seed), MONTHS + HORIZON)
        history, future = series[:MONTHS], series[MONTHS:]

        def errors_at(at: list[int], history: np.ndarray = history) -> np.ndarray:
            return actuals(history, at, HORIZON) - run_candidate(history, candidate, at, HORIZON).forecasts

        intervals = backtest_intervals(
            [errors_at([o for o in origins.backtested if o + HORIZON <= e]) for e in origins.evaluation],
            errors_at(origins.evaluation),
            errors_at(origins.backtested),
            candidate.fit(history, HORIZON).forecast,
        )
        for level, (low, high) in intervals.bounds.items():
            inside[level].append(float(np.mean((future >= low) & (future <= high))))
            measured[level].append(intervals.coverage[level])
        assert intervals.coverage_points == 24 and intervals.calibration.points == 60
    for level in (80, 95):
        assert abs(100 * np.mean(inside[level]) - level) <= 5, (level, np.mean(inside[level]))
        assert abs(100 * np.mean(measured[level]) - level) <= 5, (level, np.mean(measured[level]))


# ---- issue 13: SARIMA wins on a seasonal series and its shipped intervals cover near nominal --------------

SARIMA_MONTHS = 36
QUICK_SARIMA = TimeseriesSettings(
    # One small candidate, the model the simulation draws from; 50 iterations suffice for one coefficient.
    sarima_candidates=[{"order": [1, 1, 0], "seasonal_order": [0, 1, 0, 12]}],
    sarima_maxiter=50,
)


def growing_seasonal(seed: int, months: int) -> np.ndarray:
    """SARIMA(1,1,0)(0,1,0,12): a yearly pattern whose year-on-year growth starts at 300 and drifts as a
    random walk with AR(1) steps (0.5, sd 10). Seasonal naive lags the growth; the SARIMA follows it."""
    rng = np.random.default_rng(seed)
    steps = np.zeros(months)
    for t in range(1, months):
        steps[t] = 0.5 * steps[t - 1] + rng.normal(0, 10)
    growth = 300 + np.cumsum(steps)
    sales = 1000 + 400 * np.sin(2 * np.pi * np.arange(months) / 12) + growth
    for t in range(12, months):
        sales[t] = sales[t - 12] + growth[t]
    return sales


def shipped_sarima_outcome(seed: int) -> tuple[str, dict[int, float]]:
    """The report's own forecast sections on the first 36 months: the shipped model and the share of the
    next 6 (simulated) months inside its shipped intervals."""
    series = growing_seasonal(seed, SARIMA_MONTHS + HORIZON)
    history, future = series[:SARIMA_MONTHS], series[SARIMA_MONTHS:]
    labels = [f"{2000 + m // 12}-{m % 12 + 1:02d}" for m in range(SARIMA_MONTHS)]
    sections = forecast_sections(history, labels, QUICK_SARIMA, WarningLog())
    points = [p.model_dump() for p in sections["forecast"].points]
    inside = {
        level: float(
            np.mean(
                [p[f"lower_{level}"] <= a <= p[f"upper_{level}"] for p, a in zip(points, future, strict=True)]
            )
        )
        for level in (80, 95)
    }
    return sections["decision"].shipped_model, inside


@pytest.mark.slow
def test_sarima_ships_on_simulated_seasonal_series_and_its_intervals_cover_near_nominal() -> None:
    """Issue 13: on 200 simulated seasonal series SARIMA is shipped on (nearly) all, and its shipped 80%/95%
    intervals hold that share of the 6 months that follow, within 5 points (about 1,150 points per level).
    About 50 s of CPU, spread over the 2 cores.

    Not asserted: the coverage the report states, which measures intervals calibrated on the selection
    origins alone on the 6 points of one evaluation origin (a narrower procedure than the shipped one, on
    few points); on these seeds it averages about 75% and 89%, on seeds 200-599 about 87% and 95%."""
    from joblib import Parallel, delayed

    outcomes = Parallel(n_jobs=2)(delayed(shipped_sarima_outcome)(seed) for seed in range(200))
    shipped = [inside for model, inside in outcomes if model == "SARIMA(1,1,0)(0,1,0,12)"]
    assert len(shipped) >= 190, Counter(model for model, _ in outcomes)
    for level in (80, 95):
        covered = 100 * np.mean([inside[level] for inside in shipped])
        assert abs(covered - level) <= 5, (level, covered)
