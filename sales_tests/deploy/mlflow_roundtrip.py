"""Both sides of the MLflow check on the production store, each run as a process of its own:

    python -m sales_tests.deploy.mlflow_roundtrip log    # a run with a param, a metric and a model,
                                                         # registered, the champion alias moved to it
    python -m sales_tests.deploy.mlflow_roundtrip read   # the champion read back, model loaded and used

The store is the settings object's (`SALES_ML__MLFLOW_TRACKING_URI`), set up by the same
`configure_mlflow` the training assets call. Each command prints one JSON object.
"""

from __future__ import annotations

import json
import sys

import mlflow
import numpy as np
import sklearn
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

from sales_assets.ml.tracking import configure_mlflow
from sales_assets.settings import Settings

# y = SLOPE * x + 1 exactly, so the model read back must predict SLOPE * 10 + 1 at x = 10.
SLOPE = 3.0
RUN_NAME = "deploy-roundtrip"


def log_and_register(settings: Settings) -> dict:
    configure_mlflow(settings)
    x = np.arange(20, dtype=float).reshape(-1, 1)
    model = LinearRegression().fit(x, SLOPE * x[:, 0] + 1)
    with mlflow.start_run(run_name=RUN_NAME) as run:
        mlflow.log_param("rows", len(x))
        mlflow.log_metric("slope", float(model.coef_[0]))
        # Named requirements: MLflow would otherwise infer them in a subprocess (half a minute).
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
        )
    name = settings.ml.registered_model_name
    version = mlflow.register_model(info.model_uri, name).version
    MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri).set_registered_model_alias(
        name, settings.ml.champion_alias, version
    )
    return {"run_id": run.info.run_id, "version": str(version)}


def read_champion(settings: Settings) -> dict:
    configure_mlflow(settings)
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    name, alias = settings.ml.registered_model_name, settings.ml.champion_alias
    champion = client.get_model_version_by_alias(name, alias)
    run = client.get_run(champion.run_id)
    model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    return {
        "run_id": champion.run_id,
        "version": str(champion.version),
        "run_name": run.info.run_name,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "prediction_at_10": float(model.predict(np.array([[10.0]]))[0]),
    }


if __name__ == "__main__":
    command = {"log": log_and_register, "read": read_champion}[sys.argv[1]]
    print(json.dumps(command(Settings())))
