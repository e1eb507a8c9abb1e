"""The ML assets under dg.materialize on the generated sample with fast settings: one shared run (the `ml_run`
fixture) for the happy path and MLflow lineage, and private copies of the warehouse for the leaky and
parity-failure runs (the shared fixtures are read-only)."""

import json
import shutil

import dagster as dg
import duckdb
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from sales_assets.ml.assets import LEAKAGE_CHECK, ONNX_PARITY_CHECK, onnx_model, trained_models
from sales_assets.ml.tracking import TRAINING_RUN_TAG
from sales_assets.settings import MLSettings, Settings
from sales_serving.contract.bundle import read_current, read_metadata
from sales_serving.contract.formatting import round_share
from sales_tests.ml.conftest import FAST_ML_ENV, materialize_ml

CONTRACT_KEYS = {
    "schema_version", "model_name", "version", "created_at", "target", "estimator", "leaky", "request_fields",
    "derived_features", "features", "onnx", "metrics", "lineage", "library_versions",
}  # fmt: skip
CV_METRICS = {f"cv_{metric}_{stat}" for metric in ("rmse", "mae", "r2") for stat in ("mean", "std")}


def _read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _bundle_card(settings: Settings) -> dict:
    return _read_json(settings.models_dir / read_current(settings.models_dir) / "metadata.json")


def _bundles(settings: Settings) -> list[str]:
    """The bundle versions written so far, oldest first (names sort by time)."""
    return sorted(path.name for path in settings.models_dir.iterdir() if path.is_dir())


def _published(settings: Settings) -> list[str]:
    """Everything under the models directory (bundles, partial directories, CURRENT and its temporaries)."""
    if not settings.models_dir.exists():
        return []
    return sorted(path.name for path in settings.models_dir.iterdir())


def test_ml_assets_train_explain_export_and_publish_a_bundle(ml_run):
    result, settings = ml_run.result, ml_run.settings

    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    assert checks[LEAKAGE_CHECK].passed and checks[ONNX_PARITY_CHECK].passed

    metrics = _read_json(settings.metrics_dir / "sales_regression_metrics.json")
    assert {m["model"] for m in metrics["models"]} == {"linear_regression", "capped_price_residual"}
    assert all(
        set(m["cv"]) == {"rmse_mean", "rmse_std", "mae_mean", "mae_std", "r2_mean", "r2_std"}
        for m in metrics["models"]
    )
    assert metrics["champion"]["model"] == "capped_price_residual"
    assert metrics["leaky"] is False and metrics["leaky_features"] == []
    assert metrics["seed_protocol"]["leaky"] and not metrics["seed_protocol"]["eligible_as_champion"]
    # The final pipelines waited in a scratch folder beside the bundles (SpilledPipelines); it is gone.
    assert not list(settings.models_dir.parent.glob(".training.tmp-*"))

    shap = _read_json(settings.explainability_dir / "shap_global_importance.json")
    # At least two batches of 50 rows, at most the 120 sampled (sized to its error, sales_assets.ml.explain).
    assert shap["explainer"] == "ExactExplainer" and 100 <= shap["rows"] <= 120
    assert "PRODUCTLINE" in {row["feature"] for row in shap["importance"]}  # one-hot columns collapsed

    version = read_current(settings.models_dir)
    bundle = settings.models_dir / version
    card = _read_json(bundle / "metadata.json")
    assert set(card) >= CONTRACT_KEYS and card["version"] == version and card["leaky"] is False
    assert card["onnx"]["parity_passed"] and card["onnx"]["max_abs_diff"] <= 0.01
    assert (
        card["lineage"]["dagster_run_id"] == result.run_id and card["lineage"]["mlflow_model_version"] == "1"
    )
    assert (bundle / "model.onnx").stat().st_size > 0 and (bundle / "pipeline.joblib").is_file()
    read_metadata(bundle)  # the contract's own model accepts it
    assert card["promotion"] == {
        "promoted": True,
        "policy": "champion",
        "reason": metrics["promotion"]["reason"],
    }
    assert card["promotion"]["reason"].startswith("first champion")  # logged as a promotion
    intervals = card["intervals"]
    assert intervals["price_cap"] == 100.0 and intervals["price_field"] == "PRICEEACH"
    assert set(intervals["levels"]) == set(intervals["coverage_holdout"]) == {"0.8", "0.95"}
    assert all(0 < share <= 1 for share in intervals["coverage_holdout"].values())

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(
        settings.ml.registered_model_name, settings.ml.champion_alias
    )
    assert str(champion.version) == "1" and champion.tags["promotion_decision"] == "promoted"

    train_metadata = result.asset_materializations_for_node("trained_models")[0].metadata
    assert {row.data["model"] for row in train_metadata["leaderboard"].value.records} == {
        "linear_regression",
        "capped_price_residual",
    }
    for level in ("80", "95"):
        shown = train_metadata[f"interval_{level}_coverage_holdout"].value
        # The file keeps the full share; the UI shows it to three decimals (formatting.round_share).
        assert shown == round_share(intervals["coverage_holdout"][{"80": "0.8", "95": "0.95"}[level]])
    onnx_metadata = result.asset_materializations_for_node("onnx_model")[0].metadata
    assert onnx_metadata["served"].value is True and onnx_metadata["serving_policy"].value == "champion"


def test_mlflow_holds_a_training_run_with_the_data_and_one_visible_run_per_model(ml_run):
    settings = ml_run.settings
    card = _bundle_card(settings)
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    experiment_id = client.get_experiment_by_name(settings.ml.mlflow_experiment).experiment_id
    expected_tags = {
        "dagster_run_id": ml_run.result.run_id,
        "data_sha256": card["lineage"]["data_sha256"],
        "leaky": "false",
    }

    runs = client.search_runs([experiment_id])
    assert not any("mlflow.parentRunId" in run.data.tags for run in runs)  # nothing hidden under a parent
    (training,) = [run for run in runs if TRAINING_RUN_TAG not in run.data.tags]
    assert training.info.run_id == card["lineage"]["mlflow_run_id"]
    assert expected_tags.items() <= training.data.tags.items()
    assert (
        training.data.tags["promotion_decision"] == "promoted"
        and training.data.tags["registered_version"] == "1"
    )
    (dataset_input,) = training.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert card["lineage"]["data_sha256"].startswith(dataset.digest) and dataset.name == "sales"
    assert json.loads(dataset.source)["uri"].endswith("sales_parquet")
    assert json.loads(dataset.profile)["num_rows"] == card["lineage"]["table_rows"]

    models = [run for run in runs if run.data.tags.get(TRAINING_RUN_TAG) == training.info.run_id]
    assert len(runs) == 1 + len(models)
    assert {run.info.run_name: run.data.params["estimator"] for run in models} == {
        "linear_regression": "LinearRegression",
        "capped_price_residual": "CappedPriceRegressor",
    }
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)  # models:/<id> URIs resolve through it
    feature_names = [feature["name"] for feature in card["features"]]
    for run in models:
        assert set(run.data.metrics) >= CV_METRICS | {"fit_seconds", "leaderboard_rank"}
        assert run.data.metrics["cv_rmse_mean"] > 0 and run.data.metrics["cv_rmse_std"] >= 0
        assert expected_tags.items() <= run.data.tags.items()
        assert [i.dataset.digest for i in run.inputs.dataset_inputs] == [dataset.digest]
        is_champion = run.info.run_name == "capped_price_residual"
        assert run.data.tags["champion"] == str(is_champion).lower()
        assert ("holdout_rmse" in run.data.metrics) is is_champion
        assert ("holdout_coverage_80" in run.data.metrics) is is_champion
        assert (run.data.metrics["leaderboard_rank"] == 1.0) is is_champion

        # Only the champion's pipeline is logged: the registry version, and so serving's lineage, need it.
        logged = client.search_logged_models([experiment_id], f"source_run_id = '{run.info.run_id}'")
        assert len(logged) == int(is_champion)
        if is_champion:
            info = mlflow.models.get_model_info(f"models:/{logged[0].model_id}")
            assert info.signature.inputs.input_names() == feature_names
            assert info.signature.outputs is not None
            assert info.saved_input_example_info["type"] == "dataframe"

    # /health names the run the registered version points at: the champion's own run.
    version = client.get_model_version(
        settings.ml.registered_model_name, card["lineage"]["mlflow_model_version"]
    )
    (champion_run,) = [run for run in models if run.info.run_name == "capped_price_residual"]
    assert version.run_id == card["lineage"]["mlflow_model_run_id"] == champion_run.info.run_id
    # The registry says which data the version saw: the source file by name, its bytes' and the clean
    # layer's digests.
    assert version.description.startswith("capped_price_residual trained on ")
    assert settings.raw_csv_path.name in version.description
    assert card["lineage"]["data_sha256"] in version.description
    assert card["lineage"]["raw_sha256"] in version.description


def test_a_candidate_that_does_not_win_is_written_but_not_served_unless_the_policy_says_so(
    ml_run, tmp_path, monkeypatch
):
    data_dir = tmp_path / "data"
    shutil.copytree(ml_run.data_dir, data_dir)
    settings = Settings(data_dir=data_dir)
    for name, value in {**FAST_ML_ENV, "SALES_ML__MODELS": '["capped_price_residual"]'}.items():
        monkeypatch.setenv(name, value)
    first = read_current(settings.models_dir)
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)

    def champion_version() -> str:
        alias = client.get_model_version_by_alias(settings.ml.registered_model_name, "champion")
        return str(alias.version)

    # The same data and model again: equal held-out RMSE does not beat the champion.
    assert materialize_ml(data_dir, [trained_models, onnx_model]).success
    newest = _bundles(settings)[-1]
    assert newest != first and read_current(settings.models_dir) == first
    card = _read_json(settings.models_dir / newest / "metadata.json")
    assert card["promotion"]["promoted"] is False and card["promotion"]["policy"] == "champion"
    assert champion_version() == _bundle_card(settings)["lineage"]["mlflow_model_version"] == "1"

    monkeypatch.setenv("SALES_ML__SERVING_POLICY", "newest_candidate")
    assert materialize_ml(data_dir, [trained_models, onnx_model]).success
    served = _bundle_card(settings)
    assert served["version"] == _bundles(settings)[-1] and served["promotion"]["policy"] == "newest_candidate"
    assert served["promotion"]["promoted"] is False and champion_version() == "1"


def test_a_leak_the_guard_finds_makes_the_run_leaky_everywhere_and_blocks_promotion(ml_data_dir, fast_ml_env):
    settings = Settings(data_dir=ml_data_dir)
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        # Not a column the code knows to be target-derived: only the leakage guard can catch it.
        conn.execute("ALTER TABLE sales ADD COLUMN SALES_COPY DOUBLE")
        conn.execute("UPDATE sales SET SALES_COPY = SALES * 1.0001")
    fast_ml_env.setenv(
        "SALES_ML__NUMERIC_FEATURES", json.dumps([*MLSettings().numeric_features, "SALES_COPY"])
    )
    fast_ml_env.setenv("SALES_ML__MODELS", '["linear_regression"]')

    result = materialize_ml(ml_data_dir, [trained_models, onnx_model])

    assert result.success
    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    assert not checks[LEAKAGE_CHECK].passed and checks[LEAKAGE_CHECK].severity == dg.AssetCheckSeverity.WARN
    assert checks[LEAKAGE_CHECK].metadata["leaky_features"].value == ["SALES_COPY"]
    candidate = _read_json(settings.model_candidate_dir / "candidate.json")
    assert read_current(settings.models_dir) is None  # a leaky model is never served
    (version,) = _bundles(settings)
    card = _read_json(settings.models_dir / version / "metadata.json")
    assert card["promotion"]["promoted"] is False
    metrics = _read_json(settings.metrics_dir / "sales_regression_metrics.json")
    for document in (candidate, card, metrics):
        assert document["leaky"] is True and document["leaky_features"] == ["SALES_COPY"]
    assert "SALES_COPY" in card["request_fields"]
    assert metrics["promotion"]["promote"] is False and "leaky" in metrics["promotion"]["reason"]

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    name = settings.ml.registered_model_name
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(name, settings.ml.champion_alias)
    assert client.get_model_version(name, "1").tags["promotion_decision"] == "kept"
    experiment_id = client.get_experiment_by_name(settings.ml.mlflow_experiment).experiment_id
    assert {run.data.tags["leaky"] for run in client.search_runs([experiment_id])} == {"true"}


def test_dealsize_switched_on_makes_the_leakage_check_warn(ml_data_dir, fast_ml_env):
    fast_ml_env.setenv("SALES_ML__INCLUDE_DEALSIZE", "true")
    fast_ml_env.setenv("SALES_ML__MODELS", '["linear_regression"]')
    result = materialize_ml(ml_data_dir, [trained_models])
    assert result.success

    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == LEAKAGE_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert "DEALSIZE" in check.metadata["leaky_features"].value
    metrics = _read_json(Settings(data_dir=ml_data_dir).metrics_dir / "sales_regression_metrics.json")
    assert metrics["leaky"] and metrics["promotion"]["promote"] is False


@pytest.mark.parametrize("had_bundle", [True, False], ids=["previous-bundle", "no-bundle-yet"])
def test_a_failed_parity_check_publishes_nothing(ml_run, tmp_path, monkeypatch, had_bundle):
    data_dir = tmp_path / "data"
    shutil.copytree(ml_run.data_dir, data_dir)
    settings = Settings(data_dir=data_dir)
    if not had_bundle:
        shutil.rmtree(settings.models_dir)
    before = _published(settings)
    current_before = read_current(settings.models_dir)
    # float32 ONNX inputs cannot match float64 joblib predictions this closely, so parity must fail.
    monkeypatch.setenv("SALES_ML__ONNX_TOLERANCE", "1e-12")

    result = materialize_ml(data_dir, [onnx_model], raise_on_error=False)

    assert not result.success  # the blocking check fails the step
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == ONNX_PARITY_CHECK and not check.passed
    assert check.metadata["rows_outside"].value > 0
    assert _published(settings) == before
    assert read_current(settings.models_dir) == current_before
    assert (current_before is not None) is had_bundle
