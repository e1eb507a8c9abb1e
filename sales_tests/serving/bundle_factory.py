"""Builds small but real model bundles (sklearn Pipeline, skl2onnx export, metadata.json) per the bundle contract.

Shared by the serving tests and bench/bench_serving.py so neither depends on the training assets.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from sales_assets.settings import MLSettings
from sales_serving.contract import bundle as contract

REQUEST_FIELDS = [
    "QUANTITYORDERED",
    "PRICEEACH",
    "ORDERLINENUMBER",
    "MSRP",
    "QTR_ID",
    "MONTH_ID",
    "YEAR_ID",
    "PRODUCTLINE",
    "COUNTRY",
]
DERIVED_FEATURES = [
    {"name": "YEAR", "op": "copy", "inputs": ["YEAR_ID"]},
    {"name": "MONTH", "op": "copy", "inputs": ["MONTH_ID"]},
    {"name": "QUARTER", "op": "copy", "inputs": ["QTR_ID"]},
    {"name": "SEASON", "op": "season", "inputs": ["MONTH_ID"]},
    {"name": "PRICE_TO_MSRP_RATIO", "op": "divide", "inputs": ["PRICEEACH", "MSRP"]},
    {"name": "LINE_TOTAL_APPROX", "op": "multiply", "inputs": ["QUANTITYORDERED", "PRICEEACH"]},
]
# The training defaults, so the test bundles have the inputs a trained bundle has.
NUMERIC_FEATURES = MLSettings().numeric_features
CATEGORICAL_FEATURES = MLSettings().categorical_features
PRODUCTLINES = [
    "Classic Cars",
    "Motorcycles",
    "Planes",
    "Ships",
    "Trains",
    "Trucks and Buses",
    "Vintage Cars",
]
COUNTRIES = ["USA", "France", "Spain", "Australia", "UK", "Italy", "Finland", "Norway"]
SEASON_BY_MONTH = {12: "Winter", 1: "Winter", 2: "Winter", 3: "Spring", 4: "Spring", 5: "Spring"}
SEASON_BY_MONTH |= {6: "Summer", 7: "Summer", 8: "Summer", 9: "Autumn", 10: "Autumn", 11: "Autumn"}


def synthetic_frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature frame (all contract features, in order) and a SALES target shaped like the real data."""
    rng = np.random.default_rng(seed)
    quantity = rng.integers(6, 98, rows).astype(float)
    msrp = rng.integers(33, 215, rows).astype(float)
    price = np.minimum(np.round(msrp * rng.uniform(0.8, 1.2, rows), 2), 100.0)
    month = rng.integers(1, 13, rows)
    year = rng.integers(2003, 2006, rows)
    frame = pd.DataFrame(
        {
            "QUANTITYORDERED": quantity,
            "PRICEEACH": price,
            "ORDERLINENUMBER": rng.integers(1, 19, rows).astype(float),
            "MSRP": msrp,
            "QTR_ID": ((month - 1) // 3 + 1).astype(float),
            "MONTH_ID": month.astype(float),
            "YEAR_ID": year.astype(float),
            "YEAR": year.astype(float),
            "MONTH": month.astype(float),
            "QUARTER": ((month - 1) // 3 + 1).astype(float),
            "PRICE_TO_MSRP_RATIO": price / msrp,
            "LINE_TOTAL_APPROX": quantity * price,
            "PRODUCTLINE": rng.choice(PRODUCTLINES, rows).astype(object),
            "COUNTRY": rng.choice(COUNTRIES, rows).astype(object),
            "SEASON": np.array([SEASON_BY_MONTH[m] for m in month], dtype=object),
        }
    )
    # Capped prices hide the true unit price, as in the real export: the model has to learn it from MSRP.
    true_price = np.where(price >= 100.0, msrp * rng.uniform(1.0, 1.3, rows), price)
    target = quantity * true_price * (1.0 + 0.05 * (frame["PRODUCTLINE"] == "Classic Cars"))
    return frame, target.to_numpy()


def train_pipeline(rows: int = 600, seed: int = 0, n_estimators: int = 60) -> tuple[Pipeline, pd.DataFrame]:
    frame, target = synthetic_frame(rows, seed)
    preprocess = ColumnTransformer(
        [
            ("numeric", "passthrough", NUMERIC_FEATURES),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                CATEGORICAL_FEATURES,
            ),
        ]
    )
    pipeline = Pipeline(
        [
            ("preprocess", preprocess),
            ("model", GradientBoostingRegressor(n_estimators=n_estimators, max_depth=3, random_state=seed)),
        ]
    )
    pipeline.fit(frame, target)
    return pipeline, frame


def export_onnx(pipeline: Pipeline) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types = [(name, FloatTensorType([None, 1])) for name in NUMERIC_FEATURES]
    initial_types += [(name, StringTensorType([None, 1])) for name in CATEGORICAL_FEATURES]
    onnx_model = convert_sklearn(pipeline, initial_types=initial_types, target_opset=17)
    return onnx_model.SerializeToString()


# Relative bands as training stores them; rows priced below the cap are exact.
TEST_INTERVALS = {
    "method": "split-conformal on out-of-fold relative residuals (test fixture)",
    "price_field": "PRICEEACH",
    "price_cap": 100.0,
    "levels": {
        "0.8": {"lower_relative": -0.1, "upper_relative": 0.12},
        "0.95": {"lower_relative": -0.2, "upper_relative": 0.25},
    },
    "coverage_holdout": {"0.8": 0.81, "0.95": 0.95},
    "calibration_rows": 400,
}


def write_bundle(
    models_dir: Path,
    version: str,
    pipeline: Pipeline,
    onnx_bytes: bytes | None,
    *,
    parity_passed: bool = True,
    make_current: bool = True,
    metadata_overrides: dict | None = None,
) -> Path:
    """Writes `<models_dir>/<version>/` with the contract's writer, as training does; CURRENT moves when asked."""
    features = [{"name": name, "kind": "numeric", "dtype": "float64"} for name in NUMERIC_FEATURES]
    categories = {
        "PRODUCTLINE": PRODUCTLINES,
        "COUNTRY": COUNTRIES,
        "SEASON": ["Autumn", "Spring", "Summer", "Winter"],
    }
    features += [
        {
            "name": name,
            "kind": "categorical",
            "dtype": "string",
            "allowed_categories": sorted(categories[name]),
        }
        for name in CATEGORICAL_FEATURES
    ]
    onnx_inputs = [{"name": name, "type": "float32"} for name in NUMERIC_FEATURES]
    onnx_inputs += [{"name": name, "type": "string"} for name in CATEGORICAL_FEATURES]
    metadata = {
        "schema_version": 1,
        "model_name": "sales_regressor",
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": "SALES",
        "estimator": type(pipeline[-1]).__name__,
        "leaky": False,
        "request_fields": REQUEST_FIELDS,
        "derived_features": DERIVED_FEATURES,
        "features": features,
        "onnx": {
            "file": "model.onnx",
            "inputs": onnx_inputs,
            "output": "variable",
            "parity_passed": parity_passed,
            "max_abs_diff": 0.0004,
            "tolerance": 0.01,
            "rows_checked": 120,
        },
        "metrics": {
            "cv": {
                "rmse_mean": 300.0,
                "rmse_std": 20.0,
                "mae_mean": 150.0,
                "mae_std": 9.0,
                "r2_mean": 0.9,
                "r2_std": 0.01,
            },
            "holdout": {"rmse": 310.0, "mae": 155.0, "r2": 0.89},
        },
        "lineage": {
            "dagster_run_id": f"dagster-{version}",
            "mlflow_run_id": f"mlflow-{version}",
            "mlflow_model_version": "1",
            "mlflow_model_run_id": f"mlflow-child-{version}",
            "data_sha256": "0" * 64,
        },
        "promotion": {"promoted": True, "policy": "champion", "reason": "first model"},
        "intervals": TEST_INTERVALS,
        "library_versions": {"python": sys.version.split()[0], "scikit-learn": sklearn.__version__},
    }
    metadata |= metadata_overrides or {}
    return contract.write_bundle(
        models_dir, version, pipeline, onnx_bytes, metadata, make_current=make_current
    )


def reseal(bundle: Path) -> Path:
    """Rewrite the bundle's manifest over its files as they are now: a bundle a faulty trainer published
    this way, so the reader's own contract checks (not the manifest) are what refuses it."""
    files = {
        child.name: contract.sha256_file(child)
        for child in sorted(bundle.iterdir())
        if child.name != contract.MANIFEST_FILE
    }
    (bundle / contract.MANIFEST_FILE).write_text(contract.Manifest(files=files).model_dump_json())
    return bundle
