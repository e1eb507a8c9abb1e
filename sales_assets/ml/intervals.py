"""Prediction intervals for SALES from out-of-fold residuals of the training data, in two regimes.

SALES = QUANTITYORDERED x unit price. Where PRICEEACH is below the price cap a model that answers quantity x
price is exact, so the interval has zero width; on capped rows the unit price is estimated and the interval
is relative to the prediction (so to the predicted unit price): [pred x (1 + lower), pred x (1 + upper)].

Method: split-conformal with the "CV" calibration set of Barber, Candès, Ramdas & Tibshirani, "Predictive
inference with the jackknife+" (Ann. Statist. 2021, section 3): every training row's residual comes from the
fold model that did not see it, and one model fitted on all rows predicts. Scores are MAPIE's
GammaConformityScore, (y - pred) / pred (Cordier et al., PMLR 204, 2023), computed per regime (Mondrian
conformal prediction, Vovk et al. 2003), with the finite-sample quantile ceil((n + 1)(1 - a)) / n.

Why not MAPIE's CrossConformalRegressor: it refits the champion K more times although the CV protocol has
already produced out-of-fold predictions, its intervals exist only through its own Python `predict_interval`,
and it pools every row. The bundle needs two numbers per level and regime that any runtime (serving, the ONNX
graph's callers) applies to one prediction, and the exact regime must not dilute the capped one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# SALES is recorded in cents: a prediction within half a cent of it is the same amount.
CENT_TOLERANCE = 0.005
LEVELS = (0.8, 0.95)


@dataclass(frozen=True)
class IntervalCalibration:
    """Relative bounds per nominal level, the regime rule and the held-out coverage (bundle contract shape)."""

    method: str
    price_field: str
    price_cap: float | None
    levels: dict[float, dict[str, float]]
    calibration_rows: int
    coverage_holdout: dict[float, float] = field(default_factory=dict)
    coverage_holdout_all_rows: dict[float, float] = field(default_factory=dict)
    holdout_rows_with_band: int = 0

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "price_field": self.price_field,
            "price_cap": self.price_cap,
            "levels": {str(level): band for level, band in self.levels.items()},
            "calibration_rows": self.calibration_rows,
            "coverage_holdout": {str(level): share for level, share in self.coverage_holdout.items()},
            "coverage_holdout_scope": "held-out rows that get a band (capped rows when price_cap is set)",
            "coverage_holdout_all_rows": {
                str(level): share for level, share in self.coverage_holdout_all_rows.items()
            },
            "holdout_rows_with_band": self.holdout_rows_with_band,
        }


def conformal_bounds(scores: np.ndarray, level: float) -> tuple[float, float]:
    """Two-sided conformal quantiles of signed scores for coverage `level`: the floor((n + 1) a/2)-th and the
    ceil((n + 1)(1 - a/2))-th smallest of n scores (a = 1 - level). A rank outside 1..n means the sample is
    too small to bound that side: -inf or +inf."""
    ordered = np.sort(np.asarray(scores, dtype="float64"))
    n, tail = len(ordered), (1 - level) / 2
    # The nudge keeps float error in (1 - level) / 2 from moving a rank that is a whole number.
    low_rank = int(np.floor((n + 1) * tail + 1e-9))
    high_rank = int(np.ceil((n + 1) * (1 - tail) - 1e-9))
    lower = float(ordered[low_rank - 1]) if low_rank >= 1 else -np.inf
    upper = float(ordered[high_rank - 1]) if high_rank <= n else np.inf
    return lower, upper


def _relative_scores(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    from mapie.conformity_scores import GammaConformityScore

    return GammaConformityScore().get_signed_conformity_scores(target, predicted)


def exact_below_cap(target: np.ndarray, predicted: np.ndarray, below_cap: np.ndarray) -> bool:
    """Whether the model's out-of-fold answers on the below-cap rows are all the recorded SALES to the cent."""
    return bool(below_cap.any()) and bool(
        (np.abs(target[below_cap] - predicted[below_cap]) <= CENT_TOLERANCE + 1e-9).all()
    )


def calibrate_intervals(
    target: np.ndarray,
    out_of_fold: np.ndarray,
    price: np.ndarray,
    price_cap: float,
    price_field: str = "PRICEEACH",
    levels: tuple[float, ...] = LEVELS,
) -> IntervalCalibration:
    """Relative interval bounds per level from out-of-fold predictions of the training rows (1-D, same
    length). When the model is exact on every below-cap row those rows get zero width and only the capped
    rows calibrate; otherwise every row gets the band (price_cap None). Rows with a non-positive target or
    prediction have no relative residual and are left out. Raises ValueError when no row is left."""
    target = np.asarray(target, dtype="float64")
    out_of_fold = np.asarray(out_of_fold, dtype="float64")
    below_cap = np.asarray(price, dtype="float64") < price_cap
    exact = exact_below_cap(target, out_of_fold, below_cap)
    banded = ~below_cap if exact else np.ones_like(below_cap)
    usable = banded & (target > 0) & (out_of_fold > 0) & np.isfinite(out_of_fold)
    if not usable.any():
        raise ValueError(
            "prediction intervals: no training row with a positive target and prediction to calibrate on"
        )
    scores = _relative_scores(target[usable], out_of_fold[usable])
    bands = {}
    for level in levels:
        lower, upper = conformal_bounds(scores, level)
        if not np.isfinite(upper):
            raise ValueError(
                f"prediction intervals: {len(scores)} calibration rows cannot bound a {level:.0%} interval"
            )
        # A relative band cannot reach below zero SALES: the contract takes lower in (-1, 0].
        bands[level] = {"lower_relative": min(max(lower, -0.999999), 0.0), "upper_relative": max(upper, 0.0)}
    regime = f"zero width where {price_field} < {price_cap:g} (exact there); " if exact else ""
    return IntervalCalibration(
        method=(
            "split-conformal, CV calibration (Barber et al. 2021) on out-of-fold residuals of the training "
            f"rows, MAPIE GammaConformityScore (y - pred) / pred; {regime}band relative to the prediction"
        ),
        price_field=price_field,
        price_cap=price_cap if exact else None,
        levels=bands,
        calibration_rows=int(usable.sum()),
    )


def interval_bounds(
    calibration: IntervalCalibration, level: float, predicted: np.ndarray, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) SALES per row: the prediction itself on exact rows, the relative band elsewhere."""
    predicted = np.asarray(predicted, dtype="float64")
    band = calibration.levels[level]
    exact = (
        np.asarray(price, dtype="float64") < calibration.price_cap
        if calibration.price_cap is not None
        else np.zeros(len(predicted), dtype=bool)
    )
    lower = np.where(exact, predicted, predicted * (1 + band["lower_relative"]))
    upper = np.where(exact, predicted, predicted * (1 + band["upper_relative"]))
    return lower, upper


def with_holdout_coverage(
    calibration: IntervalCalibration, target: np.ndarray, predicted: np.ndarray, price: np.ndarray
) -> IntervalCalibration:
    """The calibration with the measured share of held-out rows inside each interval (to the cent): over the
    rows that get a band (what the nominal level promises) and over all rows."""
    target = np.asarray(target, dtype="float64")
    banded = (
        np.asarray(price, dtype="float64") >= calibration.price_cap
        if calibration.price_cap is not None
        else np.ones(len(target), dtype=bool)
    )
    on_band, on_all = {}, {}
    for level in calibration.levels:
        lower, upper = interval_bounds(calibration, level, predicted, price)
        inside = (target >= lower - CENT_TOLERANCE) & (target <= upper + CENT_TOLERANCE)
        on_band[level] = round(float(inside[banded].mean()), 4) if banded.any() else float("nan")
        on_all[level] = round(float(inside.mean()), 4)
    return IntervalCalibration(
        **{
            **calibration.__dict__,
            "coverage_holdout": on_band,
            "coverage_holdout_all_rows": on_all,
            "holdout_rows_with_band": int(banded.sum()),
        }
    )
