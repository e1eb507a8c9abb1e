"""Forecast intervals from out-of-sample backtest errors, for any model (baselines included), and their
measured coverage.

Method: normalised conformal prediction (Lei et al. 2018, "Distribution-free predictive inference for
regression", JASA 113(523), section 5.2) on backtest errors, with the scale fitted out of fold. The scale
of step h is the RMS of the backtest errors h months ahead, never shrinking with h and held at the last
tested step beyond the backtest horizon. Each origin's errors are scored as |error| / scale, the scale
estimated from the other origins (jackknife, as in Barber et al. 2021, "Predictive inference with the
jackknife+", Ann. Statist. 49(1)): a scale fitted on the very errors it divides shrinks the large scores and
the intervals undercover. The interval at level L is forecast +- q_L * scale (scale from all origins), q_L
the ceil((n + 1) L)-th smallest of the n scores. When n is too small for that rank (n < L / (1 - L)), q_L is
the largest score and the report says so.

A segment's own backtest holds a few dozen errors over the same few months, too few for a 95% rank and
for a stable ratio of the 95% to the 80% half-width. The segment reports therefore pool: each segment's
shipped-model errors (at `Origins.calibrated`: the evaluation origins and the nearest selection
origins of each choice) are divided by the segment's level (the mean of the year before the first of
them, known before every origin), so segments of any size compare, and the scaled errors
of every segment are calibrated together (`pooled_calibration`); a segment's interval is the pooled one
times its own level. One level per segment, not one per origin: dividing each error by the level just
before its origin shrank the later errors of a growing series whose noise does not grow, and its 80%
intervals covered 87% (the issue 13 SARIMA simulation).
Its coverage is measured at each evaluation origin with a calibration on the pooled errors whose months
all come before that origin. The hierarchy's nodes are calibrated on their own reconciled errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sales_assets.timeseries.series import SEASONAL_PERIOD

INTERVAL_LEVELS = (80, 95)
HIERARCHY_INTERVAL_METHOD = (
    "normalised conformal on out-of-sample backtest errors (Lei et al. 2018, JASA 113(523)): scale per step "
    "ahead = RMS of the errors at that step (non-decreasing, held past the backtest horizon); each origin's "
    "|error| scored against the scale of the other origins (jackknife, Barber et al. 2021); half-width = "
    "the ceil((n+1)L)-th smallest of the n scores times the scale; lower bounds floored at 0"
)
INTERVAL_METHOD = (
    "normalised conformal (Lei et al. 2018, JASA 113(523), section 5.2) on the shipped models' backtest "
    "errors of every segment, pooled: each error divided by its segment's level (mean of the 12 months "
    "before its first calibration origin); scale per step ahead = RMS of the pooled scaled errors at that step "
    "(non-decreasing); each row scored against the scale of the other rows (jackknife, Barber et al. "
    "2021); half-width = the ceil((n+1)L)-th smallest of the n scores x scale x this segment's level; "
    "lower bounds floored at 0"
)


@dataclass(frozen=True)
class IntervalCalibration:
    """What an interval needs: the error scale per step ahead and the score quantile per level."""

    scale: np.ndarray  # per step ahead, length = steps
    quantiles: dict[int, float]
    points: int
    capped_levels: tuple[int, ...]  # levels whose rank exceeded n, so the largest score was used


def error_scale(errors: np.ndarray, steps: int) -> np.ndarray:
    """RMS of `errors` (origins x horizon) per step ahead, non-decreasing, held past the horizon."""
    per_step = np.maximum.accumulate(np.sqrt(np.mean(np.asarray(errors, dtype=float) ** 2, axis=0)))
    return np.array([per_step[min(step, len(per_step) - 1)] for step in range(steps)])


def conformal_quantile(scores: np.ndarray, level: float) -> tuple[float, bool]:
    """The ceil((n + 1) level)-th smallest score, and whether the rank exceeded n (largest score used)."""
    ordered = np.sort(np.asarray(scores, dtype=float).ravel())
    if ordered.size == 0:
        raise ValueError("conformal interval: no calibration errors")
    rank = math.ceil((ordered.size + 1) * level)
    return float(ordered[min(rank, ordered.size) - 1]), rank > ordered.size


def out_of_fold_scores(errors: np.ndarray) -> np.ndarray:
    """|error| / scale per origin (row), the scale estimated from the other origins (all of them when there
    is only one). A zero scale with a zero error scores 0; with a non-zero error, infinity."""
    errors = np.asarray(errors, dtype=float)
    scores = np.empty_like(errors)
    for row in range(errors.shape[0]):
        others = np.delete(errors, row, axis=0) if errors.shape[0] > 1 else errors
        scale = error_scale(others, errors.shape[1])
        magnitude = np.abs(errors[row])
        scores[row] = np.divide(magnitude, scale, out=np.where(magnitude > 0, np.inf, 0.0), where=scale > 0)
    return scores


def calibrate(
    errors: np.ndarray, steps: int, levels: tuple[int, ...] = INTERVAL_LEVELS
) -> IntervalCalibration:
    """Calibrate intervals on backtest `errors` (origins x horizon, actual minus forecast) for `steps`
    months ahead at `levels` (percent)."""
    errors = np.asarray(errors, dtype=float)
    if errors.ndim != 2 or errors.size == 0:
        raise ValueError(
            f"conformal interval: errors must be a non-empty (origins, horizon) array, got {errors.shape}"
        )
    scale = error_scale(errors, max(steps, errors.shape[1]))
    scores = out_of_fold_scores(errors)
    quantiles, capped = {}, []
    for level in levels:
        quantiles[level], was_capped = conformal_quantile(scores, level / 100)
        if was_capped:
            capped.append(level)
    return IntervalCalibration(
        scale=scale[:steps], quantiles=quantiles, points=int(errors.size), capped_levels=tuple(capped)
    )


def interval_bounds(
    forecast: np.ndarray, calibration: IntervalCalibration
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Level -> (lower, upper) around `forecast`, whose last axis is the step ahead (one forecast, or one
    row per backtest origin); lower bounds floored at 0."""
    forecast = np.asarray(forecast, dtype=float)
    steps = forecast.shape[-1]
    if calibration.scale.size < steps:
        raise ValueError(f"interval: calibrated for {calibration.scale.size} steps, asked for {steps}")
    scale = calibration.scale[:steps]
    return {
        level: (np.maximum(forecast - q * scale, 0.0), forecast + q * scale)
        for level, q in calibration.quantiles.items()
    }


@dataclass(frozen=True)
class BacktestIntervals:
    """Intervals around a shipped forecast and the coverage measured for the procedure that made them."""

    bounds: dict[int, tuple[np.ndarray, np.ndarray]]
    calibration: IntervalCalibration  # of the shipped intervals
    coverage: dict[int, float]  # at the evaluation origins, each calibrated on errors before it (or empty)
    coverage_points: int


def rolling_coverage(
    calibration_errors: list[np.ndarray],
    evaluation_errors: np.ndarray,
    levels: tuple[int, ...] = INTERVAL_LEVELS,
) -> tuple[dict[int, float], int]:
    """Coverage at the evaluation origins, pooled over them, and the points it rests on: the intervals of
    origin k are calibrated on `calibration_errors[k]` (origins x horizon, all of whose months come
    before origin k) and measured on row k of `evaluation_errors` (origins x horizon). An origin without
    calibration errors is not measured; with none measured the coverage is empty."""
    hits: dict[int, list[np.ndarray]] = {level: [] for level in levels}
    for errors, row in zip(calibration_errors, np.atleast_2d(evaluation_errors), strict=True):
        if np.size(errors) == 0:
            continue
        calibration = calibrate(errors, row.size, levels)
        for level, inside in measured_coverage_points(calibration, row[np.newaxis, :]).items():
            hits[level].append(inside)
    if not hits[levels[0]]:
        return {}, 0
    return (
        {level: float(np.mean(np.concatenate(rows))) for level, rows in hits.items()},
        int(sum(rows.size for rows in hits[levels[0]])),
    )


def measured_coverage_points(calibration: IntervalCalibration, errors: np.ndarray) -> dict[int, np.ndarray]:
    """Per level, whether each of `errors` (origins x horizon) lies inside the interval (flattened)."""
    magnitude = np.abs(np.asarray(errors, dtype=float))
    scale = calibration.scale[: magnitude.shape[-1]]
    return {level: (magnitude <= q * scale).ravel() for level, q in calibration.quantiles.items()}


def backtest_intervals(
    calibration_errors: list[np.ndarray],
    evaluation_errors: np.ndarray,
    shipped_errors: np.ndarray,
    forecast: np.ndarray,
) -> BacktestIntervals:
    """Intervals for `forecast` (one value per step ahead) from out-of-sample errors.

    The coverage is honest: at each evaluation origin the intervals are calibrated only on errors whose
    months come before it (see `rolling_coverage`). The shipped intervals are calibrated on
    `shipped_errors` (origins x horizon), the shipped model's errors at every backtested origin.
    """
    calibration = calibrate(shipped_errors, np.size(forecast))
    coverage, points = rolling_coverage(calibration_errors, evaluation_errors)
    return BacktestIntervals(
        bounds=interval_bounds(forecast, calibration),
        calibration=calibration,
        coverage=coverage,
        coverage_points=points,
    )


def level_before(values: np.ndarray, origin: int, period: int = SEASONAL_PERIOD) -> float:
    """Mean of the `period` months before `origin` (all of them when fewer): the level a forecast from
    `origin` is scaled by."""
    window = np.asarray(values[max(0, origin - period) : origin], dtype=float)
    return float(np.mean(window)) if window.size else 0.0


@dataclass(frozen=True)
class ScaledErrors:
    """One segment's shipped-model backtest errors, each row divided by a level (the segment's). Rows
    whose level is 0 (a year without sales) cannot be scaled and are left out."""

    segment: str
    rows: np.ndarray  # (origins, horizon)
    last_months: tuple[str, ...]  # YYYY-MM, the last month each row covers


def scaled_errors(
    segment: str, errors: np.ndarray, levels: Sequence[float], last_months: Sequence[str]
) -> ScaledErrors:
    """`errors` (origins x horizon, actual minus forecast) over `levels` (one per origin)."""
    keep = [i for i, level in enumerate(levels) if level > 0]
    return ScaledErrors(
        segment=segment,
        rows=np.asarray(errors, dtype=float)[keep] / np.asarray(levels, dtype=float)[keep, np.newaxis],
        last_months=tuple(last_months[i] for i in keep),
    )


def pooled_calibration(
    pool: Sequence[ScaledErrors], steps: int, before: str | None = None
) -> IntervalCalibration | None:
    """Calibrate on every segment's scaled rows (only those whose months all come before the month
    `before`, YYYY-MM, when given); None when no row qualifies. The scale is per unit of level: multiply
    it by a segment's level (`at_level`)."""
    rows = [
        row
        for errors in pool
        for row, last in zip(errors.rows, errors.last_months, strict=True)
        if before is None or last < before
    ]
    return calibrate(np.array(rows), steps) if rows else None


def at_level(calibration: IntervalCalibration, level: float) -> IntervalCalibration:
    """A pooled calibration for a segment at `level` (its currency)."""
    return replace(calibration, scale=calibration.scale * level)
