"""Honest evaluation: a held-out split, repeated K-fold CV on the training part, the leaderboard and champion
choice, held-out scoring of the champion only, and the labelled "seed protocol" report (leaky by design)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sales_assets.ml.catalogue import preprocessor
from sales_assets.ml.features import FeatureSpec, build_feature_matrix
from sales_assets.outliers import iqr_filter


@dataclass(frozen=True)
class Split:
    train_index: np.ndarray
    test_index: np.ndarray


def holdout_split(n_rows: int, test_size: float, random_state: int) -> Split:
    train_index, test_index = train_test_split(
        np.arange(n_rows), test_size=test_size, random_state=random_state
    )
    return Split(np.sort(train_index), np.sort(test_index))


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


@dataclass
class CVResult:
    """Per-fold scores of one model on the training part, plus the time of its final fit."""

    model: str
    estimator: str
    fold_scores: list[dict[str, float]] = field(default_factory=list)
    fit_seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        summary: dict[str, float] = {}
        for metric in ("rmse", "mae", "r2"):
            values = np.array([fold[metric] for fold in self.fold_scores])
            summary[f"{metric}_mean"] = float(values.mean())
            summary[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return summary


def fold_splits(
    n_rows: int, folds: int, repeats: int, random_state: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row positions of repeated K-fold; the first `folds` pairs partition the rows once."""
    from sklearn.model_selection import RepeatedKFold

    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=random_state)
    return list(splitter.split(np.arange(n_rows)))


@dataclass(frozen=True)
class FoldResult:
    """One fold of one model: its scores and its predictions for the rows it did not see."""

    scores: dict[str, float]
    test_index: np.ndarray
    predictions: np.ndarray
    seconds: float


def fit_and_score(
    pipeline: Pipeline, features: pd.DataFrame, target: np.ndarray, train: np.ndarray, test: np.ndarray
) -> FoldResult:
    """Fit a fresh clone on the `train` rows and score it on the `test` rows it did not see."""
    from sklearn.base import clone

    started = time.perf_counter()
    fitted = clone(pipeline).fit(features.iloc[train], target[train])
    predictions = np.asarray(fitted.predict(features.iloc[test]), dtype="float64")
    return FoldResult(
        regression_scores(target[test], predictions), test, predictions, time.perf_counter() - started
    )


def run_parallel(tasks: list, n_jobs: int) -> Iterator:
    """joblib tasks on `n_jobs` worker processes (loky), results in submission order as they finish.

    The one level of parallelism of training: estimators inside run single-threaded (see the catalogue)."""
    from joblib import Parallel

    try:
        yield from Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    finally:
        if n_jobs != 1:
            # loky keeps its workers alive for reuse; a Dagster step process that still has them can hang
            # at exit (seen in CI: trained_models' process never ended), so they are stopped here.
            from joblib.externals.loky import get_reusable_executor

            get_reusable_executor().shutdown(wait=True)


def cross_validate(
    pipeline: Pipeline,
    features: pd.DataFrame,
    target: np.ndarray,
    folds: int,
    repeats: int,
    random_state: int,
    n_jobs: int = 1,
) -> list[dict[str, float]]:
    """Repeated K-fold on the given rows: each fold fits a fresh clone and scores the rows it did not see."""
    from joblib import delayed

    splits = fold_splits(len(features), folds, repeats, random_state)
    tasks = [delayed(fit_and_score)(pipeline, features, target, train, test) for train, test in splits]
    return [result.scores for result in run_parallel(tasks, n_jobs)]


def out_of_fold_predictions(fold_results: list[FoldResult], n_rows: int) -> np.ndarray:
    """One prediction per row from the folds that left it out, taken from the first K-fold partition."""
    predictions = np.full(n_rows, np.nan)
    for result in fold_results:
        unset = np.isnan(predictions[result.test_index])
        predictions[result.test_index[unset]] = result.predictions[unset]
    return predictions


def leaderboard(results: list[CVResult]) -> pl.DataFrame:
    """One row per model, best CV RMSE first."""
    rows = [
        {
            "model": result.model,
            "estimator": result.estimator,
            **result.summary(),
            "fit_seconds": result.fit_seconds,
        }
        for result in results
    ]
    return pl.DataFrame(rows).sort("rmse_mean")


def choose_champion(board: pl.DataFrame, is_eligible: Callable[[str], bool]) -> str:
    """The best model by CV RMSE among those that pass `is_eligible` (e.g. export to ONNX with parity)."""
    for model in board["model"]:
        if is_eligible(model):
            return model
    raise RuntimeError(f"no eligible champion among {board['model'].to_list()}")


def seed_protocol_report(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    iqr_columns: list[str],
    iqr_factor: float = 1.5,
    test_size: float = 0.2,
    random_state: int = 42,
) -> dict:
    """Reproduces the seed's v1 table: IQR-filtered rows, one 80/20 split, DEALSIZE among the inputs,
    GradientBoosting. Labelled leaky; a report for comparison, never a champion."""
    categorical = tuple(dict.fromkeys([*spec.categorical, "DEALSIZE"]))
    seed_spec = FeatureSpec(target=spec.target, numeric=spec.numeric, categorical=categorical)
    filtered = iqr_filter(pl.from_pandas(frame), iqr_columns, iqr_factor).kept.to_pandas()
    features, target = build_feature_matrix(filtered, seed_spec)
    split = holdout_split(len(features), test_size, random_state)
    pipeline = Pipeline(
        [
            ("preprocess", preprocessor(seed_spec, scale_numeric=False)),
            ("model", GradientBoostingRegressor(random_state=random_state)),
        ]
    )
    started = time.perf_counter()
    pipeline.fit(features.iloc[split.train_index], target[split.train_index])
    scores = regression_scores(target[split.test_index], pipeline.predict(features.iloc[split.test_index]))
    return {
        "label": "seed protocol (v1): IQR-filtered rows, 80/20 split, DEALSIZE included",
        "leaky": True,
        "eligible_as_champion": False,
        "model": "GradientBoostingRegressor",
        "rows_before_filter": len(frame),
        "rows_after_filter": len(filtered),
        "iqr_columns": list(iqr_columns),
        "iqr_factor": iqr_factor,
        "test_size": test_size,
        "random_state": random_state,
        "features": seed_spec.columns,
        "holdout": scores,
        "fit_seconds": round(time.perf_counter() - started, 3),
    }
