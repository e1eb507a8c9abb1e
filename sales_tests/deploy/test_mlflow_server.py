"""MLflow as a server: with a tracking server's URI, training sets no artifact location of its own, so the
server's proxied artifact store (`--artifacts-destination`; s3:// in a deployment, a folder here) receives
every artifact, and a second "host" (another data folder, another process) loads the champion by alias.
A real `mlflow server` on a free loopback port; nothing of MLflow lands in either data folder."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sales_assets.settings import MLSettings, Settings
from sales_tests.cluster.services import mlflow_server as running_mlflow_server
from sales_tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


def test_a_tracking_server_gets_no_artifact_location_and_a_local_store_keeps_its_own(tmp_path):
    for uri in ("http://mlflow.internal:5000", "https://mlflow.example.com", "databricks"):
        settings = Settings(data_dir=tmp_path, ml=MLSettings(mlflow_tracking_uri=uri))
        assert settings.mlflow_tracking_is_server and settings.mlflow_artifact_location is None
    local = Settings(data_dir=tmp_path)
    assert not local.mlflow_tracking_is_server
    assert local.mlflow_artifact_location == (tmp_path.resolve() / "mlflow" / "artifacts").as_uri()


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(tracking URI, artifact destination folder) of a running `mlflow server` with proxied artifacts."""
    destination = tmp_path / "artifact-store"
    with running_mlflow_server(tmp_path, f"sqlite:///{tmp_path / 'server.db'}", destination) as uri:
        yield uri, destination


def _roundtrip(command: str, data_dir: Path, uri: str) -> dict:
    env = {
        "PATH": str(BIN),
        "PYTHONPATH": str(REPO_ROOT),
        "SALES_DATA_DIR": str(data_dir),
        "SALES_SETTINGS_FILE": "",
        "SALES_ML__MLFLOW_TRACKING_URI": uri,
        "HOME": str(data_dir.parent),
    }
    done = subprocess.run(
        [sys.executable, "-m", "sales_tests.deploy.mlflow_roundtrip", command],
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_artifacts_reach_the_servers_store_and_another_host_loads_the_champion(mlflow_server, tmp_path):
    from mlflow import MlflowClient

    uri, destination = mlflow_server
    first_host, second_host = tmp_path / "host-a" / "data", tmp_path / "host-b" / "data"

    logged = _roundtrip("log", first_host, uri)
    champion = _roundtrip("read", second_host, uri)

    assert (champion["version"], champion["run_id"]) == (logged["version"], logged["run_id"])
    assert champion["prediction_at_10"] == pytest.approx(31.0)
    experiment = MlflowClient(uri).get_experiment_by_name(Settings().ml.mlflow_experiment)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server's proxied store
    stored = [p.name for p in destination.rglob("*") if p.is_file()]
    assert "MLmodel" in stored, stored
    for data in (first_host, second_host):
        assert not (data / "mlflow").exists()
