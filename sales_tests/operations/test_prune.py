"""Retention: `sales-admin prune` keeps the newest bundles, CURRENT's and the champion's, deletes the rest
and the MLflow runs (with their artifacts) that no kept bundle or registered version needs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlflow.exceptions import MlflowException

from sales_assets.admin import prune
from sales_assets.settings import Settings


def write_bundle(settings: Settings, version: str, mlflow_run_id: str, model_version: str | None) -> None:
    folder = settings.models_dir / version
    folder.mkdir(parents=True)
    (folder / "pipeline.joblib").write_bytes(b"x" * 1000)
    lineage = {"mlflow_run_id": mlflow_run_id, "mlflow_model_version": model_version}
    (folder / "metadata.json").write_text(json.dumps({"version": version, "lineage": lineage}))


@pytest.fixture
def store(tmp_path):
    """Four bundles (oldest first: champion's, CURRENT's, an old one, the newest) and their MLflow runs,
    plus an old unregistered run and one still running."""
    from mlflow.tracking import MlflowClient

    settings = Settings(data_dir=tmp_path / "data")
    settings.mlflow_dir.mkdir(parents=True)
    client = MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )
    experiment = client.create_experiment(
        "sales_regression", artifact_location=settings.mlflow_artifact_location
    )
    runs = {}
    for name in ("champion", "current", "old", "newest", "stray", "running"):
        run = client.create_run(experiment, run_name=name)
        client.log_text(run.info.run_id, "artifact of " + name, "report.txt")
        if name != "running":
            client.set_terminated(run.info.run_id)
        runs[name] = run.info.run_id
    child = client.create_run(experiment, tags={"mlflow.parentRunId": runs["newest"]})
    client.set_terminated(child.info.run_id)
    runs["newest_child"] = child.info.run_id
    # Model runs are top-level runs tagged with their training run's id (one row per model in the UI).
    model_run = client.create_run(experiment, tags={"training_run_id": runs["newest"]})
    client.set_terminated(model_run.info.run_id)
    runs["newest_model"] = model_run.info.run_id
    model = settings.ml.registered_model_name
    client.create_registered_model(model)
    version = client.create_model_version(model, f"runs:/{runs['champion']}/model", run_id=runs["champion"])
    client.set_registered_model_alias(model, settings.ml.champion_alias, version.version)

    write_bundle(settings, "20250101T000000Z-aaaaaaaa", runs["champion"], str(version.version))
    write_bundle(settings, "20250102T000000Z-bbbbbbbb", runs["current"], None)
    write_bundle(settings, "20250103T000000Z-cccccccc", runs["old"], None)
    write_bundle(settings, "20250104T000000Z-dddddddd", runs["newest"], None)
    (settings.models_dir / "CURRENT").write_text("20250102T000000Z-bbbbbbbb\n")
    return settings, client, runs


def test_prune_keeps_newest_current_and_champion(store):
    settings, client, runs = store
    artifacts = {name: client.get_run(run_id).info.artifact_uri for name, run_id in runs.items()}

    pruned = prune(settings, keep=1)

    assert pruned.bundles_deleted == ["20250103T000000Z-cccccccc"]
    assert sorted(p.name for p in settings.models_dir.iterdir()) == [
        "20250101T000000Z-aaaaaaaa",
        "20250102T000000Z-bbbbbbbb",
        "20250104T000000Z-dddddddd",
        "CURRENT",
    ]
    assert sorted(pruned.mlflow_runs_deleted) == sorted([runs["old"], runs["stray"]])
    for name in ("old", "stray"):
        # `mlflow gc` removed the deleted runs for good: no row is left to grow the store.
        with pytest.raises(MlflowException, match="not found"):
            client.get_run(runs[name])
        assert not (settings.mlflow_dir / artifacts[name].split("/mlflow/", 1)[1]).exists()
    for name in ("champion", "current", "newest", "newest_child", "newest_model", "running"):
        assert client.get_run(runs[name]).info.lifecycle_stage == "active", name
    assert pruned.bytes_freed > 1000
    assert pruned.line().startswith("prune: kept 3 bundle(s), deleted 1; deleted 2 old MLflow run(s)")


def test_prune_keeps_the_default_number_from_settings(store, monkeypatch):
    settings, _, _ = store
    assert prune(settings).bundles_deleted == []  # keep_bundles defaults to 5: nothing to delete yet


def test_sales_admin_prune_command(tmp_path, project_env):
    env = {**project_env, "SALES_DATA_DIR": str(tmp_path / "empty")}
    done = subprocess.run(
        [sys.executable, "-m", "sales_assets.admin", "prune"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("prune: kept 0 bundle(s), deleted 0")


@pytest.fixture
def foreign_registry(tmp_path_factory):
    """A process-wide registry URI pointing at another store (as training sets one), restored after."""
    import mlflow

    other = tmp_path_factory.mktemp("other-store") / "mlflow.db"
    before = mlflow.get_registry_uri()
    mlflow.set_registry_uri(f"sqlite:///{other}")
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{other}").create_registered_model("sales_regressor")
    yield
    mlflow.set_registry_uri(before)


def test_prune_reads_the_registry_of_its_own_store_whatever_the_process_set(foreign_registry, store):
    settings, client, runs = store
    pruned = prune(settings, keep=1)
    # The champion's run is registered in this store only: a prune against the other registry would delete it.
    assert runs["champion"] not in pruned.mlflow_runs_deleted
    assert sorted(pruned.mlflow_runs_deleted) == sorted([runs["old"], runs["stray"]])
