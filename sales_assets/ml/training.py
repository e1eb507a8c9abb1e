"""Training of every model in settings.ml.models: one held-out split, repeated K-fold CV on the training part,
a final fit per model, the champion (best CV RMSE among models that export to ONNX with parity) scored once
on the held-out rows, and the leakage report of the inputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl
from sklearn.pipeline import Pipeline

from sales_assets.ml.catalogue import MODEL_CATALOGUE, build_pipeline, finalize_pipeline
from sales_assets.ml.evaluation import (
    CVResult,
    Split,
    choose_champion,
    cross_validate,
    holdout_split,
    leaderboard,
    regression_scores,
)
from sales_assets.ml.features import LEAKY_COLUMNS, FeatureSpec, build_feature_matrix, feature_spec
from sales_assets.ml.leakage import leakage_report, leaky_features
from sales_assets.ml.onnx_export import ParityResult, check_parity, export_onnx
from sales_assets.settings import Settings


@dataclass
class TrainingOutcome:
    spec: FeatureSpec
    features: pd.DataFrame
    target: np.ndarray
    split: Split
    results: list[CVResult]
    pipelines: dict[str, Pipeline]
    board: pl.DataFrame
    champion: str
    champion_holdout: dict[str, float]
    champion_parity: ParityResult
    leakage: pl.DataFrame
    ineligible: dict[str, str] = field(default_factory=dict)

    @property
    def champion_pipeline(self) -> Pipeline:
        return self.pipelines[self.champion]

    @property
    def leaky_features(self) -> list[str]:
        """Inputs that leak the target: known target-derived columns plus any the leakage guard flags."""
        known = [column for column in self.spec.columns if column in LEAKY_COLUMNS]
        return list(dict.fromkeys([*known, *leaky_features(self.leakage)]))

    @property
    def leaky(self) -> bool:
        """The one leakage verdict of this run: the model card, metrics, MLflow tags and promotion use it."""
        return bool(self.leaky_features)

    @property
    def champion_cv(self) -> dict[str, float]:
        return next(result.summary() for result in self.results if result.model == self.champion)

    def part(self, which: str) -> tuple[pd.DataFrame, np.ndarray]:
        index = self.split.train_index if which == "train" else self.split.test_index
        return self.features.iloc[index].reset_index(drop=True), self.target[index]


def sample_rows(frame: pd.DataFrame, max_rows: int, random_state: int) -> pd.DataFrame:
    """At most `max_rows` rows, drawn reproducibly, so training scales to large tables."""
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=random_state).sort_index().reset_index(drop=True)


def train_models(
    frame: pd.DataFrame, settings: Settings, log: Callable[[str], None] = lambda message: None
) -> TrainingOutcome:
    ml = settings.ml
    spec = feature_spec(ml)
    data = sample_rows(frame, ml.max_training_rows, ml.random_state)
    features, target = build_feature_matrix(data, spec)
    split = holdout_split(len(features), ml.test_size, ml.random_state)
    train_x = features.iloc[split.train_index].reset_index(drop=True)
    train_y = target[split.train_index]
    test_x = features.iloc[split.test_index].reset_index(drop=True)
    test_y = target[split.test_index]
    log(f"training {len(ml.models)} models on {len(train_x):,} rows, holding out {len(test_x):,}")

    results: list[CVResult] = []
    pipelines: dict[str, Pipeline] = {}
    for position, name in enumerate(ml.models, start=1):
        pipeline = build_pipeline(name, spec, settings)
        started = time.perf_counter()
        folds = cross_validate(pipeline, train_x, train_y, ml.cv_folds, ml.cv_repeats, ml.random_state)
        cv_seconds = time.perf_counter() - started
        started = time.perf_counter()
        pipelines[name] = finalize_pipeline(pipeline.fit(train_x, train_y))
        result = CVResult(name, MODEL_CATALOGUE[name].label, folds, round(time.perf_counter() - started, 3))
        results.append(result)
        summary = result.summary()
        log(
            f"[{position}/{len(ml.models)}] {name}: CV RMSE {summary['rmse_mean']:,.1f} ± {summary['rmse_std']:,.1f}, "
            f"MAE {summary['mae_mean']:,.1f}, R2 {summary['r2_mean']:.3f} "
            f"(CV {cv_seconds:.1f}s, fit {result.fit_seconds:.1f}s)"
        )
    board = leaderboard(results)

    ineligible: dict[str, str] = {}
    parity: dict[str, ParityResult] = {}

    def exports_with_parity(name: str) -> bool:
        try:
            onnx_bytes = export_onnx(pipelines[name], spec)
            parity[name] = check_parity(pipelines[name], onnx_bytes, test_x, spec, ml.onnx_tolerance)
        except Exception as error:  # any converter failure makes the model ineligible, with the reason
            ineligible[name] = f"ONNX export failed: {type(error).__name__}: {error}"
            return False
        if not parity[name].passed:
            ineligible[name] = f"ONNX parity failed: max abs diff {parity[name].max_abs_diff:.4g}"
        return parity[name].passed

    try:
        champion = choose_champion(board, exports_with_parity)
    except RuntimeError as error:
        raise RuntimeError(f"{error}; why each is not eligible: {ineligible}") from error
    for name, reason in ineligible.items():
        log(f"{name} is not eligible as champion: {reason}")
    holdout = regression_scores(test_y, pipelines[champion].predict(test_x))
    log(
        f"champion {champion}: held-out RMSE {holdout['rmse']:,.1f}, MAE {holdout['mae']:,.1f}, R2 {holdout['r2']:.3f}"
    )
    return TrainingOutcome(
        spec=spec,
        features=features,
        target=target,
        split=split,
        results=results,
        pipelines=pipelines,
        board=board,
        champion=champion,
        champion_holdout=holdout,
        champion_parity=parity[champion],
        leakage=leakage_report(train_x, train_y, ml.leakage_r2_threshold, ml.random_state),
        ineligible=ineligible,
    )
