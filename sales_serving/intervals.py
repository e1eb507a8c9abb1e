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
        if len(predictions) == 1:
            return self._bounds_one(float(predictions[0]), None if price is None else float(price[0]))
        # All levels in one pass: (rows, levels) arrays, a handful of numpy calls whatever the row count.
        low = np.multiply.outer(predictions, self.lower_factors)
        high = np.multiply.outer(predictions, self.upper_factors)
        lower, upper = np.minimum(low, high), np.maximum(low, high)
        if self.price_cap is not None:
            exact = price < self.price_cap
            if exact.any():
                lower[exact] = upper[exact] = predictions[exact, None]
        return {level: (lower[:, index], upper[:, index]) for index, level in enumerate(self.levels)}

    def _bounds_one(
        self, prediction: float, price: float | None
    ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """`bounds` of one row on Python floats (the /predict case; numpy calls on one-element arrays cost
        more than the arithmetic). Same products and order as the arrays, so the same values to the bit."""
        exact = self.price_cap is not None and price < self.price_cap
        bands: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        for level, lower_factor, upper_factor in zip(
            self.levels, self.lower_factors.tolist(), self.upper_factors.tolist(), strict=True
        ):
            if exact:
                lower = upper = prediction
            else:
                low, high = prediction * lower_factor, prediction * upper_factor
                lower, upper = (low, high) if low <= high else (high, low)
            bands[level] = (np.array([lower]), np.array([upper]))
        return bands
