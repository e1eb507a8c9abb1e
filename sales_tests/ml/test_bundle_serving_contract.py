"""The bundle contract end to end: the bundle the ML assets publish (the shared `ml_run`) loads in
sales_serving and answers the seed's example row the same on the ONNX and joblib backends."""

import json
import math

import pytest
from fastapi.testclient import TestClient

from sales_serving.app import create_app
from sales_serving.contract.bundle import read_current
from sales_serving.loading import load_bundle
from sales_serving.schema import EXAMPLE_ROW
from sales_serving.settings import ServingSettings

SEED_ROW = EXAMPLE_ROW  # the seed's SalesFeatures example, DEALSIZE included
BACKENDS = ("onnx", "joblib")


def _assert_plausible(prediction: float, estimator: str, backend: str) -> None:
    assert math.isfinite(prediction) and prediction > 0
    if estimator == "CappedPriceRegressor":
        # Below the price cap the capped-price model answers quantity x price exactly (float32 in ONNX).
        assert prediction == pytest.approx(30 * 95.7, abs=0.01 if backend == "onnx" else 1e-9)


@pytest.fixture(scope="module")
def served(ml_run) -> dict[str, dict]:
    """The /predict answer to the seed row from a service over the run's data directory, per backend."""
    answers = {}
    for backend in BACKENDS:
        settings = ServingSettings(data_dir=ml_run.data_dir, serving_backend=backend)
        assert settings.model_dir == ml_run.settings.models_dir.resolve()
        with TestClient(create_app(settings)) as client:
            response = client.post("/predict?echo_features=true&precision=full", json=SEED_ROW)
        assert response.status_code == 200, response.text
        answers[backend] = response.json()
    return answers


def test_the_published_bundle_loads_and_both_backends_agree(ml_run):
    models_dir = ml_run.settings.models_dir
    version = read_current(models_dir)
    card = json.loads((models_dir / version / "metadata.json").read_text(encoding="utf-8"))

    loaded = {backend: load_bundle(models_dir / version, backend) for backend in BACKENDS}
    predictions = {backend: float(model.predict([SEED_ROW])[0][0]) for backend, model in loaded.items()}

    assert {model.version for model in loaded.values()} == {version}
    assert {model.backend for model in loaded.values()} == set(BACKENDS)
    assert abs(predictions["onnx"] - predictions["joblib"]) <= 0.01
    for backend, prediction in predictions.items():
        _assert_plausible(prediction, card["estimator"], backend)


def test_the_service_answers_the_seed_row_from_the_published_bundle(ml_run, served):
    models_dir = ml_run.settings.models_dir
    card = json.loads((models_dir / read_current(models_dir) / "metadata.json").read_text(encoding="utf-8"))

    for backend, answer in served.items():
        assert answer["backend"] == backend and answer["model_version"] == card["version"]
        assert answer["mlflow_run_id"] == card["lineage"]["mlflow_model_run_id"]  # the registered run
        assert "DEALSIZE" in answer["ignored_features"]  # the leak-free model does not use it
        assert answer["features_used"]["LINE_TOTAL_APPROX"] == pytest.approx(30 * 95.7)
        _assert_plausible(answer["prediction"], card["estimator"], backend)
    assert abs(served["onnx"]["prediction"] - served["joblib"]["prediction"]) <= 0.01
