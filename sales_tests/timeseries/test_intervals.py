"""Conformal intervals from backtest errors: the rank rule, the scale per step ahead, coverage near
nominal on 200 simulated series for the shipped model (baselines, and a SARIMA through the report's own
selection), and the segment reports' pooling of level-scaled errors across segments near nominal on
generated segments of known noise, each measured on months the intervals never saw."""

from collections import Counter

import numpy as np
import pytest

from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.backtest import actuals, combine, fit_at_origins, non_negative, rolling_origins
from sales_assets.timeseries.forecast import baseline_candidate
from sales_assets.timeseries.intervals import (
    at_level,
    backtest_intervals,
    calibrate,
    conformal_quantile,
    error_scale,
    interval_bounds,
    level_before,
    measured_coverage_points,
    pooled_calibration,
    scaled_errors,
)
from sales_assets.timeseries.report import build_report, interval_pool, segment_backtest, shipped_intervals
from sales_assets.timeseries.series import Segment
from sales_tests.timeseries.samples import series_of_values

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
    inside = measured_coverage_points(calibration, np.zeros((2, HORIZON)))
    assert {level: bool(flags.all()) for level, flags in inside.items()} == {80: True, 95: True}


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
    """The report's procedure on 29 months: errors at every calibration origin, intervals for the next 6
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
            runs = fit_at_origins(history, candidate, at, HORIZON)
            return actuals(history, at, HORIZON) - combine([runs[o] for o in at]).forecasts

        intervals = backtest_intervals(
            [errors_at([o for o in origins.calibrated if o + HORIZON <= e]) for e in origins.evaluation],
            errors_at(origins.evaluation),
            errors_at(origins.calibrated),
            candidate.fit(history, HORIZON).forecast,
        )
        for level, (low, high) in intervals.bounds.items():
            inside[level].append(float(np.mean((future >= low) & (future <= high))))
            measured[level].append(intervals.coverage[level])
        # 10 calibration origins (12 to 17 and the 4 evaluation origins), 6 months each.
        assert intervals.coverage_points == 24 and intervals.calibration.points == 60
    for level in (80, 95):
        assert abs(100 * np.mean(inside[level]) - level) <= 5, (level, np.mean(inside[level]))
        assert abs(100 * np.mean(measured[level]) - level) <= 5, (level, np.mean(measured[level]))


# ---- issue 13: SARIMA wins on a seasonal series and its shipped intervals cover near nominal --------------

SARIMA_MONTHS = 36
QUICK_SARIMA = TimeseriesSettings(
    # One small candidate, the model the simulation draws from; 50 iterations suffice for one coefficient.
    sarima_candidates=[{"order": [1, 1, 0], "seasonal_order": [0, 1, 0, 12]}],
    statsforecast_candidates=[],
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
    """The report's own forecast on the first 36 months (its intervals calibrated on its own errors, a
    pool of one): the shipped model and the share of the next 6 (simulated) months inside its intervals."""
    series = growing_seasonal(seed, SARIMA_MONTHS + HORIZON)
    history, future = series[:SARIMA_MONTHS], series[SARIMA_MONTHS:]
    report = build_report(Segment("Trains"), series_of_values(history), QUICK_SARIMA)
    points = [p.model_dump() for p in report.forecast.points]
    inside = {
        level: float(
            np.mean(
                [p[f"lower_{level}"] <= a <= p[f"upper_{level}"] for p, a in zip(points, future, strict=True)]
            )
        )
        for level in (80, 95)
    }
    return report.decision.shipped_model, inside


@pytest.mark.slow
def test_sarima_ships_on_simulated_seasonal_series_and_its_intervals_cover_near_nominal() -> None:
    """Issue 13: on 200 simulated seasonal series SARIMA is shipped on (nearly) all, and its shipped 80%/95%
    intervals hold that share of the 6 months that follow, within 5 points (about 1,150 points per level).
    About 100 s of CPU, spread over the 2 cores. (The coverage the reports state is checked on pooled
    segments below.)"""
    from joblib import Parallel, delayed

    outcomes = Parallel(n_jobs=2)(delayed(shipped_sarima_outcome)(seed) for seed in range(200))
    shipped = [inside for model, inside in outcomes if model == "SARIMA(1,1,0)(0,1,0,12)"]
    assert len(shipped) >= 190, Counter(model for model, _ in outcomes)
    for level in (80, 95):
        covered = 100 * np.mean([inside[level] for inside in shipped])
        assert abs(covered - level) <= 5, (level, covered)


# ---- issue 26: intervals calibrated on scaled errors pooled across segments ------------------------------


def pooled_segments(seed: int, segments: int = 8, months: int = MONTHS + HORIZON) -> dict[str, np.ndarray]:
    """Segments of very different size, each its level times a yearly cycle plus noise of known sd (12% of
    the level): one scale-free error distribution that the level scaling has to recover. (The method
    scales by the segment's level, not by the month's: noise that grows with the seasonal peak would be
    over-covered in the troughs and under-covered at the peaks.)"""
    rng = np.random.default_rng(seed)
    season = 1 + 0.4 * np.sin(2 * np.pi * np.arange(months) / 12)
    return {
        f"segment {k}": level * (season + rng.normal(0, 0.12, months))
        for k, level in enumerate(rng.uniform(1e3, 1e6, segments))
    }


def test_pooled_calibration_uses_only_rows_before_the_origin_and_scales_by_level() -> None:
    pool = [
        scaled_errors("a", np.full((3, 2), 10.0), [100.0, 0.0, 50.0], ["2004-01", "2004-02", "2004-03"]),
        scaled_errors("b", np.full((1, 2), 30.0), [100.0], ["2004-05"]),
    ]
    assert pool[0].rows.tolist() == [[0.1, 0.1], [0.2, 0.2]]  # the level-0 row cannot be scaled: left out
    assert pooled_calibration(pool, 2, before="2004-01") is None
    assert pooled_calibration(pool, 2, before="2004-04").points == 4  # segment b's row is later
    calibration = pooled_calibration(pool, 2)
    assert calibration.points == 6
    assert at_level(calibration, 1000.0).scale.tolist() == pytest.approx((calibration.scale * 1000).tolist())
    assert level_before(np.arange(30.0), 24) == pytest.approx(np.mean(np.arange(12.0, 24.0)))


def test_pooled_intervals_cover_near_nominal_on_generated_segments_of_known_noise() -> None:
    """30 draws of 8 segments (levels from 1e3 to 1e6, noise sd 12% of the level) through the reports' own
    code: the shipped 80%/95% intervals hold that share of the next 6 simulated months within 5 points, and
    so does the coverage each report states; the 95% half-width is the same multiple of the 80% one in
    every segment (the pooled quantiles' ratio). Baselines only: the pooling does not depend on which
    models compete, and 240 statsforecast backtests would cost a minute of CPU."""
    config = TimeseriesSettings(statsforecast_candidates=[])
    inside: dict[int, list[float]] = {80: [], 95: []}
    stated: dict[int, list[float]] = {80: [], 95: []}
    for seed in range(30):
        drawn = pooled_segments(seed)
        backtests = {
            key: segment_backtest(Segment(key), series_of_values(values[:MONTHS]), config)
            for key, values in drawn.items()
        }
        pool = interval_pool(backtests.values())
        ratios = set()
        for key, values in drawn.items():
            point = non_negative(backtests[key].selection.final_fit.forecast)
            intervals = shipped_intervals(backtests[key], pool, point)
            future = values[MONTHS:]
            for level, (low, high) in intervals.bounds.items():
                inside[level].append(float(np.mean((future >= low) & (future <= high))))
                stated[level].append(intervals.coverage[level])
            half = {level: (high - point)[0] for level, (_, high) in intervals.bounds.items()}
            ratios.add(round(float(half[95] / half[80]), 9))
        assert len(ratios) == 1 and next(iter(ratios)) > 1
    for level in (80, 95):
        assert abs(100 * np.mean(inside[level]) - level) <= 5, (level, np.mean(inside[level]))
        assert abs(100 * np.mean(stated[level]) - level) <= 5, (level, np.mean(stated[level]))
