"""Training of every model in settings.ml.models: one held-out split, repeated K-fold CV on the training part,
a final fit per model, the champion (best CV RMSE among models that export to ONNX with parity) scored once
on the held-out rows, and the leakage report of the inputs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from sklearn.pipeline import Pipeline

from sales_assets.ml.catalogue import MODEL_CATALOGUE, build_pipeline, finalize_pipeline
from sales_assets.ml.evaluation import (
    CVResult,
    FoldResult,
    Split,
    choose_champion,
    fit_and_score,
    fold_splits,
    holdout_split,
    leaderboard,
    out_of_fold_predictions,
    regression_scores,
    run_parallel,
)
from sales_assets.ml.features import (
    LEAKY_COLUMNS,
    PRICE_FIELD,
    FeatureSpec,
    build_feature_matrix,
    feature_spec,
)
from sales_assets.ml.intervals import IntervalCalibration, calibrate_intervals, with_holdout_coverage
from sales_assets.ml.leakage import leakage_partners, leakage_report, leaky_features
from sales_assets.ml.onnx_export import ParityResult, check_parity, export_onnx
from sales_assets.settings import Settings


class SpilledPipelines(Mapping[str, Pipeline]):
    """The final fitted pipeline of each model, kept in a joblib file per model and loaded when asked for, so
    the training process holds one model at a time instead of every forest at once (random_forest_200
    fitted on 16,000 rows pickles to about 270 MB; BENCHMARKS.md "Whole graph at scale"). `keep(name)`
    holds one in memory (the champion). Each access of another name reads its file again."""

    def __init__(self, paths: Mapping[str, Path]) -> None:
        self.paths = dict(paths)
        self._kept: dict[str, Pipeline] = {}

    def __getitem__(self, name: str) -> Pipeline:
        if name in self._kept:
            return self._kept[name]
        import joblib

        return joblib.load(self.paths[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def keep(self, name: str) -> Pipeline:
        self._kept[name] = self[name]
        return self._kept[name]


@dataclass
class TrainingOutcome:
    spec: FeatureSpec
    features: pd.DataFrame
    target: np.ndarray
    # The request fields of the same rows, as a client sends them (the ONNX graph's inputs).
    requests: pd.DataFrame
    split: Split
    results: list[CVResult]
    # In memory, or SpilledPipelines when train_models was given a spill folder.
    pipelines: Mapping[str, Pipeline]
    board: pl.DataFrame
    champion: str
    champion_holdout: dict[str, float]
    champion_parity: ParityResult
    leakage: pl.DataFrame
    intervals: IntervalCalibration | None = None
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
        """(features, target) of the "train" or "test" rows."""
        index = self.split.train_index if which == "train" else self.split.test_index
        return self.features.iloc[index].reset_index(drop=True), self.target[index]

    def requests_part(self, which: str) -> pd.DataFrame:
        """The request fields of the "train" or "test" rows."""
        index = self.split.train_index if which == "train" else self.split.test_index
        return self.requests.iloc[index].reset_index(drop=True)


def _fit_final(
    pipeline: Pipeline, features: pd.DataFrame, target: np.ndarray, spill_to: Path | None = None
) -> tuple[Pipeline | Path, float]:
    """(the fitted pipeline, fit seconds); with `spill_to`, the pipeline is written there (joblib) and the
    path comes back instead, so a large forest does not travel to the parent process and stay there."""
    from sklearn.base import clone

    started = time.perf_counter()
    fitted = finalize_pipeline(clone(pipeline).fit(features, target))
    seconds = round(time.perf_counter() - started, 3)
    if spill_to is None:
        return fitted, seconds
    import joblib

    joblib.dump(fitted, spill_to)
    return spill_to, seconds


def train_models(
    frame: pd.DataFrame,
    settings: Settings,
    log: Callable[[str], None] = lambda message: None,
    spill_dir: Path | None = None,
) -> TrainingOutcome:
    """Every model of settings.ml.models on `frame` (already sampled to at most ml.max_training_rows):
    CV folds and final fits of all models, and the leakage report of the inputs, run as one pool of
    single-threaded tasks on ml.n_jobs processes;
    the champion is scored once on the held-out rows and its intervals calibrated on its out-of-fold
    residuals. With `spill_dir` (an existing folder the caller removes), each final pipeline is written
    there by the worker that fit it and `outcome.pipelines` loads them on demand (SpilledPipelines);
    without it they are all held in memory. Raises RuntimeError naming why no model is eligible as
    champion."""
    from joblib import delayed

    ml = settings.ml
    spec = feature_spec(ml)
    rows = frame.reset_index(drop=True)
    features, target = build_feature_matrix(rows, spec)
    requests = rows[spec.request_fields]
    split = holdout_split(len(features), ml.test_size, ml.random_state)
    test_requests = requests.iloc[split.test_index].reset_index(drop=True)
    train_x = features.iloc[split.train_index].reset_index(drop=True)
    train_y = target[split.train_index]
    test_x = features.iloc[split.test_index].reset_index(drop=True)
    test_y = target[split.test_index]
    log(
        f"training {len(ml.models)} models on {len(train_x):,} rows, holding out {len(test_x):,} "
        f"({ml.n_jobs} worker processes)"
    )

    splits = fold_splits(len(train_x), ml.cv_folds, ml.cv_repeats, ml.random_state)
    # The leakage report is one more task of the pool, so it runs beside the folds instead of after them.
    tasks = [
        delayed(leakage_report)(
            train_x, train_y, ml.leakage_r2_threshold, ml.random_state, leakage_partners(spec.numeric)
        )
    ]
    for name in ml.models:
        pipeline = build_pipeline(name, spec, settings)
        tasks += [delayed(fit_and_score)(pipeline, train_x, train_y, train, test) for train, test in splits]
        spill_to = None if spill_dir is None else Path(spill_dir) / f"{name}.joblib"
        tasks.append(delayed(_fit_final)(pipeline, train_x, train_y, spill_to))
    outputs = run_parallel(tasks, ml.n_jobs)
    leakage = next(outputs)

    results: list[CVResult] = []
    fitted: dict = {}
    out_of_fold: dict[str, np.ndarray] = {}
    for position, name in enumerate(ml.models, start=1):
        folds: list[FoldResult] = [next(outputs) for _ in splits]
        fitted[name], fit_seconds = next(outputs)
        out_of_fold[name] = out_of_fold_predictions(folds[: ml.cv_folds], len(train_x))
        result = CVResult(name, MODEL_CATALOGUE[name].label, [fold.scores for fold in folds], fit_seconds)
        results.append(result)
        summary = result.summary()
        log(
            f"[{position}/{len(ml.models)}] {name}: CV RMSE {summary['rmse_mean']:,.1f} ± {summary['rmse_std']:,.1f}, "
            f"MAE {summary['mae_mean']:,.1f}, R2 {summary['r2_mean']:.3f} "
            f"(CV {sum(fold.seconds for fold in folds):.1f}s of work, fit {fit_seconds:.1f}s)"
        )
    board = leaderboard(results)
    pipelines: Mapping[str, Pipeline] = fitted if spill_dir is None else SpilledPipelines(fitted)

    ineligible: dict[str, str] = {}
    parity: dict[str, ParityResult] = {}

    def exports_with_parity(name: str) -> bool:
        pipeline = pipelines[name]  # one load when the pipelines are spilled
        try:
            onnx_bytes = export_onnx(pipeline, spec)
            parity[name] = check_parity(pipeline, onnx_bytes, test_requests, spec, ml.onnx_tolerance)
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
    if isinstance(pipelines, SpilledPipelines):
        pipelines.keep(champion)
    test_predictions = pipelines[champion].predict(test_x)
    holdout = regression_scores(test_y, test_predictions)
    log(
        f"champion {champion}: held-out RMSE {holdout['rmse']:,.1f}, MAE {holdout['mae']:,.1f}, R2 {holdout['r2']:.3f}"
    )
    intervals = champion_intervals(
        settings, train_x, train_y, out_of_fold[champion], test_x, test_y, test_predictions, log
    )
    return TrainingOutcome(
        spec=spec,
        features=features,
        target=target,
        requests=requests,
        split=split,
        results=results,
        pipelines=pipelines,
        board=board,
        champion=champion,
        champion_holdout=holdout,
        champion_parity=parity[champion],
        leakage=leakage,
        intervals=intervals,
        ineligible=ineligible,
    )


def champion_intervals(
    settings: Settings,
    train_x: pd.DataFrame,
    train_y: np.ndarray,
    out_of_fold: np.ndarray,
    test_x: pd.DataFrame,
    test_y: np.ndarray,
    test_predictions: np.ndarray,
    log: Callable[[str], None],
) -> IntervalCalibration | None:
    """The champion's interval calibration with its held-out coverage; None (logged) when the features
    lack the price field or no row can calibrate, so the bundle is served without intervals."""
    price_field = PRICE_FIELD
    if price_field not in train_x.columns:
        log(f"no prediction intervals: {price_field} is not a model input")
        return None
    try:
        calibration = calibrate_intervals(
            train_y, out_of_fold, train_x[price_field].to_numpy(), settings.ingest.price_cap, price_field
        )
    except ValueError as error:
        log(f"no prediction intervals: {error}")
        return None
    calibration = with_holdout_coverage(calibration, test_y, test_predictions, test_x[price_field].to_numpy())
    log(
        "prediction intervals: held-out coverage "
        + ", ".join(f"{share:.1%} at {level:.0%}" for level, share in calibration.coverage_holdout.items())
        + f" on {calibration.holdout_rows_with_band:,} rows with a band"
    )
    return calibration
