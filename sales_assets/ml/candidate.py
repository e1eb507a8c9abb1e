"""The champion candidate between training and export: `model_candidate_dir` holds its pipeline, its draft
model card, its held-out rows and a SHAP sample, swapped in whole so a reader never sees half of it."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pandas as pd

from sales_assets.io import staged_directory
from sales_assets.ml.features import FeatureSpec
from sales_assets.ml.training import TrainingOutcome
from sales_assets.settings import Settings

CANDIDATE_METADATA = "candidate.json"
HOLDOUT_FILE = "holdout.parquet"
SHAP_SAMPLE_FILE = "shap_sample.parquet"


def write_candidate(settings: Settings, outcome: TrainingOutcome, candidate: dict) -> Path:
    """The champion pipeline, its draft model card, its held-out rows (request fields and target) and a SHAP
    sample (feature columns), swapped in whole."""
    target = settings.model_candidate_dir
    train_x, _ = outcome.part("train")
    _, test_y = outcome.part("test")
    test_requests = outcome.requests_part("test")
    shap_rows = train_x.sample(
        n=min(settings.ml.shap_rows, len(train_x)), random_state=settings.ml.random_state
    )
    with staged_directory(target) as staging:
        joblib.dump(outcome.champion_pipeline, staging / "pipeline.joblib")
        test_requests.assign(**{outcome.spec.target: test_y}).to_parquet(staging / HOLDOUT_FILE, index=False)
        shap_rows.reset_index(drop=True).to_parquet(staging / SHAP_SAMPLE_FILE, index=False)
        (staging / CANDIDATE_METADATA).write_text(
            json.dumps(candidate, indent=2, default=str), encoding="utf-8"
        )
    return target


def load_candidate(settings: Settings) -> tuple[dict, object, Path]:
    """(model card, fitted pipeline, directory). Raises FileNotFoundError when training has not run."""
    directory = settings.model_candidate_dir
    card = directory / CANDIDATE_METADATA
    if not card.is_file():
        raise FileNotFoundError(f"{card}: no trained champion; materialise trained_models first")
    return json.loads(card.read_text(encoding="utf-8")), joblib.load(directory / "pipeline.joblib"), directory


def spec_of(candidate: dict) -> FeatureSpec:
    features = candidate["features"]
    return FeatureSpec(
        target=candidate["target"],
        numeric=tuple(f["name"] for f in features if f["kind"] == "numeric"),
        categorical=tuple(f["name"] for f in features if f["kind"] == "categorical"),
    )


def read_frame(path: Path, spec: FeatureSpec) -> pd.DataFrame:
    """A stored frame with its text columns (categorical features or request fields) as Python strings."""
    frame = pd.read_parquet(path)
    for name in [*spec.categorical, *spec.categorical_request_fields]:
        if name in frame.columns:
            frame[name] = frame[name].astype(str).astype(object)
    return frame
