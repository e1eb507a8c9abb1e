"""Prediction intervals for SALES from the calibration a bundle carries (`BundleMetadata.intervals`).

Training calibrates them (split-conformal on out-of-fold residuals, Vovk et al., "Algorithmic Learning in
a Random World", 2005; MAPIE implements it); serving only applies the stored bands. Two regimes: a row whose
price is below the price cap is exact (SALES is quantity x price, zero width); any other row gets
[prediction x (1 + lower_relative), prediction x (1 + upper_relative)], which on a capped row is relative to
the predicted unit price, since the prediction there is quantity x that price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sales_serving.contract.bundle import PredictionIntervals

NO_INTERVALS_WARNING = (
    "the served bundle carries no interval calibration, so answers come without intervals; a model trained "
    "with interval calibration (metadata.json `intervals`) gives 80% and 95% intervals"
)


@dataclass(frozen=True)
class IntervalBands:
    """A bundle's interval calibration as arrays, built once when the bundle is loaded."""

    levels: tuple[float, ...]
    lower_factors: np.ndarray  # 1 + lower_relative, per level
    upper_factors: np.ndarray  # 1 + upper_relative, per level
    price_field: str
    price_cap: float | None

    @classmethod
    def from_spec(cls, spec: PredictionIntervals) -> IntervalBands:
        levels = tuple(sorted(spec.levels))
        return cls(
            levels=levels,
            lower_factors=np.array([1.0 + spec.levels[level].lower_relative for level in levels]),
            upper_factors=np.array([1.0 + spec.levels[level].upper_relative for level in levels]),
            price_field=spec.price_field,
            price_cap=spec.price_cap,
        )

    def bounds(
        self, predictions: np.ndarray, price: np.ndarray | None
    ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """level -> (lower, upper), each shaped like `predictions` (SALES, USD), levels ascending.

        `price` is the `price_field` column (needed when `price_cap` is set; rows below the cap get zero
        width). Bounds are ordered lower <= upper even for a negative prediction."""
        if self.price_cap is not None and price is None:
            raise ValueError(
                f"intervals need the {self.price_field} column to tell exact rows from capped ones"
            )
        # All levels in one pass: (rows, levels) arrays, a handful of numpy calls whatever the row count.
        low = np.multiply.outer(predictions, self.lower_factors)
        high = np.multiply.outer(predictions, self.upper_factors)
        lower, upper = np.minimum(low, high), np.maximum(low, high)
        if self.price_cap is not None:
            exact = price < self.price_cap
            if exact.any():
                lower[exact] = upper[exact] = predictions[exact, None]
        return {level: (lower[:, index], upper[:, index]) for index, level in enumerate(self.levels)}
