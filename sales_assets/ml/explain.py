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
    pipeline: Pipeline, spec: FeatureSpec, features: pd.DataFrame, tree_based: bool, seed: int = 42
) -> tuple[pl.DataFrame, str]:
    """Ranked mean |SHAP| per original feature on `features`, and the explainer's name. Raises if SHAP
    cannot explain the model: an unexplained champion is an error, not a silent skip."""
    transformed = np.asarray(pipeline.named_steps["preprocess"].transform(features), dtype="float64")
    model = pipeline.named_steps["model"]
    explainer_name, explainer = choose_explainer(model, tree_based, transformed, seed)
    if explainer_name == "PermutationExplainer":
        explanation = explainer(transformed, max_evals=2 * transformed.shape[1] + 1, silent=True)
        values = np.asarray(explanation.values)
    else:
        values = np.asarray(explainer.shap_values(transformed))
    if values.shape != transformed.shape:
        raise ValueError(f"SHAP values have shape {values.shape}, expected {transformed.shape}")
    owners = original_feature_of_columns(pipeline, spec)
    per_feature = pd.DataFrame(values, columns=range(values.shape[1])).T.groupby(np.array(owners)).sum().T
    importance = per_feature.abs().mean(axis=0)
    ranked = (
        pl.DataFrame(
            {"feature": importance.index.astype(str).tolist(), "mean_abs_shap": importance.to_numpy()}
        )
        .sort("mean_abs_shap", descending=True)
        .with_row_index("rank", offset=1)
    )
    return ranked, explainer_name
