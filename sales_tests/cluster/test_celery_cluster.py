"""The cluster profile end to end: `refresh_all` through the celery queue (Redis broker, two real workers
started with deploy/celery/worker.sh, the Dagster instance and MLflow on PostgreSQL) against the same
graph run locally (sqlite instance, multiprocess executor) on the same generated export with two cheap
models: the same row counts, SALES totals and champion, and every step executed by a worker.

The workers share this machine's disk: the storage layer that would let them run on separate disks is not
built (docs/DEPLOY.md, "Cluster profile"), so this proves the engine, not the storage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sales_assets.resources import run_executor
from sales_assets.settings import ClusterSettings, MLSettings, Settings
from sales_serving.contract.bundle import read_current, read_metadata
from sales_tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
ROWS = 2000
CHEAP = {
    "SALES_ML__MODELS": json.dumps(["linear_regression", "random_forest_200"]),
    "SALES_ML__CV_FOLDS": "2",
    "SALES_ML__CV_REPEATS": "1",
    "SALES_ML__N_JOBS": "1",
    "SALES_ML__SHAP_ROWS": "100",
    "SALES_ML__TUNING_ITERATIONS": "1",
}


def test_the_cluster_setting_picks_the_celery_executor_on_the_configured_broker():
    assert run_executor(Settings()).name == "multi_or_in_process_executor"
    cluster = Settings(cluster=ClusterSettings(executor="celery", celery_broker="redis://broker:6379/0"))
    executor = run_executor(cluster)
    assert executor.name == "celery"
    config = executor.config_schema.resolve_config({"config": {}}).value["config"]  # what it is given
    assert config["broker"] == "redis://broker:6379/0" and config["backend"] == cluster.cluster.celery_backend


def _refresh(env: dict[str, str], log: Path, *config: str) -> None:
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-j", "refresh_all", "-m", "sales_assets.definitions", *config],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def _outcome(data_dir: Path, model_name: str) -> dict:
    settings = Settings(data_dir=data_dir, ml=MLSettings(registered_model_name=model_name))
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        rows, sales = conn.execute(
            f"SELECT count(*), round(sum(SALES), 2) FROM {settings.warehouse.table}"
        ).fetchone()
    current = read_current(settings.models_dir)
    assert current is not None, f"no CURRENT bundle under {settings.models_dir}"
    champion = read_metadata(settings.models_dir / current)
    return {
        "rows": rows,
        "sales": sales,
        "clean_rows": duckdb.connect()
        .execute(f"SELECT count(*) FROM '{settings.parquet_dir}/**/*.parquet'")
        .fetchone()[0],
        "estimator": champion.estimator,
        "cv_rmse": round(float(champion.metrics["cv"]["rmse_mean"]), 4),
        "holdout_rmse": round(float(champion.metrics["holdout"]["rmse"]), 4),
    }


def _steps_by_worker(env: dict[str, str]) -> dict[str, str]:
    """{step key: celery worker} of the instance's one refresh_all run, from the executor's engine events."""
    script = (
        "import json, dagster as dg\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    run = instance.get_run_records(dg.RunsFilter(job_name='refresh_all'))[0].dagster_run\n"
        "    steps = {}\n"
        "    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):\n"
        "        data = record.dagster_event.event_specific_data\n"
        "        worker = getattr(data, 'metadata', {}).get('Celery worker')\n"
        "        if worker is not None and record.step_key:\n"
        "            steps[record.step_key] = worker.value\n"
        "    print(json.dumps({'status': run.status.value, 'steps': steps}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == dg.DagsterRunStatus.SUCCESS.value
    return answer["steps"]


@pytest.mark.slow
def test_refresh_all_through_the_celery_queue_matches_a_local_run(postgres_env, redis_url, workers, tmp_path):
    raw_csv = tmp_path / "raw" / "sales_export.csv"
    base = {
        **os.environ,
        **CHEAP,
        "PYTHONPATH": str(REPO_ROOT),
        "SALES_SETTINGS_FILE": "",
        "SALES_RAW_CSV": str(raw_csv),
        # One model name per test: the session's MLflow database may hold other tests' registrations.
        "SALES_ML__REGISTERED_MODEL_NAME": f"sales_regressor_{uuid.uuid4().hex[:8]}",
        "SALES_ML__MLFLOW_EXPERIMENT": f"sales_regression_{uuid.uuid4().hex[:8]}",
    }
    base.pop("SALES_ML__MLFLOW_TRACKING_URI", None)
    subprocess.run(
        [str(BIN / "sales-generate"), "--rows", str(ROWS), "--out", str(raw_csv)], env=base, check=True,
        capture_output=True, timeout=300,
    )  # fmt: skip

    local_home = tmp_path / "local_home"
    local_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", local_home)
    local = {**base, "DAGSTER_HOME": str(local_home), "SALES_DATA_DIR": str(tmp_path / "local_data")}

    cluster_home = tmp_path / "cluster_home"
    cluster_home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "postgres" / "dagster.yaml", cluster_home)
    cluster = {
        **base,
        **postgres_env,
        "DAGSTER_HOME": str(cluster_home),
        "SALES_DATA_DIR": str(tmp_path / "cluster_data"),
        "SALES_CLUSTER__EXECUTOR": "celery",
        "SALES_CLUSTER__CELERY_BROKER": f"{redis_url}/0",
        "SALES_CLUSTER__CELERY_BACKEND": f"{redis_url}/1",
    }
    for name in ("w1", "w2"):
        workers.start(name, cluster)
    workers.wait_ready()

    _refresh(cluster, tmp_path / "cluster_run.log")
    # The local run in one process: the same steps and results, without a process start per step.
    in_process = tmp_path / "in_process.yaml"
    in_process.write_text("execution:\n  config:\n    in_process: {}\n")
    _refresh(local, tmp_path / "local_run.log", "-c", str(in_process))

    model = base["SALES_ML__REGISTERED_MODEL_NAME"]
    cluster_outcome = _outcome(tmp_path / "cluster_data", model)
    local_outcome = _outcome(tmp_path / "local_data", model)
    assert cluster_outcome == local_outcome
    assert local_outcome["rows"] > 0.9 * ROWS
    steps = _steps_by_worker(cluster)
    # Every step of the run was a celery task, taken by one of the two workers.
    assert "clean_parquet" in steps and "trained_models" in steps and "onnx_model" in steps, steps
    assert set(steps.values()) <= {f"w1@{os.uname().nodename}", f"w2@{os.uname().nodename}"}, steps
    # Independent steps ran at once, on both workers (each takes one task at a time).
    assert len(set(steps.values())) == 2, steps
