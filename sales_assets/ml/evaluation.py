"""Honest evaluation: a held-out split, repeated K-fold CV on the training part, the leaderboard and champion
choice, held-out scoring of the champion only, and the labelled "seed protocol" report (leaky by design)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.model_selection import RepeatedKFold, train_test_split
from sklearn.pipeline import Pipeline

from sales_assets.analytics.outliers import iqr_filter
from sales_assets.ml.catalogue import preprocessor
from sales_assets.ml.features import FeatureSpec, build_feature_matrix


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


def cross_validate(
    pipeline: Pipeline,
    features: pd.DataFrame,
    target: np.ndarray,
    folds: int,
    repeats: int,
    random_state: int,
) -> list[dict[str, float]]:
    """Repeated K-fold on the given rows: each fold fits a fresh clone and scores the rows it did not see."""
    scores = []
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=random_state)
    for train, test in splitter.split(features):
        fitted = clone(pipeline).fit(features.iloc[train], target[train])
        scores.append(regression_scores(target[test], fitted.predict(features.iloc[test])))
    return scores


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
