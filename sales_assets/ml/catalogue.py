"""The model catalogue: each name in settings.ml.models maps to a scikit-learn Pipeline (a ColumnTransformer
over the feature spec, then a regressor). CappedPriceRegressor, the estimator built for this data, lives in
`sales_serving.contract.estimators` so that loading a pickled champion never imports training code.

Every estimator runs on one thread: training parallelises over CV folds and models instead (one level of
parallelism; nested thread pools oversubscribe the cores, and LightGBM's OpenMP workers spin-wait). The
thread count does not change any of these models' results for a given seed. Estimator libraries are imported
when a model is built, so the catalogue itself is cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sales_assets.ml.features import FeatureSpec
from sales_assets.settings import Settings

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class ModelSpec:
    """A catalogue entry: how to build the regressor, and whether it is a tree ensemble (for SHAP)."""

    label: str
    build: Callable[[FeatureSpec, Settings], object]
    tree_based: bool
    scale_numeric: bool = False


def _linear_regression(spec: FeatureSpec, settings: Settings) -> object:
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _random_forest(**params) -> Callable[[FeatureSpec, Settings], object]:
    def build(spec: FeatureSpec, settings: Settings) -> object:
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(random_state=settings.ml.random_state, n_jobs=1, **params)

    return build


def _gradient_boosting(**params) -> Callable[[FeatureSpec, Settings], object]:
    def build(spec: FeatureSpec, settings: Settings) -> object:
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(random_state=settings.ml.random_state, **params)

    return build


def _xgboost(spec: FeatureSpec, settings: Settings) -> object:
    from xgboost import XGBRegressor

    return XGBRegressor(
        n_estimators=400,
        learning_rate=0.05,
        max_depth=4,
        subsample=0.8,
        random_state=settings.ml.random_state,
        n_jobs=1,
    )


def _lightgbm(spec: FeatureSpec, settings: Settings) -> object:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=300, learning_rate=0.05, random_state=settings.ml.random_state, n_jobs=1, verbose=-1
    )


def _catboost(spec: FeatureSpec, settings: Settings) -> object:
    from catboost import CatBoostRegressor

    return CatBoostRegressor(
        iterations=500,
        depth=6,
        random_seed=settings.ml.random_state,
        verbose=0,
        thread_count=1,
        allow_writing_files=False,
    )


# random_forest_tuned's search inside each outer CV fold (measured on the real file, BENCHMARKS.md "Model
# quality"): successive halving with the number of trees as the resource, up to SEARCH_MAX_TREES, 2 inner
# folds, and no max_features=1.0 (every split scanning every one-hot column; never the choice on this data).
# About 19% of the CPU time of the row-halving search over 100-300 trees with 3 inner folds it replaces, CV
# RMSE within its fold sd.
SEARCH_MAX_TREES = 100
SEARCH_INNER_FOLDS = 2
SEARCH_SPACE: dict[str, list] = {
    "max_depth": [None, 8, 12, 16],
    "min_samples_leaf": [1, 2, 4, 8],
    "max_features": [0.7, 0.5, "sqrt"],
}


def _random_forest_search(spec: FeatureSpec, settings: Settings) -> object:
    """Successive halving (Jamieson & Talwalkar 2016; scikit-learn's HalvingRandomSearchCV) over forest
    size: settings.ml.tuning_iterations candidates with an eighth of SEARCH_MAX_TREES trees each, the better
    half with twice as many, and so on up to SEARCH_MAX_TREES; every fit sees all the rows it is given. It
    is a pipeline step, so under CV it is fit (search and refit) on each outer fold's training rows only."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (enables the import below)
    from sklearn.model_selection import HalvingRandomSearchCV

    return HalvingRandomSearchCV(
        RandomForestRegressor(random_state=settings.ml.random_state, n_jobs=1),
        param_distributions=SEARCH_SPACE,
        n_candidates=settings.ml.tuning_iterations,
        factor=2,
        resource="n_estimators",
        max_resources=SEARCH_MAX_TREES,
        min_resources="exhaust",
        cv=SEARCH_INNER_FOLDS,
        scoring="neg_root_mean_squared_error",
        random_state=settings.ml.random_state,
        n_jobs=1,
    )


def _capped_price(spec: FeatureSpec, settings: Settings) -> object:
    from sklearn.ensemble import GradientBoostingRegressor

    from sales_serving.contract.estimators import CappedPriceRegressor

    needed = ["QUANTITYORDERED", "PRICEEACH", "MSRP", "YEAR_ID", "MONTH_ID"]
    missing = [name for name in needed if name not in spec.numeric]
    if missing:
        raise ValueError(f"capped_price_residual needs {missing} in settings.ml.numeric_features")
    # The ColumnTransformer puts numerics first, in spec order, so their positions carry over.
    position = spec.numeric.index
    return CappedPriceRegressor(
        price_model=GradientBoostingRegressor(
            n_estimators=200,
            max_depth=3,
            min_samples_leaf=20,
            learning_rate=0.05,
            subsample=0.8,
            loss="huber",
            random_state=settings.ml.random_state,
        ),
        quantity_index=position("QUANTITYORDERED"),
        price_index=position("PRICEEACH"),
        price_indices=(position("MSRP"),),
        year_index=position("YEAR_ID"),
        month_index=position("MONTH_ID"),
        price_cap=settings.ingest.price_cap,
    )


MODEL_CATALOGUE: dict[str, ModelSpec] = {
    "linear_regression": ModelSpec("LinearRegression", _linear_regression, False, scale_numeric=True),
    "random_forest_200": ModelSpec("RandomForestRegressor", _random_forest(n_estimators=200), True),
    "random_forest_500_shallow": ModelSpec(
        "RandomForestRegressor",
        _random_forest(n_estimators=500, max_depth=8, min_samples_leaf=4),
        True,
    ),
    "gradient_boosting_200": ModelSpec(
        "GradientBoostingRegressor", _gradient_boosting(n_estimators=200), True
    ),
    "gradient_boosting_500": ModelSpec(
        "GradientBoostingRegressor",
        _gradient_boosting(n_estimators=500, learning_rate=0.05, max_depth=3, subsample=0.8),
        True,
    ),
    "xgboost": ModelSpec("XGBRegressor", _xgboost, True),
    "lightgbm": ModelSpec("LGBMRegressor", _lightgbm, True),
    "catboost": ModelSpec("CatBoostRegressor", _catboost, True),
    "random_forest_tuned": ModelSpec(
        "RandomForestRegressor (HalvingRandomSearchCV over n_estimators)", _random_forest_search, True
    ),
    "capped_price_residual": ModelSpec("CappedPriceRegressor", _capped_price, False),
}


def preprocessor(spec: FeatureSpec, scale_numeric: bool) -> ColumnTransformer:
    """Numerics first (scaled only for linear models; trees need no scaler), then dense one-hot."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("numeric", StandardScaler() if scale_numeric else "passthrough", list(spec.numeric)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(spec.categorical),
            ),
        ],
        verbose_feature_names_out=False,
    )


def build_pipeline(name: str, spec: FeatureSpec, settings: Settings) -> Pipeline:
    """The unfitted Pipeline of catalogue entry `name`. Raises KeyError naming the known models."""
    from sklearn.pipeline import Pipeline

    if name not in MODEL_CATALOGUE:
        raise KeyError(f"settings.ml.models names unknown model {name!r}; known: {sorted(MODEL_CATALOGUE)}")
    entry = MODEL_CATALOGUE[name]
    return Pipeline(
        [("preprocess", preprocessor(spec, entry.scale_numeric)), ("model", entry.build(spec, settings))]
    )


def finalize_pipeline(pipeline: Pipeline) -> Pipeline:
    """The fitted pipeline to ship: a search step is replaced by its refitted best estimator (same
    predictions), so the bundle holds a plain, exportable regressor."""
    from sklearn.pipeline import Pipeline

    model = pipeline.named_steps["model"]
    if hasattr(model, "best_estimator_"):
        return Pipeline(
            [("preprocess", pipeline.named_steps["preprocess"]), ("model", model.best_estimator_)]
        )
    return pipeline
