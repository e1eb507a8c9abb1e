"""Prediction intervals for SALES from the calibration a bundle carries (`BundleMetadata.intervals`).

Training calibrates them (split-conformal on out-of-fold residuals, Vovk et al., "Algorithmic Learning in
a Random World", 2005; MAPIE implements it); serving only applies the stored bands. Two regimes: a row whose
price is below the price cap is exact (SALES is quantity x price, zero width); any other row gets
[prediction x (1 + lower_relative), prediction x (1 + upper_relative)], which on a capped row is relative to
the predicted unit price, since the prediction there is quantity x that price.
"""

from __future__ import annotations

import numpy as np

from sales_serving.contract.bundle import PredictionIntervals

NO_INTERVALS_WARNING = (
    "the served bundle carries no interval calibration, so answers come without intervals; a model trained "
    "with interval calibration (metadata.json `intervals`) gives 80% and 95% intervals"
)


def interval_bounds(
    spec: PredictionIntervals, predictions: np.ndarray, price: np.ndarray | None
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """level -> (lower, upper), each shaped like `predictions` (SALES, USD), levels in ascending order.

    `price` is the `spec.price_field` column (needed when `spec.price_cap` is set; rows below the cap get
    zero width). Bounds are ordered lower <= upper even for a negative prediction."""
    if spec.price_cap is not None and price is None:
        raise ValueError(f"intervals need the {spec.price_field} column to tell exact rows from capped ones")
    levels = sorted(spec.levels)
    # All levels in one pass: (rows, levels) arrays, a handful of numpy calls whatever the row count.
    low = np.multiply.outer(predictions, [1.0 + spec.levels[level].lower_relative for level in levels])
    high = np.multiply.outer(predictions, [1.0 + spec.levels[level].upper_relative for level in levels])
    lower, upper = np.minimum(low, high), np.maximum(low, high)
    if spec.price_cap is not None:
        exact = price < spec.price_cap
        if exact.any():
            lower[exact] = upper[exact] = predictions[exact, None]
    return {level: (lower[:, index], upper[:, index]) for index, level in enumerate(levels)}
