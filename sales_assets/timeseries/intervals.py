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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INTERVAL_LEVELS = (80, 95)
INTERVAL_METHOD = (
    "normalised conformal on out-of-sample backtest errors: scale per step ahead = RMS of the errors at "
    "that step (non-decreasing, held past the backtest horizon); each origin's |error| scored against the "
    "scale of the other origins; half-width = the ceil((n+1)L)-th smallest of the n scores times the "
    "scale; forecasts and lower bounds floored at 0"
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


def measured_coverage(calibration: IntervalCalibration, errors: np.ndarray) -> dict[int, float]:
    """Share of backtest `errors` (origins x horizon, actual minus forecast) inside the intervals, per
    level. Actual sales are never negative, so flooring a lower bound at 0 never changes whether one is in."""
    return {
        level: float(np.mean(inside))
        for level, inside in measured_coverage_points(calibration, errors).items()
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
