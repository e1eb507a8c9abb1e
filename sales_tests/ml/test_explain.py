"""SHAP on a sample sized to its error: rows are explained in batches until every feature's mean |SHAP| is
precise enough, on a real fitted pipeline and the real explainer; exact Shapley values over the columns a
model states it reads, checked against shap's own ExactExplainer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from sales_assets.ml.catalogue import MODEL_CATALOGUE, build_pipeline, preprocessor
from sales_assets.ml.explain import (
    EXACT_EXPLAINER,
    ExactShapley,
    _precise_enough,
    choose_explainer,
    columns_read,
    shap_global_importance,
)
from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.settings import Settings


@pytest.fixture
def fitted(frame):
    settings = Settings()
    spec = feature_spec(settings.ml)
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("capped_price_residual", spec, settings).fit(features, target)
    return pipeline, spec, features


def test_the_exact_explainer_stops_once_the_means_are_precise(fitted):
    pipeline, spec, features = fitted
    assert not MODEL_CATALOGUE["capped_price_residual"].tree_based  # a model-agnostic explainer
    ranked, explainer, rows = shap_global_importance(pipeline, spec, features, False, relative_error=0.2)
    assert explainer == EXACT_EXPLAINER
    assert 100 <= rows < len(features) and rows % 50 == 0
    assert ranked["rank"].to_list() == list(range(1, ranked.height + 1))
    # The columns the model does not read get exactly 0, so a feature it ignores ranks last with 0.
    ignored = {"PRODUCTLINE", "COUNTRY", "SEASON"} & set(ranked["feature"])
    assert ignored and set(ranked.filter(ranked["mean_abs_shap"] == 0)["feature"]) >= ignored


def test_a_model_that_states_no_columns_gets_the_permutation_explainer(frame):
    settings = Settings()
    spec = feature_spec(settings.ml)
    features, target = build_feature_matrix(frame, spec)
    pipeline = Pipeline([("preprocess", preprocessor(spec, True)), ("model", Ridge())]).fit(features, target)
    ranked, explainer, rows = shap_global_importance(pipeline, spec, features.head(100), False)
    assert explainer == "PermutationExplainer" and rows == 100 and ranked.height == len(spec.columns)


def test_exact_shapley_matches_shaps_exact_explainer_on_the_columns_the_model_reads(fitted):
    import shap

    pipeline, _, features = fitted
    model = pipeline.named_steps["model"]
    transformed = pipeline.named_steps["preprocess"].transform(features.head(200)).astype("float64")
    columns = columns_read(model, transformed.shape[1])
    assert columns is not None and 3 <= len(columns) < transformed.shape[1]
    name, explainer = choose_explainer(model, False, transformed, seed=7)
    assert name == EXACT_EXPLAINER
    rows = transformed[:20]
    ours = explainer.shap_values(rows)

    background = explainer.background
    template = rows[0]

    def on_read_columns(values: np.ndarray) -> np.ndarray:
        # The model on the read columns only: the others come from one fixed row (the model ignores them).
        full = np.repeat(template[np.newaxis], len(values), axis=0)
        full[:, columns] = values
        return model.predict(full)

    masker = shap.maskers.Independent(background[:, columns], max_samples=len(background))
    reference = shap.ExactExplainer(on_read_columns, masker)(rows[:, columns]).values
    np.testing.assert_allclose(ours[:, columns], reference, rtol=1e-9, atol=1e-6)
    unread = [column for column in range(rows.shape[1]) if column not in columns]
    assert not ours[:, unread].any()
    # Efficiency: each row's values add up to its prediction minus the mean over the background.
    np.testing.assert_allclose(
        ours.sum(axis=1), model.predict(rows) - model.predict(background).mean(), rtol=1e-9, atol=1e-6
    )


def test_exact_shapley_of_a_product_splits_the_interaction_evenly():
    # f = x0 * x1 with a zero background: v({}) = v({0}) = v({1}) = 0, v({0, 1}) = x0 * x1, so each gets half.
    explainer = ExactShapley(lambda z: z[:, 0] * z[:, 1], np.zeros((4, 3)), [0, 1])
    values = explainer.shap_values(np.array([[2.0, 3.0, 9.0]]))
    np.testing.assert_allclose(values, [[3.0, 3.0, 0.0]])


def test_a_precision_no_sample_reaches_explains_every_row(fitted):
    pipeline, spec, features = fitted
    _, _, rows = shap_global_importance(pipeline, spec, features.head(120), False, relative_error=1e-9)
    assert rows == 120


def test_precise_enough_compares_each_standard_error_with_the_largest_mean():
    rng = np.random.default_rng(0)
    absolute = pd.DataFrame({"big": 100 + rng.normal(0, 10, 400), "small": 1 + rng.normal(0, 0.1, 400)}).abs()
    # standard errors about 0.5 and 0.005 against a largest mean of 100
    assert _precise_enough(absolute, relative_error=0.01)
    assert not _precise_enough(absolute, relative_error=0.001)
