"""Serving depends on the bundle files only: loading the app and a bundle imports neither dagster nor sales_assets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sales_tests.serving.conftest import VERSION_1

PROBE = """
import sys
from fastapi.testclient import TestClient
from sales_serving.app import create_app
from sales_serving.cli import main
from sales_serving.settings import ServingSettings

with TestClient(create_app(ServingSettings(data_dir=sys.argv[1]))) as client:
    assert client.get("/health").json()["model_version"] == sys.argv[2]
    assert client.get("/model").status_code == 200
leaked = sorted(name for name in sys.modules if name.split(".")[0] in {"dagster", "sales_assets", "mlflow"})
print(",".join(leaked))
"""


def test_serving_never_imports_dagster_or_training_code(data_dir: Path, bundle_v1: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(data_dir), VERSION_1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


UNPICKLE = """
import sys
import joblib
pipeline = joblib.load(sys.argv[1])
print(round(float(pipeline.predict([[30.0, 95.7], [40.0, 100.0]])[0]), 2))
leaked = sorted(name for name in sys.modules if name.split(".")[0] in {"dagster", "sales_assets", "mlflow"})
print(",".join(leaked))
"""


def test_a_pickled_capped_price_champion_loads_without_training_code(tmp_path: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.pipeline import Pipeline

    from sales_serving.contract.estimators import CappedPriceRegressor

    quantity = np.arange(10, 50, dtype=float)
    price = np.where(quantity % 2 == 0, 100.0, 95.7)
    features = np.column_stack([quantity, price])
    sales = quantity * np.where(price >= 100, 130.0, price)
    model = Pipeline([("model", CappedPriceRegressor(price_indices=(1,)))]).fit(features, sales)
    joblib.dump(model, tmp_path / "pipeline.joblib")
    result = subprocess.run(
        [sys.executable, "-c", UNPICKLE, str(tmp_path / "pipeline.joblib")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    prediction, leaked = result.stdout.strip().split("\n") + [""] * (
        2 - len(result.stdout.strip().split("\n"))
    )
    assert float(prediction) == 2871.0  # below the cap: exactly quantity x price
    assert leaked == ""
