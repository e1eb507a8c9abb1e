import json

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from sales_assets.ml.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    LEADERBOARD_METRICS,
    LEADERBOARD_VIEW_KEY,
    SAVED_VIEW_TAG_PREFIX,
    configure_mlflow,
    decide_promotion,
    leaderboard_url,
    leaderboard_view_state,
    log_model_run,
    model_metrics,
    parent_run,
    point_alias,
    register_champion,
    score_incumbent,
)
from sales_assets.ml.training import train_models
from sales_assets.settings import MLSettings, Settings

X = pd.DataFrame({"QUANTITYORDERED": np.arange(1.0, 41.0), "PRICEEACH": np.linspace(50.0, 100.0, 40)})
Y = 3.0 * X["QUANTITYORDERED"].to_numpy()


def _fit(model, columns: list[str]) -> Pipeline:
    return Pipeline([("model", model)]).fit(X[columns], Y)


def _train_and_register(settings: Settings, label: str, pipeline: Pipeline) -> tuple[str, str]:
    """What track_training does for its champion, on a toy model: returns (new version, parent run id)."""
    columns = list(pipeline.feature_names_in_)
    configure_mlflow(settings)
    _, uri = log_model_run(label, pipeline, {"kind": label}, {"cv_rmse_mean": 1.0}, {}, X[columns].head(3))
    with parent_run(settings, f"parent-{label}", {"dagster_run_id": label}) as run:
        incumbent_version, incumbent_rmse, why_not = score_incumbent(settings, X[columns], Y)
        candidate_rmse = float(np.sqrt(np.mean((pipeline.predict(X[columns]) - Y) ** 2)))
        decision = decide_promotion(candidate_rmse, incumbent_rmse, False, incumbent_version, why_not)
        version = register_champion(settings, uri, decision, {"dagster_run_id": label})
    # Registration leaves the alias alone; publication moves it (here at once: no bundle in this test).
    if decision.promote:
        point_alias(settings, version)
    return version, run.info.run_id


def _champion_version(settings: Settings) -> str:
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    return str(client.get_model_version_by_alias(settings.ml.registered_model_name, "champion").version)


def _version_tags(settings: Settings, version: str) -> dict[str, str]:
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    return client.get_model_version(settings.ml.registered_model_name, version).tags


def _run_tags(settings: Settings, run_id: str) -> dict[str, str]:
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri).get_run(run_id).data.tags


def test_promotion_rule():
    first = decide_promotion(500.0, None)
    assert first.promote and first.incumbent_version is None and first.reason.startswith("first champion")
    assert decide_promotion(499.0, 500.0, incumbent_version="3").promote
    kept = decide_promotion(500.0, 500.0, incumbent_version="3")
    assert not kept.promote and "does not beat" in kept.reason and kept.incumbent_version == "3"
    leaky = decide_promotion(100.0, 500.0, candidate_leaky=True)
    assert not leaky.promote and "leaky" in leaky.reason
    leaky_first = decide_promotion(100.0, None, candidate_leaky=True)
    assert not leaky_first.promote


def test_an_incumbent_that_cannot_be_scored_keeps_the_alias():
    decision = decide_promotion(
        1.0, None, False, "3", "champion v3 could not score these rows: KeyError 'MSRP'"
    )
    assert not decision.promote and decision.incumbent_version == "3"
    assert "stays on v3" in decision.reason and "KeyError 'MSRP'" in decision.reason


def test_alias_stays_on_a_better_incumbent_and_moves_to_a_better_candidate(tmp_path):
    settings = Settings(data_dir=tmp_path)
    exact = _fit(LinearRegression(), ["QUANTITYORDERED"])
    poor = _fit(DummyRegressor(), ["QUANTITYORDERED"])

    assert score_incumbent(settings, X, Y) == (None, None, None)  # no champion yet: nothing to explain
    poor_version, poor_run = _train_and_register(settings, "poor", poor)
    assert (poor_version, _champion_version(settings)) == ("1", "1")
    assert _version_tags(settings, "1")["promotion_decision"] == "promoted"
    assert _version_tags(settings, "1")["promotion_reason"].startswith("first champion")
    assert _run_tags(settings, poor_run)["promotion_incumbent_version"] == "none"

    better_version, better_run = _train_and_register(settings, "exact", exact)
    assert (better_version, _champion_version(settings)) == ("2", "2")
    for tags in (_version_tags(settings, "2"), _run_tags(settings, better_run)):
        assert tags["promotion_decision"] == "promoted" and "beats the champion's" in tags["promotion_reason"]
        assert tags["promotion_incumbent_version"] == "1"

    worse_version, worse_run = _train_and_register(settings, "poor-again", poor)
    assert (worse_version, _champion_version(settings)) == ("3", "2")
    for tags in (_version_tags(settings, "3"), _run_tags(settings, worse_run)):
        assert tags["promotion_decision"] == "kept" and "does not beat" in tags["promotion_reason"]
    experiment = mlflow.get_experiment_by_name(settings.ml.mlflow_experiment)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND  # opens in the model-training view


def test_alias_stays_when_the_incumbent_cannot_score_the_evaluation_rows(tmp_path):
    settings = Settings(data_dir=tmp_path)
    _train_and_register(settings, "on-price", _fit(LinearRegression(), ["PRICEEACH"]))

    # Better on its own rows, but the incumbent needs PRICEEACH, which this evaluation lacks.
    version, run_id = _train_and_register(
        settings, "on-quantity", _fit(LinearRegression(), ["QUANTITYORDERED"])
    )

    assert (version, _champion_version(settings)) == ("2", "1")
    for tags in (_version_tags(settings, "2"), _run_tags(settings, run_id)):
        assert tags["promotion_decision"] == "kept" and tags["promotion_incumbent_version"] == "1"
        assert "stays on v1" in tags["promotion_reason"] and "PRICEEACH" in tags["promotion_reason"]


def _view(settings: Settings) -> dict:
    tags = mlflow.get_experiment_by_name(settings.ml.mlflow_experiment).tags
    return json.loads(tags[SAVED_VIEW_TAG_PREFIX + LEADERBOARD_VIEW_KEY])


def test_the_experiment_carries_the_leaderboard_view_written_once_and_repaired_when_changed(tmp_path):
    settings = Settings(data_dir=tmp_path)
    experiment_id = configure_mlflow(settings)
    first = _view(settings)
    assert first["name"] == "Leaderboard" and isinstance(first["createdAt"], int)
    assert json.loads(first["state"]) == leaderboard_view_state()
    assert configure_mlflow(settings) == experiment_id and _view(settings) == first  # not rewritten
    client = MlflowClient(settings.mlflow_tracking_uri)
    client.set_experiment_tag(experiment_id, SAVED_VIEW_TAG_PREFIX + LEADERBOARD_VIEW_KEY, "not a view")
    configure_mlflow(settings)
    assert json.loads(_view(settings)["state"]) == leaderboard_view_state()


def test_the_leaderboard_address_names_the_view_and_the_model_training_switch(tmp_path):
    local = leaderboard_url(Settings(data_dir=tmp_path), "7")
    assert local == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=leaderboard"
    )
    served = Settings(data_dir=tmp_path, ml=MLSettings(mlflow_tracking_uri="http://mlflow.internal:8080/"))
    assert leaderboard_url(served, "7").startswith("http://mlflow.internal:8080/#/experiments/7/runs?")


def test_the_leaderboard_view_shows_the_metrics_every_model_run_logs(frame, fast_settings):
    outcome = train_models(frame, fast_settings)
    champion = model_metrics(outcome, outcome.champion, 1)
    assert set(LEADERBOARD_METRICS) <= set(champion)
    other = next(result.model for result in outcome.results if result.model != outcome.champion)
    assert set(LEADERBOARD_METRICS) - set(model_metrics(outcome, other, 2)) == {"holdout_rmse"}
