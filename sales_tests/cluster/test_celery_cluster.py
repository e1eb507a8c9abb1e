"""The cluster profile end to end: `refresh_all` through the celery queue (Redis broker, two real workers
started with deploy/celery/worker.sh, the Dagster instance and MLflow on PostgreSQL), then two segments
as a `dagster job backfill` through the daemon's queue, against the same graph and segments run locally
(sqlite instance, one process) on the same generated export with two cheap models: the same row counts,
SALES totals, champion and its scores, and segment reports; every step executed by a worker, and the
segments' runs spread over both workers.

The workers share this machine's disk: the storage layer that would let them run on separate disks is not
built (docs/DEPLOY.md, "Cluster profile"), so this proves the engine, not the storage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from sales_assets.resources import run_executor
from sales_assets.settings import ClusterSettings, MLSettings, Settings
from sales_serving.contract.bundle import read_current, read_metadata
from sales_tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
ROWS = 2000
# The total (which also writes the hierarchy) and one product line of the generated export.
SEGMENTS = ["ALL", "Classic Cars"]
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


def _steps_by_worker(env: dict[str, str], job: str) -> list[dict]:
    """[{status, partition, steps: {step key: celery worker}}] of the instance's runs of `job`, from the
    celery executor's engine events."""
    script = (
        "import json, sys, dagster as dg\n"
        "runs = []\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    for record in instance.get_run_records(dg.RunsFilter(job_name=sys.argv[1])):\n"
        "        run, steps = record.dagster_run, {}\n"
        "        for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):\n"
        "            worker = getattr(event.dagster_event.event_specific_data, 'metadata', {}).get('Celery worker')\n"
        "            if worker is not None and event.step_key:\n"
        "                steps[event.step_key] = worker.value\n"
        "        runs.append({'status': run.status.value, 'partition': run.tags.get('dagster/partition'),\n"
        "                     'steps': steps})\n"
        "print(json.dumps(runs))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, job],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _segment_reports(data_dir: Path, segments: list[str]) -> dict[str, dict]:
    """The risk report of each segment without its timing (`seconds`), keyed by segment."""
    folder = Settings(data_dir=data_dir).timeseries_dir
    reports = {}
    for segment in segments:
        report = json.loads((folder / f"sales_ts_risk_{segment.replace(' ', '_')}_ALL.json").read_text())
        report.pop("seconds")
        reports[segment] = report
    return reports


def _backfill_through_the_queue(env: dict[str, str], segments: list[str], log: Path) -> list[dict]:
    """`dagster job backfill` of `segments` with the daemon running: one queued run per segment."""
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "sales_assets.definitions"],
        env=env, cwd=REPO_ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        done = subprocess.run(
            [str(BIN / "dagster"), "job", "backfill", "-j", "ts_risk_reports_job", "--partitions",
             ",".join(segments), "--noprompt", "-m", "sales_assets.definitions"],
            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        deadline = time.monotonic() + 600
        while True:
            runs = _steps_by_worker(env, "ts_risk_reports_job")
            ended = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            if len(ended) == len(segments):
                return runs
            assert daemon.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"backfill runs not ended: {runs}\n{log.read_text()[-3000:]}"
            time.sleep(2)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)


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

    # The segments: a backfill through the daemon's queue, one run per segment, spread over the workers;
    # locally the backfill command, all segments in one run in one process.
    backfill_runs = _backfill_through_the_queue(cluster, SEGMENTS, tmp_path / "daemon.log")
    done = subprocess.run(
        [sys.executable, "-m", "sales_assets.timeseries.backfill",
         *[argument for segment in SEGMENTS for argument in ("--segment", segment)]],
        env=local, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    model = base["SALES_ML__REGISTERED_MODEL_NAME"]
    cluster_outcome = _outcome(tmp_path / "cluster_data", model)
    local_outcome = _outcome(tmp_path / "local_data", model)
    assert cluster_outcome == local_outcome
    assert local_outcome["rows"] > 0.9 * ROWS
    [refresh] = _steps_by_worker(cluster, "refresh_all")
    assert refresh["status"] == "SUCCESS"
    steps = refresh["steps"]
    # Every step of the run was a celery task, taken by one of the two workers.
    assert "clean_parquet" in steps and "trained_models" in steps and "onnx_model" in steps, steps
    node = os.uname().nodename
    assert set(steps.values()) <= {f"w1@{node}", f"w2@{node}"}, steps
    # Independent steps ran at once, on both workers (each takes one task at a time).
    assert len(set(steps.values())) == 2, steps

    assert _segment_reports(tmp_path / "cluster_data", SEGMENTS) == _segment_reports(
        tmp_path / "local_data", SEGMENTS
    )
    assert sorted(r["partition"] for r in backfill_runs) == sorted(SEGMENTS)
    assert all(r["status"] == "SUCCESS" for r in backfill_runs), backfill_runs
    # One run per segment, at once: each run's one step on its own worker.
    assert {r["steps"]["ts_risk_reports"] for r in backfill_runs} == {f"w1@{node}", f"w2@{node}"}, (
        backfill_runs
    )
