import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from sales_assets.ml.registry import (
    decide_promotion,
    log_model_run,
    parent_run,
    register_champion,
    score_incumbent,
)
from sales_assets.settings import Settings


def test_promotion_rule():
    assert decide_promotion(500.0, None).promote
    assert decide_promotion(499.0, 500.0, incumbent_version="3").promote
    kept = decide_promotion(500.0, 500.0, incumbent_version="3")
    assert not kept.promote and "does not beat" in kept.reason and kept.incumbent_version == "3"
    leaky = decide_promotion(100.0, 500.0, candidate_leaky=True)
    assert not leaky.promote and "leaky" in leaky.reason


def test_alias_moves_only_to_a_better_model_and_the_decision_is_recorded(tmp_path):
    settings = Settings(data_dir=tmp_path)
    x = pd.DataFrame({"QUANTITYORDERED": np.arange(1.0, 41.0)})
    y = 3.0 * x["QUANTITYORDERED"].to_numpy()
    good = Pipeline([("model", LinearRegression())]).fit(x, y)
    poor = Pipeline([("model", DummyRegressor())]).fit(x, y)
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    name = settings.ml.registered_model_name

    versions = []
    for label, pipeline in [("good", good), ("poor", poor)]:
        with parent_run(settings, f"parent-{label}", {"dagster_run_id": label}):
            _, uri = log_model_run(label, pipeline, {"kind": label}, {"cv_rmse_mean": 1.0}, {}, x.head(3))
            incumbent_version, incumbent_rmse, why_not = score_incumbent(settings, x, y)
            candidate_rmse = float(np.sqrt(np.mean((pipeline.predict(x) - y) ** 2)))
            decision = decide_promotion(candidate_rmse, incumbent_rmse, False, incumbent_version, why_not)
            versions.append(register_champion(settings, uri, decision, {"dagster_run_id": label}))

    assert versions == ["1", "2"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert client.get_model_version(name, "1").tags["promotion_decision"] == "promoted"
    second = client.get_model_version(name, "2").tags
    assert second["promotion_decision"] == "kept" and "does not beat" in second["promotion_reason"]
    assert mlflow.get_experiment_by_name(settings.ml.mlflow_experiment) is not None
