"""Global SHAP importance of a fitted pipeline: the explainer that fits the model (TreeExplainer for tree
ensembles, LinearExplainer for linear models, PermutationExplainer otherwise), one-hot columns summed
back to the feature they came from, ranked by mean |SHAP|."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import shap
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from sales_assets.ml.features import FeatureSpec

# Background rows for the model-agnostic explainer: enough to average over, few enough to stay fast.
PERMUTATION_BACKGROUND_ROWS = 50


def original_feature_of_columns(pipeline: Pipeline, spec: FeatureSpec) -> list[str]:
    """For each column the preprocessor outputs, the feature it came from (one-hot columns share one)."""
    transformer = pipeline.named_steps["preprocess"]
    encoder = transformer.named_transformers_["categorical"]
    owners = list(spec.numeric)
    for feature, categories in zip(spec.categorical, encoder.categories_, strict=True):
        owners += [feature] * len(categories)
    return owners


def choose_explainer(
    model: BaseEstimator, tree_based: bool, background: np.ndarray, seed: int
) -> tuple[str, object]:
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
