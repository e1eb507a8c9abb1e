"""One dg.materialize of the ML assets on the generated sample, with fast settings, on a copy of the
session's warehouse (the shared fixture is read-only)."""

import json
import shutil

import dagster as dg
import pytest
from mlflow import MlflowClient

from sales_assets.ml.assets import (
    LEAKAGE_CHECK,
    ONNX_PARITY_CHECK,
    onnx_model,
    shap_importance,
    trained_models,
)
from sales_assets.ml.bundle import read_current
from sales_assets.resources import build_resources
from sales_assets.settings import Settings

CONTRACT_KEYS = {
    "schema_version", "model_name", "version", "created_at", "target", "estimator", "leaky", "request_fields",
    "derived_features", "features", "onnx", "metrics", "lineage", "library_versions",
}  # fmt: skip


@pytest.fixture
def ml_data_dir(warehouse_data_dir, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_data_dir, data_dir)
    monkeypatch.setenv("SALES_ML__CV_FOLDS", "2")
    monkeypatch.setenv("SALES_ML__CV_REPEATS", "1")
    monkeypatch.setenv("SALES_ML__MODELS", '["linear_regression", "capped_price_residual"]')
    monkeypatch.setenv("SALES_ML__SHAP_ROWS", "120")
    return data_dir


def _materialize(data_dir, selection):
    return dg.materialize(
        selection, resources=build_resources(data_dir=data_dir), instance=dg.DagsterInstance.ephemeral()
    )


def test_ml_assets_train_explain_export_and_publish_a_bundle(ml_data_dir):
    result = _materialize(ml_data_dir, [trained_models, shap_importance, onnx_model])
    assert result.success
    settings = Settings(data_dir=ml_data_dir)

    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    assert checks[LEAKAGE_CHECK].passed and checks[ONNX_PARITY_CHECK].passed

    metrics = json.loads((settings.metrics_dir / "sales_regression_metrics.json").read_text())
    assert {m["model"] for m in metrics["models"]} == {"linear_regression", "capped_price_residual"}
    assert all(
        set(m["cv"]) == {"rmse_mean", "rmse_std", "mae_mean", "mae_std", "r2_mean", "r2_std"}
        for m in metrics["models"]
    )
    assert metrics["champion"]["model"] == "capped_price_residual" and not metrics["leaky"]
    assert metrics["seed_protocol"]["leaky"] and not metrics["seed_protocol"]["eligible_as_champion"]

    shap = json.loads((settings.explainability_dir / "shap_global_importance.json").read_text())
    assert shap["explainer"] == "PermutationExplainer" and shap["rows"] == 120
    assert "PRODUCTLINE" in {row["feature"] for row in shap["importance"]}  # one-hot columns collapsed

    version = read_current(settings.models_dir)
    bundle = settings.models_dir / version
    card = json.loads((bundle / "metadata.json").read_text())
    assert set(card) >= CONTRACT_KEYS and card["version"] == version
    assert card["onnx"]["parity_passed"] and card["onnx"]["max_abs_diff"] <= 0.01
    assert (
        card["lineage"]["dagster_run_id"] == result.run_id and card["lineage"]["mlflow_model_version"] == "1"
    )
    assert (bundle / "model.onnx").stat().st_size > 0 and (bundle / "pipeline.joblib").is_file()

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(
        settings.ml.registered_model_name, settings.ml.champion_alias
    )
    assert str(champion.version) == "1" and champion.tags["promotion_decision"] == "promoted"
    parent = client.get_run(card["lineage"]["mlflow_run_id"])
    assert parent.data.tags["leaky"] == "false" and parent.data.tags["dagster_run_id"] == result.run_id

    train_metadata = result.asset_materializations_for_node("trained_models")[0].metadata
    assert "| model |" in train_metadata["leaderboard"].value


def test_dealsize_switched_on_makes_the_leakage_check_warn(ml_data_dir, monkeypatch):
    monkeypatch.setenv("SALES_ML__INCLUDE_DEALSIZE", "true")
    monkeypatch.setenv("SALES_ML__MODELS", '["linear_regression"]')
    result = _materialize(ml_data_dir, [trained_models])
    assert result.success

    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == LEAKAGE_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert "DEALSIZE" in check.metadata["leaky_features"].value
    metrics = json.loads(
        (Settings(data_dir=ml_data_dir).metrics_dir / "sales_regression_metrics.json").read_text()
    )
    assert metrics["leaky"] and metrics["promotion"]["promote"] is False
