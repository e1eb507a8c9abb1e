"""Fixtures of the ML tests: a small sales-shaped frame with the data's price cap, fast settings, and one
shared materialisation of the ML assets on the generated sample."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sales_assets.ml.assets import onnx_model, shap_importance, trained_models
from sales_assets.resources import build_resources
from sales_assets.settings import Settings

# Small enough for a test run, large enough to exercise a linear and a tree-based model end to end.
FAST_ML_ENV = {
    "SALES_ML__CV_FOLDS": "2",
    "SALES_ML__CV_REPEATS": "1",
    "SALES_ML__MODELS": '["linear_regression", "capped_price_residual"]',
    "SALES_ML__SHAP_ROWS": "120",
}
ML_ASSETS = [trained_models, shap_importance, onnx_model]

PRODUCT_LINES = ["Classic Cars", "Motorcycles", "Planes", "Ships", "Trains"]
COUNTRIES = ["USA", "France", "Spain", "Australia"]


def sales_frame(rows: int = 400, seed: int = 7) -> pd.DataFrame:
    """Like the export: SALES = quantity x unit price, PRICEEACH capped at 100, DEALSIZE cut from SALES."""
    rng = np.random.default_rng(seed)
    msrp = rng.integers(40, 210, rows).astype(float)
    unit_price = np.round(msrp * rng.uniform(0.8, 1.2, rows), 2)
    quantity = rng.integers(6, 70, rows)
    sales = np.round(quantity * unit_price, 2)
    month = rng.integers(1, 13, rows)
    return pd.DataFrame(
        {
            "ORDERNUMBER": np.arange(10100, 10100 + rows),
            "QUANTITYORDERED": quantity,
            "PRICEEACH": np.minimum(unit_price, 100.0),
            "ORDERLINENUMBER": rng.integers(1, 18, rows),
            "SALES": sales,
            "QTR_ID": (month - 1) // 3 + 1,
            "MONTH_ID": month,
            "YEAR_ID": rng.choice([2003, 2004, 2005], rows),
            "PRODUCTLINE": rng.choice(PRODUCT_LINES, rows),
            "MSRP": msrp,
            "PRODUCTCODE": [f"S{int(value)}" for value in msrp],
            "COUNTRY": rng.choice(COUNTRIES, rows),
            "DEALSIZE": np.where(sales < 3000, "Small", np.where(sales < 7000, "Medium", "Large")),
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return sales_frame()


@pytest.fixture
def fast_settings(tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path)
    settings.ml.cv_folds = 2
    settings.ml.cv_repeats = 1
    settings.ml.models = ["linear_regression", "gradient_boosting_200", "capped_price_residual"]
    settings.ml.tuning_iterations = 2
    return settings


def materialize_ml(data_dir: Path, selection: list, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        selection,
        resources=build_resources(data_dir=data_dir),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


@dataclass(frozen=True)
class MLRun:
    data_dir: Path
    result: dg.ExecuteInProcessResult

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir)


@pytest.fixture
def fast_ml_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in FAST_ML_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def ml_data_dir(warehouse_data_dir: Path, tmp_path: Path, fast_ml_env: pytest.MonkeyPatch) -> Path:
    """A private copy of the session's warehouse (which is read-only) with the fast ML settings in force."""
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_data_dir, data_dir)
    return data_dir


@pytest.fixture(scope="package")
def ml_run(warehouse_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MLRun:
    """trained_models, shap_importance and onnx_model materialised once with the fast settings, shared by
    the tests of this folder. Read-only: a test that changes files works on a copy of `data_dir`."""
    data_dir = tmp_path_factory.mktemp("ml-run") / "data"
    shutil.copytree(warehouse_data_dir, data_dir)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAST_ML_ENV.items():
            patch.setenv(name, value)
        result = materialize_ml(data_dir, ML_ASSETS)
    assert result.success
    return MLRun(data_dir, result)
