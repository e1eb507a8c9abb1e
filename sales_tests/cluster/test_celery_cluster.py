"""The cluster profile end to end: `refresh_all` through the celery queue (Redis broker, real workers
started with deploy/celery/worker.sh, each a host of its own: own mount, PID and UTS namespaces and a
private tmpfs over its local folders; the Dagster instance on PostgreSQL, MLflow a tracking server on it).
One host is killed while it runs `trained_models`: the run fails naming the step and the worker, a
replacement host joins and the re-execution from the failure succeeds. Then two segments as a `dagster
job backfill` through the daemon's queue. All against the same graph and segments run locally (sqlite
instance, one process) on the same generated export with two cheap models: the same row counts, SALES
totals, champion and its scores, and segment reports; every step executed by a live worker, and the
segments' runs spread over both live hosts.

What still relies on a shared disk: the data folder (minus `mlflow/`) and the export, because the storage
layer that would put them on an object store is not built (docs/DEPLOY.md, "Cluster profile"). Everything
else a worker writes locally stays on its host, and the test shows it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from sales_assets.cluster import CELERY_CONFIG_SOURCE, StepWatch
from sales_assets.resources import run_executor
from sales_assets.settings import ClusterSettings, MLSettings, Settings
from sales_serving.contract.bundle import read_current, read_metadata
from sales_tests.cluster.services import Workers
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
    # The runs and the workers (deploy/celery/celery.yaml) use the same celery settings.
    assert config["config_source"] == CELERY_CONFIG_SOURCE
    workers = yaml.safe_load((REPO_ROOT / "deploy" / "celery" / "celery.yaml").read_text())
    assert workers["execution"]["config"]["config_source"] == CELERY_CONFIG_SOURCE


def test_a_step_started_on_a_worker_that_stopped_answering_is_failed_after_the_setting(redis_url):
    """The run's watch on a real Redis result backend, with no worker: a queued step is left alone, a
    finished one forgotten, and a step STARTED on a worker that answers nothing is marked failed
    (`WorkerLostError`, naming the step and the worker) once `lost_after` seconds have passed, not before."""
    from celery import Celery, states
    from celery.exceptions import WorkerLostError

    app = Celery("watch-test", broker=f"{redis_url}/2", backend=f"{redis_url}/3")
    watch = StepWatch(lost_after=30)
    ids = {state: uuid.uuid4().hex for state in ("queued", "done", "running")}
    watch.submitted(ids["queued"], "clean_parquet")
    watch.submitted(ids["done"], "raw_csv")
    watch.submitted(ids["running"], "trained_models")
    app.backend.store_result(ids["done"], [], states.SUCCESS)
    app.backend.store_result(ids["running"], {"pid": 7, "hostname": "w9@gone-host"}, states.STARTED)

    assert watch.check(app, now=1000.0) == []
    assert set(watch.steps) == {ids["queued"], ids["running"]}
    assert watch.check(app, now=1029.0) == []
    [message] = watch.check(app, now=1031.0)
    assert '"trained_models"' in message and "w9@gone-host" in message and "30 s" in message
    with pytest.raises(WorkerLostError, match="trained_models"):
        app.AsyncResult(ids["running"]).get(timeout=5)
    assert set(watch.steps) == {ids["queued"]}
    assert app.AsyncResult(ids["queued"]).state == states.PENDING


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
    """[{run_id, status, partition, steps: {step key: celery worker}, succeeded: [step keys]}] of the
    instance's runs of `job`, from the celery executor's engine events."""
    script = (
        "import json, sys, dagster as dg\n"
        "runs = []\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    for record in instance.get_run_records(dg.RunsFilter(job_name=sys.argv[1])):\n"
        "        run, steps = record.dagster_run, {}\n"
        "        succeeded = [e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)]\n"
        "        for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):\n"
        "            worker = getattr(event.dagster_event.event_specific_data, 'metadata', {}).get('Celery worker')\n"
        "            if worker is not None and event.step_key:\n"
        "                steps[event.step_key] = worker.value\n"
        "        runs.append({'run_id': run.run_id, 'status': run.status.value,\n"
        "                     'partition': run.tags.get('dagster/partition'), 'steps': steps,\n"
        "                     'succeeded': succeeded})\n"
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


@contextlib.contextmanager
def _daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run`, as a deployment keeps it up: it starts queued runs, and its run monitoring
    gives back the pool slots a run still held when it ended (`free_slots_after_run_end_seconds` in
    deploy/postgres/dagster.yaml), such as those of a step whose worker died."""
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "sales_assets.definitions"],
        env=env, cwd=REPO_ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield daemon
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)


def _backfill_through_the_queue(
    env: dict[str, str], segments: list[str], daemon: subprocess.Popen, log: Path
) -> list[dict]:
    """`dagster job backfill` of `segments` with the daemon running: one queued run per segment."""
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


def _rerun_from_failure(env: dict[str, str], run_id: str) -> dict:
    """Re-execute run `run_id` from its failure (its failed and skipped steps, as the UI's "Re-execute from
    failure"), through the same executor: {status, run_id} of the new run."""
    script = (
        "import json, sys, dagster as dg\n"
        "job = dg.build_reconstructable_job('sales_assets.definitions', 'resolved_job', ('refresh_all',))\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    options = dg.ReexecutionOptions.from_failure(sys.argv[1], instance)\n"
        "    with dg.execute_job(job, instance, reexecution_options=options, raise_on_error=False) as result:\n"
        "        print(json.dumps({'status': result.success, 'run_id': result.run_id}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, run_id], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Waits (in one process, polling the instance) until a celery worker reports it executes `step` in the newest
# run of `job`, then prints that worker's name. The workers' own logs say it only when the step ends
# (celery buffers what a pool process prints).
_WAIT_FOR_STEP = """
import sys, time, dagster as dg
job, step = sys.argv[1], sys.argv[2]
with dg.DagsterInstance.get() as instance:
    while True:
        records = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)
        for record in instance.all_logs(records[0].dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT) if records else []:
            worker = getattr(record.dagster_event.event_specific_data, "metadata", {}).get("Celery worker")
            if worker is not None and record.step_key == step:
                print(worker.value, flush=True)
                sys.exit(0)
        time.sleep(0.2)
"""


def _refresh_killing_the_host_of(step: str, env: dict[str, str], workers: Workers, log: Path) -> str:
    """`refresh_all` through the queue, with the host whose worker takes `step` killed as soon as it
    starts it: the run's command must end failed. Returns the name of the killed worker."""
    with log.open("w") as output:
        run = subprocess.Popen(
            [str(BIN / "dagster"), "job", "execute", "-j", "refresh_all", "-m", "sales_assets.definitions"],
            env=env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            started = subprocess.run(
                [sys.executable, "-c", _WAIT_FOR_STEP, "refresh_all", step], env=env, cwd=REPO_ROOT,
                capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            assert started.returncode == 0, started.stderr[-3000:]
            worker = started.stdout.strip().splitlines()[-1]
            [victim] = [name for name in workers.processes if workers.worker_name(name) == worker]
            workers.kill(victim)
            assert run.wait(timeout=900) != 0, log.read_text()[-3000:]
        finally:
            if run.poll() is None:
                run.kill()
    return victim


@pytest.mark.slow
def test_refresh_all_through_the_queue_on_separate_hosts_survives_a_dead_host_and_matches_a_local_run(
    postgres_env, redis_url, mlflow_server, workers, tmp_path
):
    stack = contextlib.ExitStack()
    with stack:
        _cluster_and_local_runs(postgres_env, redis_url, mlflow_server, workers, tmp_path, stack)


def _cluster_and_local_runs(postgres_env, redis_url, mlflow_server, workers, tmp_path, stack):
    """`refresh_all` through the queue on two worker hosts (own namespaces, private tmpfs); the host running
    `trained_models` is killed mid-step: the run fails naming the step and the worker, a replacement host
    joins, and the re-execution from the failure succeeds. Then the segments as a daemon backfill. Every
    result equals a local run's on the same export; what a worker wrote locally stayed on its host."""
    tracking_uri, artifact_store = mlflow_server
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
    cluster_data = tmp_path / "cluster_data"
    cluster = {
        **base,
        **postgres_env,
        "DAGSTER_HOME": str(cluster_home),
        "SALES_DATA_DIR": str(cluster_data),
        "SALES_ML__MLFLOW_TRACKING_URI": tracking_uri,
        "SALES_CLUSTER__EXECUTOR": "celery",
        "SALES_CLUSTER__CELERY_BROKER": f"{redis_url}/0",
        "SALES_CLUSTER__CELERY_BACKEND": f"{redis_url}/1",
        "SALES_CLUSTER__WORKER_LOST_SECONDS": "10",
    }
    for name in ("w1", "w2"):
        workers.start(name, cluster)
    daemon = stack.enter_context(_daemon(cluster, tmp_path / "daemon.log"))
    workers.wait_ready()

    victim = _refresh_killing_the_host_of("trained_models", cluster, workers, tmp_path / "cluster_run.log")
    failed_log = (tmp_path / "cluster_run.log").read_text()
    assert "WorkerLostError" in failed_log and '"trained_models"' in failed_log, failed_log[-4000:]
    assert workers.worker_name(victim) in failed_log, failed_log[-4000:]
    [failed] = _steps_by_worker(cluster, "refresh_all")
    assert failed["status"] == "FAILURE"
    assert "trained_models" not in failed["succeeded"], failed  # killed mid-step, not after it
    # Before the kill, independent steps ran at once on both hosts (each worker takes one task at a time).
    assert set(failed["steps"].values()) == {workers.worker_name("w1"), workers.worker_name("w2")}, failed
    # A replacement host joins; the re-execution runs the failed step and what it skipped.
    workers.start("w3", cluster)
    workers.wait_ready()
    rerun = _rerun_from_failure(cluster, failed["run_id"])
    assert rerun["status"] is True, rerun
    runs = {run["run_id"]: run for run in _steps_by_worker(cluster, "refresh_all")}
    assert runs[rerun["run_id"]]["status"] == "SUCCESS"
    rerun_steps = runs[rerun["run_id"]]["steps"]
    assert "trained_models" in rerun_steps and "onnx_model" in rerun_steps and "raw_csv" not in rerun_steps
    alive = {workers.worker_name(n) for n in ("w1", "w2", "w3") if n != victim}
    assert set(rerun_steps.values()) <= alive, rerun_steps

    # The local run in one process: the same steps and results, without a process start per step.
    in_process = tmp_path / "in_process.yaml"
    in_process.write_text("execution:\n  config:\n    in_process: {}\n")
    _refresh(local, tmp_path / "local_run.log", "-c", str(in_process))

    # The segments: a backfill through the daemon's queue, one run per segment, spread over the live
    # hosts; locally the backfill command, all segments in one run in one process.
    backfill_runs = _backfill_through_the_queue(cluster, SEGMENTS, daemon, tmp_path / "daemon.log")
    stack.close()  # the daemon
    done = subprocess.run(
        [sys.executable, "-m", "sales_assets.timeseries.backfill",
         *[argument for segment in SEGMENTS for argument in ("--segment", segment)]],
        env=local, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    model = base["SALES_ML__REGISTERED_MODEL_NAME"]
    assert _outcome(cluster_data, model) == _outcome(tmp_path / "local_data", model)
    assert _outcome(cluster_data, model)["rows"] > 0.9 * ROWS
    assert _segment_reports(cluster_data, SEGMENTS) == _segment_reports(tmp_path / "local_data", SEGMENTS)
    assert sorted(r["partition"] for r in backfill_runs) == sorted(SEGMENTS)
    assert all(r["status"] == "SUCCESS" for r in backfill_runs), backfill_runs
    # One run per segment, at once: each run's one step on its own live host.
    assert {r["steps"]["ts_risk_reports"] for r in backfill_runs} == alive, backfill_runs

    # What each host wrote locally stayed there: MLflow went to the server (nothing in the shared data
    # folder's mlflow/), and each live host's private Dagster home holds files (its steps' compute logs)
    # that neither the other host nor the run's host sees.
    assert not [p for p in (cluster_data / "mlflow").rglob("*") if p.is_file()]
    assert any(p.name == "MLmodel" for p in artifact_store.rglob("*")), "no model reached the artifact store"
    on_the_run_host = sorted(str(p.relative_to(cluster_home)) for p in cluster_home.rglob("*") if p.is_file())
    seen = {}
    for name in sorted(alive_names := [n for n in ("w1", "w2", "w3") if n != victim]):
        seen[name] = set(workers.listing(name, cluster_home)) - {"dagster.yaml"}
        assert seen[name], f"host {name} wrote nothing in its private Dagster home"
        assert not seen[name] & set(on_the_run_host), (name, on_the_run_host)
    first, second = alive_names
    assert not seen[first] & seen[second], seen
