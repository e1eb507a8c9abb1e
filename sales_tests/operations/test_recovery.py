"""Recovery of runs whose process is gone, on a real sqlite Dagster instance and a real MLflow store: the run
is marked failed (canceled when it was canceling), its pool slot is freed, its MLflow runs end FAILED;
a live run is left alone, and a step worker exits when its run's process dies."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.test_utils import create_run_for_test

from sales_assets.recovery import (
    Recovery,
    cancel_interrupted_runs,
    dead_runs,
    recover_dead_runs,
    watch_parent,
)
from sales_assets.resources import DUCKDB_WRITER_POOL
from sales_assets.settings import Settings
from sales_tests.conftest import REPO_ROOT


@pytest.fixture
def instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(DUCKDB_WRITER_POOL, 1)
        yield instance


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def started_run(instance, pid: int, status=dg.DagsterRunStatus.STARTED, claim_slot=True) -> dg.DagsterRun:
    """A run in progress whose executor reported process `pid`, holding the writer pool's slot."""
    run = create_run_for_test(instance, job_name="__ASSET_JOB", status=status)
    instance.report_engine_event("executing", run, EngineEventData.in_process(pid))
    if not claim_slot:
        return run
    claim = instance.event_log_storage.claim_concurrency_slot(DUCKDB_WRITER_POOL, run.run_id, "duckdb_table")
    assert claim.is_claimed
    return run


def active_slots(instance) -> int:
    return instance.event_log_storage.get_concurrency_info(DUCKDB_WRITER_POOL).active_slot_count


def mlflow_run(settings: Settings, dagster_run_id: str) -> str:
    import mlflow

    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    client = mlflow.tracking.MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )
    experiment = client.create_experiment(
        "sales_regression", artifact_location=settings.mlflow_artifact_location
    )
    return client.create_run(experiment, tags={"dagster_run_id": dagster_run_id}).info.run_id


def test_a_dead_run_is_failed_its_slot_freed_and_its_mlflow_runs_ended(instance, tmp_path):
    from mlflow.tracking import MlflowClient

    settings = Settings(data_dir=tmp_path / "data")
    dead = started_run(instance, dead_pid())
    tracked = mlflow_run(settings, dead.run_id)
    assert active_slots(instance) == 1

    recovery = recover_dead_runs(instance, settings)

    assert recovery.failed == [dead.run_id]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert active_slots(instance) == 0
    assert recovery.mlflow_runs_ended == 1
    client = MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )
    assert client.get_run(tracked).info.status == "FAILED"
    assert recovery.line().startswith("recovery: 1 run(s) whose process was gone")
    # Recovered once: the next pass finds nothing.
    assert not recover_dead_runs(instance, settings)


def test_a_live_run_is_left_alone(instance):
    live = started_run(instance, os.getpid())
    assert dead_runs(instance) == []
    assert not recover_dead_runs(instance)
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    assert active_slots(instance) == 1


def test_a_reused_pid_does_not_keep_a_dead_run_alive(instance):
    """The pid now belongs to a process that started after the run reported it (the kernel reused it)."""
    run = started_run(instance, os.getpid())
    assert dead_runs(instance, now=time.time()) == []
    from sales_assets import recovery as module

    original = module.process_alive
    try:
        module.process_alive = lambda pid, not_after: original(pid, not_after - 10**9)
        assert [r.run_id for r in dead_runs(instance)] == [run.run_id]
    finally:
        module.process_alive = original


def test_a_dead_canceling_run_ends_canceled(instance):
    run = started_run(instance, dead_pid(), status=dg.DagsterRunStatus.CANCELING)
    recovery = recover_dead_runs(instance)
    assert recovery.canceled == [run.run_id]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
    assert active_slots(instance) == 0


def test_a_run_that_never_reported_its_process_is_failed_after_the_start_timeout(instance):
    run = create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTING)
    assert dead_runs(instance) == []
    later = time.time() + 3600
    assert [r.run_id for r in dead_runs(instance, now=later)] == [run.run_id]


def test_cancel_after_ctrl_c_marks_the_processes_runs_canceled(instance):
    pid = dead_pid()
    interrupted = started_run(instance, pid)
    other = started_run(instance, os.getpid(), claim_slot=False)
    before = create_run_for_test(
        instance, job_name="ts_risk_reports_job", status=dg.DagsterRunStatus.NOT_STARTED
    )
    since = time.time()
    time.sleep(0.01)
    # Created by the interrupted process, interrupted before it started (it never reported a process).
    created = create_run_for_test(
        instance, job_name="ts_risk_reports_job", status=dg.DagsterRunStatus.NOT_STARTED
    )
    assert sorted(cancel_interrupted_runs(instance, pid, since=since)) == sorted(
        [interrupted.run_id, created.run_id]
    )
    assert active_slots(instance) == 0
    assert instance.get_run_by_id(created.run_id).status == dg.DagsterRunStatus.CANCELED
    assert instance.get_run_by_id(before.run_id).status == dg.DagsterRunStatus.NOT_STARTED
    assert instance.get_run_by_id(interrupted.run_id).status == dg.DagsterRunStatus.CANCELED
    assert instance.get_run_by_id(other.run_id).status == dg.DagsterRunStatus.STARTED


def test_recovery_line_says_what_was_done():
    line = Recovery(failed=["3f2a9c1b-x"], mlflow_runs_ended=2).line()
    assert line == (
        "recovery: 1 run(s) whose process was gone (3f2a9c1b): 1 marked failed, pool slots freed; "
        "2 MLflow run(s) ended FAILED"
    )


def _worker_with_watchdog(ready) -> None:
    watch_parent()
    ready.set()
    time.sleep(120)


def _parent_that_dies(pid_file: str) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    worker = context.Process(target=_worker_with_watchdog, args=(ready,))
    worker.start()
    ready.wait(60)
    with open(pid_file, "w") as handle:  # plain file: a Queue's feeder thread would die with os._exit
        handle.write(str(worker.pid))
    os._exit(0)  # the run's process dies without cleaning up, as under kill -9


def test_a_step_worker_exits_when_its_runs_process_dies(tmp_path):
    import psutil

    pid_file = tmp_path / "worker.pid"
    parent = multiprocessing.get_context("spawn").Process(target=_parent_that_dies, args=(str(pid_file),))
    parent.start()
    parent.join(timeout=180)
    worker_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(worker_pid) and psutil.Process(worker_pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the orphaned step worker is still running"
        time.sleep(0.2)


@pytest.mark.parametrize(
    "command",
    [
        [str(Path(sys.executable).with_name("sales-dagster")), "--version"],
        [sys.executable, "-m", "sales_assets.admin", "recover"],
    ],
    ids=["sales-dagster", "sales-admin recover"],
)
def test_commands_recover_dead_runs_first_and_say_so_in_one_line(instance, tmp_path, command):
    dead = started_run(instance, dead_pid())
    env = {**os.environ, "SALES_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    recovery_lines = [line for line in done.stdout.splitlines() if line.startswith("recovery: ")]
    assert len(recovery_lines) == 1 and dead.run_id[:8] in recovery_lines[0], done.stdout
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert active_slots(instance) == 0
