"""SHAP on a sample sized to its error: rows are explained in batches until every feature's mean |SHAP| is
precise enough, on a real fitted pipeline and the real explainer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sales_assets.ml.catalogue import MODEL_CATALOGUE, build_pipeline
from sales_assets.ml.explain import _precise_enough, shap_global_importance
from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.settings import Settings


@pytest.fixture
def fitted(frame):
    settings = Settings()
    spec = feature_spec(settings.ml)
    features, target = build_feature_matrix(frame, spec)
    pipeline = build_pipeline("capped_price_residual", spec, settings).fit(features, target)
    return pipeline, spec, features


def test_the_permutation_explainer_stops_once_the_means_are_precise(fitted):
    pipeline, spec, features = fitted
    assert not MODEL_CATALOGUE["capped_price_residual"].tree_based  # the costly, model-agnostic explainer
    ranked, explainer, rows = shap_global_importance(pipeline, spec, features, False, relative_error=0.2)
    assert explainer == "PermutationExplainer"
    assert 100 <= rows < len(features) and rows % 50 == 0
    assert ranked["rank"].to_list() == list(range(1, ranked.height + 1))


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
