"""Leakage guard: flags any input that is a near-deterministic function of the target or of its bins,
measured out of fold with single-feature models so that chance fits on many categories do not count, and any
numeric input whose product or ratio with a partner field (QUANTITYORDERED, PRICEEACH) rebuilds the target:
`round(SALES / QUANTITYORDERED)` explains little alone but times QUANTITYORDERED gives SALES back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
from sklearn.metrics import cohen_kappa_score, r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

# SALES = QUANTITYORDERED x unit price: a column combined with one of these may rebuild it.
PAIR_PARTNERS = ("QUANTITYORDERED", "PRICEEACH")
# Leaves small enough to follow a step function of the target, large enough not to memorise rows.
MIN_LEAF_ROWS = 5


def _out_of_fold_r2(x: np.ndarray, y: np.ndarray, folds: KFold) -> float:
    predicted = cross_val_predict(
        DecisionTreeRegressor(min_samples_leaf=MIN_LEAF_ROWS), x.reshape(-1, 1), y, cv=folds
    )
    return float(r2_score(y, predicted))


def _category_from_target_kappa(codes: np.ndarray, y: np.ndarray, folds: KFold) -> float:
    """How well the target's bins recover the category, beyond chance (Cohen's kappa, out of fold).

    A label cut from the target (DEALSIZE) is recovered almost exactly; an honest category is not.
    """
    if len(np.unique(codes)) < 2:
        return 0.0
    model = DecisionTreeClassifier(
        max_leaf_nodes=max(len(np.unique(codes)), 2), min_samples_leaf=MIN_LEAF_ROWS
    )
    predicted = cross_val_predict(model, y.reshape(-1, 1), codes, cv=folds)
    return float(cohen_kappa_score(codes, predicted))


def _target_from_category_r2(codes: np.ndarray, y: np.ndarray, folds: KFold) -> float:
    """Out-of-fold R2 of predicting the target by its category mean (the category's eta squared)."""
    predicted = np.empty_like(y)
    for train, test in folds.split(y):
        means = pd.Series(y[train]).groupby(codes[train]).mean()
        predicted[test] = pd.Series(codes[test]).map(means).fillna(float(y[train].mean())).to_numpy()
    return float(r2_score(y, predicted))


def leakage_partners(columns: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The partner fields among the model's numeric inputs (SALES = QUANTITYORDERED x unit price)."""
    return tuple(name for name in PAIR_PARTNERS if name in columns)


def _pair_scores(
    name: str, x: np.ndarray, partners: dict[str, np.ndarray], y: np.ndarray, folds: KFold
) -> dict[str, float]:
    """Out-of-fold R2 of the target from x times each partner, x divided by it and it divided by x (never x
    with itself). A combination that is not finite on every row cannot rebuild the target and is skipped."""
    scores = {}
    for partner, values in partners.items():
        if partner == name:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            combined = {"x": x * values, "/": x / values, "over": values / x}
        for symbol, column in combined.items():
            if np.isfinite(column).all():
                label = f"{partner}_over_feature" if symbol == "over" else f"feature_{symbol}_{partner}"
                scores[f"target_from_{label}_r2"] = _out_of_fold_r2(column, y, folds)
    return scores


def leakage_report(
    features: pd.DataFrame,
    target: np.ndarray,
    threshold: float,
    random_state: int = 42,
    partners: tuple[str, ...] = (),
) -> pl.DataFrame:
    """One row per feature: its leakage score (the largest fit in either direction, of the feature alone
    or, for numerics, of its product or ratio with each of `partners`), the measure that produced it and
    whether it reaches `threshold`. Sorted by score, worst first."""
    from sklearn.model_selection import KFold

    folds = KFold(n_splits=5, shuffle=True, random_state=random_state)
    partner_values = {name: features[name].to_numpy(dtype="float64") for name in partners}
    y = np.asarray(target, dtype="float64")
    rows = []
    for column in features.columns:
        values = features[column]
        if pd.api.types.is_numeric_dtype(values):
            x = values.to_numpy(dtype="float64")
            scores = {
                "target_from_feature_r2": _out_of_fold_r2(x, y, folds),
                "feature_from_target_r2": _out_of_fold_r2(y, x, folds),
            } | _pair_scores(column, x, partner_values, y, folds)
            kind = "numeric"
        else:
            codes = pd.factorize(values.astype(str))[0]
            scores = {
                "target_from_feature_r2": _target_from_category_r2(codes, y, folds),
                "feature_from_target_kappa": _category_from_target_kappa(codes, y, folds),
            }
            kind = "categorical"
        measure = max(scores, key=lambda name: scores[name])
        rows.append(
            {
                "feature": column,
                "kind": kind,
                "score": round(scores[measure], 4),
                "measure": measure,
                "leaky": scores[measure] >= threshold,
            }
        )
    return pl.DataFrame(rows).sort("score", descending=True)


def leaky_features(report: pl.DataFrame) -> list[str]:
    return report.filter(pl.col("leaky"))["feature"].to_list()
