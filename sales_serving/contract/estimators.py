"""Estimators of this project that a model bundle's `pipeline.joblib` may hold.

They live here, in the serving package, so that unpickling a bundle needs scikit-learn and this module
only, never the training code. Training (`sales_assets.ml`) imports them from here.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted


class CappedPriceRegressor(RegressorMixin, BaseEstimator):
    """SALES = QUANTITYORDERED x unit price. Below the price cap the unit price is PRICEEACH, exactly; on
    capped rows the true unit price is unknown (above the cap), so `price_model` estimates it and the
    prediction is quantity x that estimate.

    Works on the ColumnTransformer's output; the `*_index` parameters locate columns in it. The price model
    sees the `price_indices` columns plus a month counter (year x 12 + month): on this data a capped row's
    unit price depends on the product's MSRP and on when it was sold, and extra inputs only add noise.
    """

    def __init__(
        self,
        price_model: BaseEstimator | None = None,
        quantity_index: int = 0,
        price_index: int = 1,
        price_indices: tuple[int, ...] = (),
        year_index: int | None = None,
        month_index: int | None = None,
        price_cap: float = 100.0,
    ):
        self.price_model = price_model
        self.quantity_index = quantity_index
        self.price_index = price_index
        self.price_indices = price_indices
        self.year_index = year_index
        self.month_index = month_index
        self.price_cap = price_cap

    def price_inputs(self, X: np.ndarray) -> np.ndarray:
        """The price model's input: the chosen columns (all when none are chosen), then the month counter."""
        columns = X[:, list(self.price_indices)] if self.price_indices else X
        if self.year_index is None or self.month_index is None:
            return columns
        period = X[:, [self.year_index]] * 12 + X[:, [self.month_index]]
        return np.hstack([columns, period])

    def fit(self, X, y):
        X = np.asarray(X, dtype="float64")
        y = np.asarray(y, dtype="float64")
        quantity = X[:, self.quantity_index]
        capped = X[:, self.price_index] >= self.price_cap
        if not capped.any():
            raise ValueError(f"CappedPriceRegressor: no training row has a price at the cap {self.price_cap}")
        if (quantity[capped] <= 0).any():
            raise ValueError("CappedPriceRegressor: QUANTITYORDERED must be > 0 on capped rows")
        model = self.price_model if self.price_model is not None else GradientBoostingRegressor()
        self.price_model_ = clone(model).fit(self.price_inputs(X[capped]), y[capped] / quantity[capped])
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        check_is_fitted(self, "price_model_")
        X = np.asarray(X, dtype="float64")
        quantity = X[:, self.quantity_index]
        price = X[:, self.price_index]
        capped = price >= self.price_cap
        unit_price = price.copy()
        if capped.any():
            unit_price[capped] = self.price_model_.predict(self.price_inputs(X[capped]))
        return quantity * unit_price
