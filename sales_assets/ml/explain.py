"""Global SHAP importance of a fitted pipeline: the explainer that fits the model (TreeExplainer for tree
ensembles, LinearExplainer for linear models, exact Shapley values over the columns a model is known to
read, PermutationExplainer otherwise), one-hot columns summed back to the feature they came from, ranked by
mean |SHAP|."""

from __future__ import annotations

from math import factorial

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from sales_assets.ml.features import FeatureSpec

# Background rows for the model-agnostic explainers: enough to average over, few enough to stay fast.
PERMUTATION_BACKGROUND_ROWS = 50
# Exact Shapley values cost 2^k evaluations per row and background row for a model that reads k columns;
# above this many columns the sampled PermutationExplainer is used instead.
EXACT_MAX_COLUMNS = 8
EXACT_EXPLAINER = "ExactExplainer"


def original_feature_of_columns(pipeline: Pipeline, spec: FeatureSpec) -> list[str]:
    """For each column the preprocessor outputs, the feature it came from (one-hot columns share one)."""
    transformer = pipeline.named_steps["preprocess"]
    encoder = transformer.named_transformers_["categorical"]
    owners = list(spec.numeric)
    for feature, categories in zip(spec.categorical, encoder.categories_, strict=True):
        owners += [feature] * len(categories)
    return owners


def columns_read(model: BaseEstimator, n_columns: int) -> list[int] | None:
    """Positions of the input columns (of `n_columns`) that `model`'s predictions depend on, when the model
    states them (CappedPriceRegressor: quantity, price, its price model's columns and the month counter's);
    None when it does not."""
    from sales_serving.contract.estimators import CappedPriceRegressor

    if not isinstance(model, CappedPriceRegressor):
        return None
    price_columns = list(model.price_indices) if model.price_indices else list(range(n_columns))
    period = (
        [model.year_index, model.month_index]
        if model.year_index is not None and model.month_index is not None
        else []
    )
    return sorted({model.quantity_index, model.price_index, *price_columns, *period})


class ExactShapley:
    """Exact interventional Shapley values (the values shap's ExactExplainer computes with an Independent
    masker) of `predict` over the input columns `columns`: for each coalition S of them, v(S) is the mean
    prediction over the background rows with the columns in S set to the explained row's values; a
    column's value is the Shapley-weighted sum of v(S + column) - v(S) over the coalitions without it.
    The other columns get exactly 0, the value any Shapley method gives a column the model does not read.
    Shapley, "A value for n-person games" (1953); interventional form: Janzing et al., AISTATS 2020."""

    def __init__(self, predict, background: np.ndarray, columns: list[int]) -> None:
        self.predict = predict
        self.background = np.asarray(background, dtype="float64")
        self.columns = list(columns)

    def shap_values(self, rows: np.ndarray) -> np.ndarray:
        """SHAP values of `rows` (n x d array, d the background's columns): an n x d array whose rows sum to
        each row's prediction minus the mean prediction over the background."""
        rows = np.asarray(rows, dtype="float64")
        n, m, k = len(rows), len(self.background), len(self.columns)
        value = np.empty((2**k, n))  # value[S]: mean prediction with the columns of bitmask S from the row
        for coalition in range(2**k):
            masked = np.repeat(self.background[np.newaxis], n, axis=0)  # n x m x d
            for bit, column in enumerate(self.columns):
                if coalition >> bit & 1:
                    masked[:, :, column] = rows[:, [column]]
            value[coalition] = np.asarray(self.predict(masked.reshape(n * m, -1))).reshape(n, m).mean(axis=1)
        weights = [factorial(size) * factorial(k - size - 1) / factorial(k) for size in range(k)]
        result = np.zeros_like(rows)
        for bit, column in enumerate(self.columns):
            for coalition in range(2**k):
                if not coalition >> bit & 1:
                    gain = value[coalition | 1 << bit] - value[coalition]
                    result[:, column] += weights[coalition.bit_count()] * gain
        return result


def choose_explainer(
    model: BaseEstimator, tree_based: bool, background: np.ndarray, seed: int
) -> tuple[str, object]:
    """(name, explainer) for `model` on transformed rows like `background`: TreeExplainer for tree
    ensembles, LinearExplainer for LinearRegression, exact Shapley values when the model states the few
    columns it reads (`columns_read`, at most EXACT_MAX_COLUMNS), else PermutationExplainer. The model-
    agnostic ones average over PERMUTATION_BACKGROUND_ROWS background rows drawn with `seed`. The exact
    one needs no SHAP import (shap's model-agnostic explainers JIT-compile their masking code with numba in
    every new process, seconds of CPU before the first row)."""
    columns = None if tree_based else columns_read(model, background.shape[1])
    if columns is not None and len(columns) <= EXACT_MAX_COLUMNS:
        rows = min(PERMUTATION_BACKGROUND_ROWS, len(background))
        chosen = np.random.default_rng(seed).choice(len(background), size=rows, replace=False)
        return EXACT_EXPLAINER, ExactShapley(model.predict, background[np.sort(chosen)], columns)
    import shap

    if tree_based:
        return "TreeExplainer", shap.TreeExplainer(model)
    if isinstance(model, LinearRegression):
        return "LinearExplainer", shap.LinearExplainer(model, background)
    masker = shap.maskers.Independent(background, max_samples=PERMUTATION_BACKGROUND_ROWS)
    return "PermutationExplainer", shap.PermutationExplainer(model.predict, masker, seed=seed)


def shap_global_importance(
    pipeline: Pipeline,
    spec: FeatureSpec,
    features: pd.DataFrame,
    tree_based: bool,
    seed: int = 42,
    relative_error: float = 0.05,
    batch_rows: int = 50,
) -> tuple[pl.DataFrame, str, int]:
    """Ranked mean |SHAP| per original feature, the explainer's name, and how many rows of `features`
    were explained.

    Rows are explained in batches of `batch_rows`, in order, until the standard error of every feature's
    mean |SHAP| is at most `relative_error` times the largest mean (at least two batches; at most every
    row): the sample is as large as the figures' precision needs, which for a model-agnostic explainer is
    far fewer rows than it costs to explain them all. SHAP: Lundberg and Lee, "A Unified Approach to
    Interpreting Model Predictions", NeurIPS 2017 (https://github.com/shap/shap).

    Raises:
        ValueError: SHAP returned values of another shape than the rows (an unexplained champion is an
            error, not a silent skip).
    """
    transformed = np.asarray(pipeline.named_steps["preprocess"].transform(features), dtype="float64")
    model = pipeline.named_steps["model"]
    explainer_name, explainer = choose_explainer(model, tree_based, transformed, seed)
    owners = np.array(original_feature_of_columns(pipeline, spec))
    batches: list[pd.DataFrame] = []
    for start in range(0, len(transformed), batch_rows):
        batch = transformed[start : start + batch_rows]
        if explainer_name == "PermutationExplainer":
            values = np.asarray(explainer(batch, max_evals=2 * batch.shape[1] + 1, silent=True).values)
        else:
            values = np.asarray(explainer.shap_values(batch))
        if values.shape != batch.shape:
            raise ValueError(f"SHAP values have shape {values.shape}, expected {batch.shape}")
        batches.append(pd.DataFrame(values, columns=range(values.shape[1])).T.groupby(owners).sum().T.abs())
        explained = pd.concat(batches, ignore_index=True)
        if len(batches) >= 2 and _precise_enough(explained, relative_error):
            break
    importance = explained.mean(axis=0)
    ranked = (
        pl.DataFrame(
            {"feature": importance.index.astype(str).tolist(), "mean_abs_shap": importance.to_numpy()}
        )
        .sort("mean_abs_shap", descending=True)
        .with_row_index("rank", offset=1)
    )
    return ranked, explainer_name, len(explained)


def _precise_enough(absolute: pd.DataFrame, relative_error: float) -> bool:
    """Whether every column's mean has a standard error at most `relative_error` x the largest mean."""
    means = absolute.mean(axis=0)
    standard_errors = absolute.std(axis=0, ddof=1) / np.sqrt(len(absolute))
    return bool((standard_errors <= relative_error * means.max()).all())
