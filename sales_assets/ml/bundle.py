"""The model bundle (see the bundle contract): `<version>/` with pipeline.joblib, model.onnx and
metadata.json, written as `.<version>.partial` and renamed whole, then the `CURRENT` pointer replaced."""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import joblib
from sklearn.pipeline import Pipeline

from sales_assets.ml.features import FeatureSpec
from sales_assets.ml.onnx_export import ParityResult, onnx_input_types, onnx_output_name

CURRENT_FILE = "CURRENT"
BUNDLE_FILES = ("pipeline.joblib", "model.onnx", "metadata.json")
VERSIONED_LIBRARIES = (
    "scikit-learn",
    "numpy",
    "pandas",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "onnxmltools",
    "xgboost",
    "lightgbm",
    "catboost",
    "mlflow",
    "joblib",
)


def bundle_version(run_id: str, now: datetime | None = None) -> str:
    """Sortable: UTC timestamp plus the first 8 characters of the Dagster run id."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{run_id[:8]}"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for library in VERSIONED_LIBRARIES:
        try:
            versions[library] = version(library)
        except PackageNotFoundError:
            continue
    return versions


def bundle_metadata(
    model_name: str,
    version: str,
    candidate: dict,
    spec: FeatureSpec,
    onnx_bytes: bytes,
    parity: ParityResult,
) -> dict:
    """metadata.json of a bundle: the candidate's model card plus the ONNX export and library versions."""
    return {
        "schema_version": 1,
        "model_name": model_name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": candidate["target"],
        "estimator": candidate["estimator"],
        "model": candidate["model"],
        "leaky": candidate["leaky"],
        "leaky_features": candidate["leaky_features"],
        "request_fields": candidate["request_fields"],
        "derived_features": candidate["derived_features"],
        "features": candidate["features"],
        "onnx": {
            "file": "model.onnx",
            "inputs": onnx_input_types(spec),
            "output": onnx_output_name(onnx_bytes),
            "parity_passed": parity.passed,
            "max_abs_diff": parity.max_abs_diff,
            "tolerance": parity.tolerance,
            "rows_checked": parity.rows_checked,
        },
        "metrics": candidate["metrics"],
        "lineage": candidate["lineage"],
        "library_versions": library_versions(),
    }


def read_current(models_dir: Path) -> str | None:
    pointer = Path(models_dir) / CURRENT_FILE
    return pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None


def point_current(models_dir: Path, bundle: str) -> None:
    """Replace CURRENT in one rename, so a reader sees the old or the new name, never a partial file."""
    models_dir = Path(models_dir)
    temporary = models_dir / f"{CURRENT_FILE}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        temporary.write_text(bundle + "\n", encoding="utf-8")
        os.replace(temporary, models_dir / CURRENT_FILE)
    finally:
        temporary.unlink(missing_ok=True)


def write_bundle(
    models_dir: Path, bundle: str, pipeline: Pipeline, onnx_bytes: bytes, metadata: dict
) -> Path:
    """Write a complete bundle, then move CURRENT to it. A failure at any step leaves CURRENT (and every
    existing bundle) as it was and removes the partial directory."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / bundle
    if final.exists():
        raise FileExistsError(f"{final}: bundle version {bundle!r} already exists")
    partial = models_dir / f".{bundle}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        joblib.dump(pipeline, partial / "pipeline.joblib")
        (partial / "model.onnx").write_bytes(onnx_bytes)
        (partial / "metadata.json").write_text(
            json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8"
        )
        os.replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    point_current(models_dir, bundle)
    return final
