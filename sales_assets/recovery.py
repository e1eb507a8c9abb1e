"""Recovery without a human, limited to what this host can prove: runs whose process is gone are marked
failed and give back their pool slots, their MLflow runs end FAILED, their temp files are swept, step workers
exit when their run's process dies.

Where it runs:
- at the start of every run, in the run's own process (`recovering` wraps the creation of the job's executor,
  through Dagster's public `ExecutorDefinition`; the executor itself is Dagster's own object, so the celery
  and every other executor work unchanged), before any step claims a pool slot, so a plain
  `dagster asset materialize` after a `kill -9` finishes;
- at the start of every command the README gives (`sales-dagster`, the quickstart, the backfill), via
  `recover_on_start`, which prints one line when it found something (or could not do all of it);
- in every step process (`SalesSettingsResource.setup_for_execution` calls `prepare_step`): the debris
  sweep of the data folder and the watchdog on the run's process.

Only what names this host is judged (`sales_serving.contract.owner`). A run is judged when it carries `OWNER_TAG`: the
host id, boot id and pid of the process that executes it, written by its first step when that step runs in
the run's process or is its child (the in-process and multiprocess executors, whose process Dagster reports
in the run's first engine event). It is dead when that process ran in an earlier boot of this host (a
reboot ended it), or no process started by then has its pid now. A run of another host, or one executed by a remote engine (celery,
Kubernetes), carries no tag of this host and is left to Dagster's run monitoring. A temp name is swept when
its owner ran in this boot of this host and is dead (never across boots: a name of another boot may be
another machine's); names without an owner only when older than every run not provably dead.

Ctrl-C in a plain `dagster` command ends the run as Dagster decides (failed, "interrupted"); the project's
commands then mark it canceled (`cancel_interrupted_runs`, through `sales-admin cancel-interrupted`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from sales_assets.io import LEGACY_TEMP, OWNED_TEMP, VERSION_NAME
from sales_serving.contract.owner import Owner

if TYPE_CHECKING:
    from sales_assets.settings import Settings

IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# The process that executes a run, as `<host id>.<boot id>.<pid>` (`sales_serving.contract.owner.Owner`).
OWNER_TAG = "sales/run_process"
# A run still starting that never reported its process is judged dead after this long, wherever it runs
# (the same figure as run monitoring's start timeout in dagster_home/dagster.yaml).
START_TIMEOUT_SECONDS = 180.0
MLFLOW_DAGSTER_RUN_TAG = "dagster_run_id"
# Folders directly under the data root that the sweep leaves alone (MLflow manages its own store).
SKIP_DIRS = ("mlflow",)
# How long recovery waits for an MLflow tracking server before saying it is unreachable (one try).
MLFLOW_TIMEOUT_SECONDS = 5


@dataclass
class Swept:
    """What one sweep of a data folder did: the temp files and folders removed, and those that dead
    writers left but could not be removed (path, reason), e.g. on a read-only file system."""

    removed: list[Path] = field(default_factory=list)
    left: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class Recovery:
    """What one recovery pass did."""

    failed: list[str] = field(default_factory=list)  # run ids marked failed (their process was gone)
    canceled: list[str] = field(default_factory=list)  # run ids marked canceled (were canceling)
    mlflow_runs_ended: int = 0
    mlflow_error: str | None = None  # why the MLflow runs of the dead runs could not be ended
    debris: Swept = field(default_factory=Swept)

    def __bool__(self) -> bool:
        return bool(
            self.failed
            or self.canceled
            or self.mlflow_runs_ended
            or self.mlflow_error
            or self.debris.removed
            or self.debris.left
        )

    def line(self) -> str:
        """One line for the user, e.g. `recovery: 1 run(s) whose process was gone (3f2a9c1b): 1 marked
        failed, pool slots freed`."""
        parts = []
        runs = self.failed + self.canceled
        if runs:
            ids = ", ".join(r[:8] for r in runs)
            what = []
            if self.failed:
                what.append(f"{len(self.failed)} marked failed")
            if self.canceled:
                what.append(f"{len(self.canceled)} marked canceled")
            parts.append(
                f"{len(runs)} run(s) whose process was gone ({ids}): {', '.join(what)}, pool slots freed"
            )
        if self.mlflow_runs_ended:
            parts.append(f"{self.mlflow_runs_ended} MLflow run(s) ended FAILED")
        if self.mlflow_error:
            parts.append(self.mlflow_error)
        if self.debris.removed:
            parts.append(f"{len(self.debris.removed)} temp file(s)/folder(s) of dead runs removed")
        if self.debris.left:
            path, reason = self.debris.left[0]
            parts.append(
                f"{len(self.debris.left)} temp file(s)/folder(s) of dead runs could not be removed "
                f"({reason}: {path}); remove them when the folder is writable"
            )
        return "recovery: " + "; ".join(parts)


def run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, epoch seconds of the report) of the process that executes run `run_id`, as its executor
    reported it (the in-process and multiprocess executors do; remote engines do not): None otherwise."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.event_specific_data if record.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value), record.timestamp
    return None


def run_owner(run: dg.DagsterRun) -> Owner | None:
    """The process that executes `run`, as its first step recorded it; None before or when unknown."""
    return Owner.parse(run.tags.get(OWNER_TAG))


def dead_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[dg.DagsterRun]:
    """Runs in progress (starting, started, canceling) on this instance whose process is provably gone:
    it ran on this host (`OWNER_TAG`) and is dead, or the run is still starting past the start timeout."""
    now = time.time() if now is None else now
    dead = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        begun = record.start_time or record.create_timestamp.timestamp()
        owner = run_owner(run)
        if owner is not None:
            process = run_process(instance, run.run_id)
            # A run of an earlier boot counts as dead, as it did before host ids: else a reboot in the
            # middle of a run would hold its pool slots for good.
            if owner.provably_dead(not_after=process[1] if process else begun, earlier_boots=True):
                dead.append(run)
        elif (
            run.status == dg.DagsterRunStatus.STARTING
            and now - begun > START_TIMEOUT_SECONDS
            and run_process(instance, run.run_id) is None
        ):
            dead.append(run)
    return dead


def live_runs_started_at(instance: dg.DagsterInstance) -> float:
    """Epoch seconds at which the oldest run in progress not provably dead started (now when none): every
    run of another host, or whose process is unknown, counts as live."""
    dead = {run.run_id for run in dead_runs(instance)}
    starts = [time.time()]
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        if record.dagster_run.run_id not in dead:
            starts.append(record.start_time or record.create_timestamp.timestamp())
    return min(starts)


@contextlib.contextmanager
def _one_quick_mlflow_try() -> Iterator[None]:
    """MLflow's HTTP client retries an unreachable server for minutes; recovery tries once, briefly."""
    overrides = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(MLFLOW_TIMEOUT_SECONDS),
    }
    before = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def end_mlflow_runs(settings: Settings, dagster_run_ids: Sequence[str], status: str = "FAILED") -> int:
    """End the RUNNING MLflow runs tagged with one of `dagster_run_ids` as `status`; returns how many.
    Imports MLflow only when its store exists. Raises what MLflow raises when the store is unreachable."""
    if not dagster_run_ids:
        return 0
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return 0
    from mlflow.tracking import MlflowClient

    with _one_quick_mlflow_try():
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
        if not experiment_ids:
            return 0
        ended = 0
        for dagster_run_id in dagster_run_ids:  # MLflow's search has no IN for tags
            for run in client.search_runs(
                experiment_ids,
                filter_string=f"tags.{MLFLOW_DAGSTER_RUN_TAG} = '{dagster_run_id}' "
                "AND attributes.status = 'RUNNING'",
            ):
                client.set_terminated(run.info.run_id, status=status)
                ended += 1
    return ended


def _mlflow_unreachable(settings: Settings, error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0][:200]
    return (
        f"MLflow store {settings.mlflow_tracking_uri} unreachable ({type(error).__name__}: {first_line}); "
        "the dead runs' MLflow runs stay RUNNING until a recovery reaches it"
    )


def recover_dead_runs(
    instance: dg.DagsterInstance, settings: Settings | None = None, now: float | None = None
) -> Recovery:
    """Mark every dead run failed (canceled when it was canceling), free its pool slots and end its MLflow
    runs FAILED (when `settings` names the MLflow store; an unreachable store is reported in
    `Recovery.mlflow_error`, not raised)."""
    recovery = Recovery()
    for run in dead_runs(instance, now):
        message = "The run's process is gone (killed or crashed); marked by sales_assets.recovery."
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=message)
            recovery.canceled.append(run.run_id)
        else:
            instance.report_run_failed(run, message=message)
            recovery.failed.append(run.run_id)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    if settings is not None:
        try:
            recovery.mlflow_runs_ended = end_mlflow_runs(settings, recovery.failed + recovery.canceled)
        except Exception as error:  # any failure of the store's client: the runs are recovered regardless
            recovery.mlflow_error = _mlflow_unreachable(settings, error)
    return recovery


def cancel_interrupted_runs(
    instance: dg.DagsterInstance, pid: int, settings: Settings | None = None, since: float | None = None
) -> list[str]:
    """After Ctrl-C: the runs process `pid` executed that are still in progress, or that Dagster ended as
    failed because it was interrupted, are marked canceled, with their pool slots freed and their MLflow
    runs ended KILLED; so are runs created since `since` (epoch seconds, when the process started) that
    never reported a process (created, then interrupted before they started) or that a child of the
    process ran and Dagster ended as interrupted (Dagster's own executors end an interrupted run failed). A run whose `OWNER_TAG`
    names another host is never touched (its pid is another host's). Returns the ids of the process's
    canceled runs (those Dagster already marked canceled included)."""
    canceled = []
    statuses = [
        dg.DagsterRunStatus.NOT_STARTED,
        *IN_PROGRESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED,
    ]
    for record in instance.get_run_records(dg.RunsFilter(statuses=statuses), limit=50):
        run = record.dagster_run
        owner = run_owner(run)
        if owner is not None and not owner.on_this_host():
            continue
        process = run_process(instance, run.run_id)
        since_start = since is not None and record.create_timestamp.timestamp() >= since
        if process is None:
            if not since_start or run.status == dg.DagsterRunStatus.FAILURE:
                continue
        elif process[0] != pid:
            # A child of the command ran it (the quickstart's `dagster job execute`): only a run created
            # since the command started that Dagster ended as interrupted (checked below).
            if not (since_start and run.status == dg.DagsterRunStatus.FAILURE):
                continue
        elif run.status == dg.DagsterRunStatus.NOT_STARTED:
            continue
        if run.status == dg.DagsterRunStatus.FAILURE and not _failed_by_interrupt(instance, run.run_id):
            continue
        if run.status != dg.DagsterRunStatus.CANCELED:
            instance.report_run_canceled(run, message="Interrupted by the user (Ctrl-C).")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        canceled.append(run.run_id)
    if settings is not None:
        try:
            end_mlflow_runs(settings, canceled, status="KILLED")
        except Exception as error:  # the runs are canceled regardless; say why MLflow's are not
            print(f"recovery: {_mlflow_unreachable(settings, error)}", file=sys.stderr)
    return canceled


def _failed_by_interrupt(instance: dg.DagsterInstance, run_id: str) -> bool:
    failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return any("interrupted" in (f.dagster_event.message or "").lower() for f in failures if f.dagster_event)


# ---- in the run's process: every run starts by recovering the instance ---------------------------------


def recovering(base: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """`base` (same name, config and requirements) with every run first recovering the dead runs of its
    instance, in the run's process, before the executor is created. The executor is `base`'s own object,
    so a remote engine's executor (celery, Kubernetes) keeps every attribute its step launcher reads."""
    create_base = base.executor_creation_fn
    if create_base is None:
        raise ValueError(f"executor {base.name} has no creation function")

    def create(init_context: dg.InitExecutorContext):
        from sales_assets.settings import Settings

        recovery = recover_dead_runs(init_context.instance, Settings())
        if recovery:
            # The run's console (no run log exists yet); the recovered runs' own logs say who marked them.
            print(recovery.line(), file=sys.stderr, flush=True)
        return create_base(init_context)

    return dg.ExecutorDefinition(
        name=base.name,
        config_schema=base.config_schema,
        requirements=base.get_requirements,
        executor_creation_fn=create,
        description=f"{base.description or base.name}; every run first recovers runs whose process died.",
    )


# ---- in each step process --------------------------------------------------------------------------------

_watchdog_started = False


def watch_parent(on_death: Callable[[], None] | None = None) -> bool:
    """In a multiprocessing child (a step worker of the multiprocess executor), start a daemon thread that
    waits on the parent's sentinel and exits this process when the parent dies. False when this process
    is not a multiprocessing child (nothing to watch) or the watchdog already runs."""
    global _watchdog_started
    parent = multiprocessing.parent_process()
    if parent is None or _watchdog_started:
        return False

    def wait_then_exit() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        if on_death is not None:
            on_death()
        print(
            f"step worker {os.getpid()}: the run's process {parent.pid} is gone; exiting",
            file=sys.stderr,
            flush=True,
        )
        os._exit(70)

    threading.Thread(target=wait_then_exit, name="sales-run-watchdog", daemon=True).start()
    _watchdog_started = True
    return True


def record_run_owner(instance: dg.DagsterInstance, run_id: str) -> Owner | None:
    """Tag run `run_id` with the process that executes it (`OWNER_TAG`) when this step process can prove
    which one it is: the run's reported process is this one (in-process executor) or this one's parent
    (multiprocess executor). A step of a remote engine proves nothing, and tags nothing. Returns the
    owner tagged (or already there)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    if (owner := run_owner(run)) is not None:
        return owner
    process = run_process(instance, run_id)
    parent = multiprocessing.parent_process()
    if process is None or process[0] not in (os.getpid(), parent.pid if parent is not None else None):
        return None
    owner = Owner.this_process(process[0])
    instance.add_run_tags(run_id, {OWNER_TAG: str(owner)})
    return owner


def prepare_step(instance: dg.DagsterInstance | None, run_id: str | None, data_root: Path) -> Swept:
    """Start the watchdog, record the run's process (`record_run_owner`), and sweep debris of dead
    writers under `data_root` (unowned leftovers only when older than every run not provably dead)."""
    watch_parent()
    legacy_before = None
    if instance is not None and run_id is not None:
        record_run_owner(instance, run_id)
        legacy_before = live_runs_started_at(instance)
    return sweep_debris(data_root, legacy_before=legacy_before)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def sweep_debris(root: Path, legacy_before: float | None = None) -> Swept:
    """Remove the temp files and folders under `root` whose writer is provably dead; never raises for a
    file it cannot remove (a read-only folder), but lists it in `Swept.left`.

    Owned names (`sales_serving.contract.publish.aside_prefix`: host id, boot id, pid) are removed only when their owner
    ran on this host in this boot and is dead (`Owner.provably_dead`, judged against the name's last
    modification); a name of another host or boot is never touched.
    Names without an owner (earlier releases' temps, the model bundle's `.<version>.partial` folder) are
    removed only when last modified before `legacy_before` (epoch seconds; the caller passes the start of
    the oldest run not provably dead), never when it is None. Never follows symlinks.
    """
    swept = Swept()
    root = Path(root)
    if not root.is_dir():
        return swept
    for dirpath, dirnames, filenames in os.walk(root):
        # Published versions hold no temp files, and MLflow manages its own store: not walked (the sweep
        # runs at every step start and sensor tick, so it stays a scan of a few folders).
        dirnames[:] = [
            d for d in dirnames if not VERSION_NAME.match(d) and not (dirpath == str(root) and d in SKIP_DIRS)
        ]
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            try:
                mtime = path.lstat().st_mtime
            except FileNotFoundError:
                continue
            owned = OWNED_TEMP.match(name)
            if owned:
                dead = Owner.parse(owned["owner"]).provably_dead(not_after=mtime)
            else:
                dead = bool(LEGACY_TEMP.match(name)) and legacy_before is not None and mtime < legacy_before
            if not dead:
                continue
            if name in dirnames:
                dirnames.remove(name)
            try:
                _remove(path)
            except FileNotFoundError:  # another sweep (another step) took it first
                continue
            except OSError as error:
                swept.left.append((path, error.strerror or type(error).__name__))
                continue
            swept.removed.append(path)
    return swept


# ---- in the commands the README gives ---------------------------------------------------------------------


def recover_on_start(settings: Settings | None = None, echo: Callable[[str], None] = print) -> Recovery:
    """At the start of a command: recover dead runs of the instance in `DAGSTER_HOME` and sweep the data
    folder; prints one line when something was found (or could not be done: an unreachable MLflow store,
    a read-only data folder). Never fails the command for what it could not do."""
    from sales_assets.settings import Settings

    settings = settings or Settings()
    with dg.DagsterInstance.get() as instance:
        recovery = recover_dead_runs(instance, settings)
        recovery.debris = sweep_debris(settings.root, legacy_before=live_runs_started_at(instance))
    if recovery:
        echo(recovery.line())
    return recovery
