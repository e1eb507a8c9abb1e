"""Recovery of runs whose process is gone, on a real sqlite Dagster instance and a real MLflow store: the run
is marked failed (canceled when it was canceling), its pool slot is freed, its MLflow runs end FAILED;
a live run is left alone, and a step worker exits when its run's process dies. Only what names this host is
judged: a run or temp name of another host (or an `unshare` namespace standing in for one) is never touched.
The sweep removes the bundle's `.partial` folder a kill left, reports what a read-only folder keeps, and an
unreachable MLflow store is one line, not a traceback."""

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

from sales_assets.io import owned_temp_name
from sales_assets.recovery import (
    OWNER_TAG,
    Recovery,
    Swept,
    cancel_interrupted_runs,
    dead_runs,
    record_run_owner,
    recover_dead_runs,
    recovering,
    sweep_debris,
    watch_parent,
)
from sales_assets.resources import DUCKDB_WRITER_POOL
from sales_assets.settings import Settings
from sales_serving.contract import owner as host
from sales_serving.contract.owner import Owner
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


OTHER_HOST = "0badf00d"


def started_run(
    instance, pid: int, status=dg.DagsterRunStatus.STARTED, claim_slot=True, owner: Owner | None = None
) -> dg.DagsterRun:
    """A run in progress whose executor reported process `pid` of this host (or `owner`, when given),
    holding the writer pool's slot."""
    owner = owner or Owner.this_process(pid)
    run = create_run_for_test(instance, job_name="__ASSET_JOB", status=status, tags={OWNER_TAG: str(owner)})
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
    original = host.pid_alive
    try:
        host.pid_alive = lambda pid, not_after: original(pid, not_after - 10**9)
        assert [r.run_id for r in dead_runs(instance)] == [run.run_id]
    finally:
        host.pid_alive = original


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


def test_cancel_after_ctrl_c_covers_a_run_of_the_commands_child_that_dagster_failed_as_interrupted(instance):
    """The quickstart runs `dagster job execute` as its child: the run reports the child's pid, and
    Dagster ends an interrupted run failed ("interrupted"); the command's cancel marks it canceled."""
    command_pid = dead_pid()
    before = started_run(instance, dead_pid(), claim_slot=False)
    instance.report_run_failed(before, message="Execution was interrupted unexpectedly.")
    since = time.time()
    time.sleep(0.01)
    interrupted = started_run(instance, dead_pid(), claim_slot=False)
    instance.report_run_failed(interrupted, message="Execution was interrupted unexpectedly.")
    crashed = started_run(instance, dead_pid(), claim_slot=False)
    instance.report_run_failed(crashed, message="Step duckdb_table failed.")

    assert cancel_interrupted_runs(instance, command_pid, since=since) == [interrupted.run_id]
    assert instance.get_run_by_id(interrupted.run_id).status == dg.DagsterRunStatus.CANCELED
    assert instance.get_run_by_id(crashed.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(before.run_id).status == dg.DagsterRunStatus.FAILURE


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


# ---- only what names this host ----------------------------------------------------------------------------


def test_a_run_of_another_host_or_one_whose_process_is_unknown_is_never_judged(instance):
    """Its pid is dead here, but it is another host's pid (or nobody recorded which host ran it)."""
    elsewhere = started_run(instance, dead_pid(), owner=Owner(OTHER_HOST, host.boot_id(), dead_pid()))
    untagged = create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event("executing", untagged, EngineEventData.in_process(dead_pid()))
    assert dead_runs(instance, now=time.time() + 3600) == []
    assert not recover_dead_runs(instance)
    assert cancel_interrupted_runs(instance, Owner.parse(elsewhere.tags[OWNER_TAG]).pid) == []
    assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.STARTED
    assert active_slots(instance) == 1


def test_a_run_of_an_earlier_boot_of_this_host_is_dead_whatever_its_pid(instance):
    earlier_boot = "f" * 8 if host.boot_id() != "f" * 8 else "e" * 8
    run = started_run(instance, os.getpid(), owner=Owner(host.host_id(), earlier_boot, os.getpid()))
    assert [r.run_id for r in dead_runs(instance)] == [run.run_id]


def test_a_step_records_its_runs_process_only_when_it_can_prove_it(instance):
    mine = create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event("executing", mine, EngineEventData.in_process(os.getpid()))
    remote = create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event("executing", remote, EngineEventData.in_process(dead_pid()))
    engine_without_pid = create_run_for_test(
        instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED
    )

    assert record_run_owner(instance, mine.run_id) == Owner.this_process()
    assert instance.get_run_by_id(mine.run_id).tags[OWNER_TAG] == str(Owner.this_process())
    for run in (remote, engine_without_pid):  # a celery worker's step: the run's process is not its own
        assert record_run_owner(instance, run.run_id) is None
        assert OWNER_TAG not in instance.get_run_by_id(run.run_id).tags


def test_recovering_keeps_the_engines_own_executor_object(instance):
    """The celery executor's step launcher reads `app_args` from the executor object itself."""
    from dagster_celery import celery_executor
    from dagster_celery.executor import CeleryExecutor

    dead = started_run(instance, dead_pid())
    definition = recovering(celery_executor)
    assert definition.name == celery_executor.name
    config = {"broker": "redis://127.0.0.1:1/0", "backend": "redis://127.0.0.1:1/0"}
    init = dg.InitExecutorContext(
        job=dg.reconstructable(_one_op_job),
        executor_def=definition,
        executor_config={**config, "include": [], "config_source": {}, "retries": {"enabled": {}}},
        instance=instance,
    )
    executor = definition.executor_creation_fn(init)
    assert type(executor) is CeleryExecutor and executor.app_args()["broker"] == config["broker"]
    # Creating the executor (in the run's process) recovered the instance first.
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE


@dg.op
def _noop() -> None:
    return None


@dg.job
def _one_op_job() -> None:
    _noop()


def _owned_by(owner: Owner, target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{owner}-0123456789"


def test_sweep_removes_what_dead_writers_of_this_host_left_and_keeps_live_ones(tmp_path):
    processed = tmp_path / "processed"
    processed.mkdir()
    dead = Owner.this_process(dead_pid())
    dead_stage = _owned_by(dead, processed / "sales_parquet", "staging")
    dead_stage.mkdir()
    (dead_stage / "part.parquet").write_bytes(b"x" * 10)
    dead_tmp = processed / f".rejects.parquet.tmp-{dead}-abcd_123.tmp"
    dead_tmp.write_bytes(b"x")
    dead_build = _owned_by(dead, tmp_path / "sales.duckdb", "build")
    dead_build = dead_build.with_name(dead_build.name + ".wal")
    dead_build.write_bytes(b"x")
    live_stage = owned_temp_name(processed / "sales_parquet", "staging")
    live_stage.mkdir()
    legacy = processed / "tmpab12cd34"
    legacy.mkdir()
    keep = processed / "sales_iqr_filtered.parquet"
    keep.write_bytes(b"x")

    assert sorted(sweep_debris(tmp_path).removed) == sorted([dead_stage, dead_tmp, dead_build])
    assert live_stage.is_dir() and legacy.is_dir() and keep.is_file()
    # Unowned leftovers go only when older than the oldest run not provably dead.
    assert sweep_debris(tmp_path, legacy_before=legacy.stat().st_mtime - 10) == Swept()
    assert sweep_debris(tmp_path, legacy_before=time.time() + 1).removed == [legacy]
    assert live_stage.is_dir() and keep.is_file()


def test_sweep_never_touches_a_temp_named_for_another_host_or_boot(tmp_path):
    """Even a dead pid, and even with every unowned leftover judged old: only this host and boot."""
    models = tmp_path / "models"
    models.mkdir()
    other_boot = "f" * 8 if host.boot_id() != "f" * 8 else "e" * 8
    other_host = _owned_by(Owner(OTHER_HOST, host.boot_id(), dead_pid()), models / "training", "tmp")
    other_host.mkdir()
    same_host_other_boot = _owned_by(
        Owner(host.host_id(), other_boot, dead_pid()), models / "training", "build"
    )
    same_host_other_boot.mkdir()
    this_boot_dead = _owned_by(Owner.this_process(dead_pid()), models / "training", "staging")
    this_boot_dead.mkdir()

    swept = sweep_debris(tmp_path, legacy_before=time.time() + 3600)

    assert swept.removed == [this_boot_dead]
    assert other_host.is_dir() and same_host_other_boot.is_dir()


SECOND_HOST_SCRIPT = """
import sys, time
from pathlib import Path
from sales_assets.io import owned_temp_name
from sales_assets.recovery import sweep_debris
root = Path(sys.argv[1])
mine = owned_temp_name(root / "models" / "training", "tmp")
mine.mkdir()
swept = sweep_debris(root, legacy_before=time.time() + 3600)
print("removed", [str(p) for p in swept.removed], flush=True)
print("mine", mine, flush=True)
"""


def test_a_second_host_on_the_same_disk_and_this_one_never_sweep_each_others_live_work(tmp_path):
    """The second host is an `unshare` PID+UTS+mount namespace (own pids, own host name) on the same disk;
    each sweeps while the other's process still owns its temp folder."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root to make a second host's namespaces")
    root = tmp_path / "data"
    here = owned_temp_name(root / "models" / "training", "tmp")
    here.mkdir(parents=True)
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "--uts", "--mount", "sh", "-c",
         'hostname second-host && exec "$0" -c "$1" "$2"', sys.executable, SECOND_HOST_SCRIPT, str(root)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "removed []" in done.stdout, done.stdout
    assert here.is_dir()
    theirs = Path(done.stdout.split("mine ", 1)[1].strip())
    # Its process has exited, but inside its own namespaces: this host cannot prove it dead, and keeps it.
    assert theirs.is_dir() and Owner.parse(theirs.name.split("-")[1]).host != host.host_id()
    assert sweep_debris(root, legacy_before=time.time() + 3600).removed == []
    assert theirs.is_dir() and here.is_dir()


# ---- issue 24's recovery rows -------------------------------------------------------------------------------


def _admin_recover(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sales_assets.admin", "recover"],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip


def test_recovery_after_a_kill_removes_the_bundles_partial_folder(instance, tmp_path):
    """A kill inside `write_bundle` leaves `.<version>.partial` (no owner in its name): it goes once it is
    older than every run not provably dead, and one being written by a live run stays."""
    settings = Settings(data_dir=tmp_path / "data")
    settings.models_dir.mkdir(parents=True)
    killed = settings.models_dir / ".20261207T035900Z-1a2b3c4d.partial"
    killed.mkdir()
    (killed / "model.onnx").write_bytes(b"half")
    past = time.time() - 600
    os.utime(killed, (past, past))
    started_run(instance, dead_pid())  # the killed run
    live = started_run(instance, os.getpid(), claim_slot=False)
    writing = settings.models_dir / ".20261207T040000Z-5e6f7a8b.partial"
    writing.mkdir()

    env = {**os.environ, "SALES_DATA_DIR": str(settings.data_dir), "SALES_SETTINGS_FILE": ""}
    done = _admin_recover(env)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "temp file(s)/folder(s) of dead runs removed" in done.stdout, done.stdout
    assert not killed.exists() and writing.is_dir()
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED


def _read_only_command(data: Path, command: list[str]) -> list[str]:
    """`command` in a private mount namespace where `data` is bind-mounted read-only."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, "sh", str(data), *command]


def test_a_read_only_data_folder_with_a_dead_writers_temp_file_reports_and_run_list_works(instance, tmp_path):
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root to mount the data folder read-only")
    data = tmp_path / "data"
    dead_tmp = data / "processed" / f".rejects.parquet.tmp-{Owner.this_process(dead_pid())}-abcd_123.tmp"
    dead_tmp.parent.mkdir(parents=True)
    dead_tmp.write_bytes(b"x")
    env = {**os.environ, "SALES_DATA_DIR": str(data), "SALES_SETTINGS_FILE": ""}

    done = subprocess.run(
        _read_only_command(data, [str(Path(sys.executable).with_name("sales-dagster")), "run", "list"]),
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    line = [x for x in done.stdout.splitlines() if x.startswith("recovery: ")]
    assert len(line) == 1 and "could not be removed (Read-only file system" in line[0], done.stdout
    assert str(dead_tmp) in line[0]
    assert dead_tmp.is_file()  # and once the folder is writable, the next command removes it
    assert _admin_recover(env).returncode == 0
    assert not dead_tmp.exists()


def test_an_unreachable_mlflow_store_while_a_dead_run_exists_is_one_line(instance, tmp_path):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead = started_run(instance, dead_pid())
    env = {
        **os.environ,
        "SALES_DATA_DIR": str(tmp_path / "data"),
        "SALES_SETTINGS_FILE": "",
        "SALES_ML__MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port}",
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("sales-dagster")), "run", "list"],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    lines = [x for x in done.stdout.splitlines() if x.startswith("recovery: ")]
    assert len(lines) == 1, done.stdout
    assert (
        dead.run_id[:8] in lines[0] and f"MLflow store http://127.0.0.1:{closed_port} unreachable" in lines[0]
    )
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
