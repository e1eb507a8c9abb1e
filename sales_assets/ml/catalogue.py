"""The model catalogue: each name in settings.ml.models maps to a scikit-learn Pipeline (a ColumnTransformer
over the feature spec, then a regressor). CappedPriceRegressor, the estimator built for this data, lives in
`sales_serving.contract.estimators` so that loading a pickled champion never imports training code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from catboost import CatBoostRegressor
from lightgbm import LGBMRegressor
from sales_serving.contract.estimators import CappedPriceRegressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBRegressor

from sales_assets.ml.features import FeatureSpec
from sales_assets.settings import Settings


@dataclass(frozen=True)
class ModelSpec:
    """A catalogue entry: how to build the regressor, and whether it is a tree ensemble (for SHAP)."""

    label: str
    build: Callable[[FeatureSpec, Settings], object]
    tree_based: bool
    scale_numeric: bool = False


def _random_forest_search(spec: FeatureSpec, settings: Settings) -> RandomizedSearchCV:
    return RandomizedSearchCV(
        RandomForestRegressor(random_state=settings.ml.random_state, n_jobs=-1),
        param_distributions={
            "n_estimators": [100, 200, 300],
            "max_depth": [None, 8, 12, 16],
            "min_samples_leaf": [1, 2, 4, 8],
            "max_features": [1.0, 0.7, 0.5, "sqrt"],
        },
        n_iter=settings.ml.tuning_iterations,
        cv=3,
        scoring="neg_root_mean_squared_error",
        random_state=settings.ml.random_state,
    )


def _capped_price(spec: FeatureSpec, settings: Settings) -> CappedPriceRegressor:
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
    "linear_regression": ModelSpec(
        "LinearRegression", lambda spec, settings: LinearRegression(), False, scale_numeric=True
    ),
    "random_forest_200": ModelSpec(
        "RandomForestRegressor",
        lambda spec, settings: RandomForestRegressor(
            n_estimators=200, random_state=settings.ml.random_state, n_jobs=-1
        ),
        True,
    ),
    "random_forest_500_shallow": ModelSpec(
        "RandomForestRegressor",
        lambda spec, settings: RandomForestRegressor(
            n_estimators=500,
            max_depth=8,
            min_samples_leaf=4,
            random_state=settings.ml.random_state,
            n_jobs=-1,
        ),
        True,
    ),
    "gradient_boosting_200": ModelSpec(
        "GradientBoostingRegressor",
        lambda spec, settings: GradientBoostingRegressor(
            n_estimators=200, random_state=settings.ml.random_state
        ),
        True,
    ),
    "gradient_boosting_500": ModelSpec(
        "GradientBoostingRegressor",
        lambda spec, settings: GradientBoostingRegressor(
            n_estimators=500,
            learning_rate=0.05,
            max_depth=3,
            subsample=0.8,
            random_state=settings.ml.random_state,
        ),
        True,
    ),
    "xgboost": ModelSpec(
        "XGBRegressor",
        lambda spec, settings: XGBRegressor(
            n_estimators=400,
            learning_rate=0.05,
            max_depth=4,
            subsample=0.8,
            random_state=settings.ml.random_state,
            n_jobs=2,
        ),
        True,
    ),
    # One thread: LightGBM's OpenMP workers spin-wait, and on a busy machine a small fit then takes minutes.
    "lightgbm": ModelSpec(
        "LGBMRegressor",
        lambda spec, settings: LGBMRegressor(
            n_estimators=300, learning_rate=0.05, random_state=settings.ml.random_state, n_jobs=1, verbose=-1
        ),
        True,
    ),
    "catboost": ModelSpec(
        "CatBoostRegressor",
        lambda spec, settings: CatBoostRegressor(
            iterations=500,
            depth=6,
            random_seed=settings.ml.random_state,
            verbose=0,
            thread_count=2,
            allow_writing_files=False,
        ),
        True,
    ),
    "random_forest_tuned": ModelSpec(
        "RandomForestRegressor (RandomizedSearchCV)", _random_forest_search, True
    ),
    "capped_price_residual": ModelSpec("CappedPriceRegressor", _capped_price, False),
}


def preprocessor(spec: FeatureSpec, scale_numeric: bool) -> ColumnTransformer:
    """Numerics first (scaled only for linear models; trees need no scaler), then dense one-hot."""
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
    if name not in MODEL_CATALOGUE:
        raise KeyError(f"settings.ml.models names unknown model {name!r}; known: {sorted(MODEL_CATALOGUE)}")
    entry = MODEL_CATALOGUE[name]
    return Pipeline(
        [("preprocess", preprocessor(spec, entry.scale_numeric)), ("model", entry.build(spec, settings))]
    )


def finalize_pipeline(pipeline: Pipeline) -> Pipeline:
    """The fitted pipeline to ship: a search step is replaced by its refitted best estimator (same
    predictions), so the bundle holds a plain, exportable regressor."""
    model = pipeline.named_steps["model"]
    if hasattr(model, "best_estimator_"):
        return Pipeline(
            [("preprocess", pipeline.named_steps["preprocess"]), ("model", model.best_estimator_)]
        )
    return pipeline
