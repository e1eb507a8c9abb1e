"""Recovery without a human: runs whose process is gone are marked failed and give back their pool slots,
their MLflow runs end FAILED, their temp files are swept, step workers exit when their run's process dies,
and Ctrl-C ends a run as CANCELED.

Where it runs:
- at the start of every run, in the run's own process (`RecoveringExecutor`, the executor of every job),
  before any step claims a pool slot, so a plain `dagster asset materialize` after a `kill -9` finishes;
- at the start of every command the README gives (`sales-dagster`, the quickstart, the backfill), via
  `recover_on_start`, which prints one line when it found something;
- in every step process (`SalesSettingsResource.setup_for_execution` calls `prepare_step`): the debris
  sweep of the data folder and the watchdog on the run's process.

A run's process is the one its executor reported in its first engine event (Dagster records its pid,
for the in-process and the multiprocess executor alike). It is gone when no process has that pid, or the
one that has it started after the event (the kernel reused the pid). Runs of a non-sqlite instance (the
PostgreSQL profile, possibly shared by several hosts) are judged only when a step recorded this host.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from dagster._core.definitions.executor_definition import ExecutorDefinition
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.base import Executor

from sales_assets.io import sweep_debris

if TYPE_CHECKING:
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan

    from sales_assets.settings import Settings

IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
HOST_TAG = "sales/host"
# A run in progress that never reported its process is judged dead after this long (the same figure as
# run monitoring's start timeout in dagster_home/dagster.yaml).
START_TIMEOUT_SECONDS = 180.0
MLFLOW_DAGSTER_RUN_TAG = "dagster_run_id"


@dataclass
class Recovery:
    """What one recovery pass did."""

    failed: list[str] = field(default_factory=list)  # run ids marked failed (their process was gone)
    canceled: list[str] = field(default_factory=list)  # run ids marked canceled (were canceling)
    mlflow_runs_ended: int = 0
    debris: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.failed or self.canceled or self.mlflow_runs_ended or self.debris)

    def line(self) -> str:
        """One line for the user, e.g. `recovered 1 dead run (3f2a9c1b): marked failed, pool slots freed`."""
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
        if self.debris:
            parts.append(f"{len(self.debris)} temp file(s)/folder(s) of dead runs removed")
        return "recovery: " + "; ".join(parts)


def run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, epoch seconds of the report) of the process that executes run `run_id`, None before its
    executor started."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.event_specific_data if record.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value), record.timestamp
    return None


def process_alive(pid: int, not_after: float) -> bool:
    """Whether `pid` runs a process that started no later than `not_after` (epoch seconds)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= not_after + 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _judges_this_host(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    if "sqlite" in type(instance.run_storage).__name__.lower():
        return True
    return run.tags.get(HOST_TAG) == socket.gethostname()


def dead_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[dg.DagsterRun]:
    """Runs in progress (starting, started, canceling) on this instance whose process is gone."""
    now = time.time() if now is None else now
    dead = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        if not _judges_this_host(instance, run):
            continue
        process = run_process(instance, run.run_id)
        if process is None:
            begun = record.start_time or record.create_timestamp.timestamp()
            if now - begun > START_TIMEOUT_SECONDS:
                dead.append(run)
        elif not process_alive(*process):
            dead.append(run)
    return dead


def live_runs_started_at(instance: dg.DagsterInstance) -> float:
    """Epoch seconds at which the oldest run in progress whose process lives started (now when none)."""
    starts = [time.time()]
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        process = run_process(instance, record.dagster_run.run_id)
        if process is None or process_alive(*process):
            starts.append(record.start_time or record.create_timestamp.timestamp())
    return min(starts)


def end_mlflow_runs(settings: Settings, dagster_run_ids: Sequence[str], status: str = "FAILED") -> int:
    """End the RUNNING MLflow runs tagged with one of `dagster_run_ids` as `status`; returns how many.
    Imports MLflow only when its store exists."""
    if not dagster_run_ids:
        return 0
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return 0
    ended = 0
    for dagster_run_id in dagster_run_ids:  # MLflow's search has no IN for tags
        for run in client.search_runs(
            experiment_ids,
            filter_string=f"tags.{MLFLOW_DAGSTER_RUN_TAG} = '{dagster_run_id}' AND attributes.status = 'RUNNING'",
        ):
            client.set_terminated(run.info.run_id, status=status)
            ended += 1
    return ended


def recover_dead_runs(
    instance: dg.DagsterInstance, settings: Settings | None = None, now: float | None = None
) -> Recovery:
    """Mark every dead run failed (canceled when it was canceling), free its pool slots and end its MLflow
    runs FAILED (when `settings` names the MLflow store)."""
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
        recovery.mlflow_runs_ended = end_mlflow_runs(settings, recovery.failed + recovery.canceled)
    return recovery


def cancel_interrupted_runs(
    instance: dg.DagsterInstance, pid: int, settings: Settings | None = None, since: float | None = None
) -> list[str]:
    """After Ctrl-C: the runs process `pid` executed that are still in progress, or that Dagster ended as
    failed because it was interrupted, are marked canceled, with their pool slots freed and their MLflow
    runs ended KILLED; so are runs created since `since` (epoch seconds, when the process started) that
    never reported a process (created, then interrupted before they started). Returns the ids of the
    process's canceled runs (those Dagster already marked canceled included)."""
    canceled = []
    statuses = [
        dg.DagsterRunStatus.NOT_STARTED,
        *IN_PROGRESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED,
    ]
    for record in instance.get_run_records(dg.RunsFilter(statuses=statuses), limit=50):
        run = record.dagster_run
        process = run_process(instance, run.run_id)
        if process is None:
            created = record.create_timestamp.timestamp()
            if since is None or created < since or run.status == dg.DagsterRunStatus.FAILURE:
                continue
        elif process[0] != pid or run.status == dg.DagsterRunStatus.NOT_STARTED:
            continue
        if run.status == dg.DagsterRunStatus.FAILURE and not _failed_by_interrupt(instance, run.run_id):
            continue
        if run.status != dg.DagsterRunStatus.CANCELED:
            instance.report_run_canceled(run, message="Interrupted by the user (Ctrl-C).")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        canceled.append(run.run_id)
    if settings is not None:
        end_mlflow_runs(settings, canceled, status="KILLED")
    return canceled


def _failed_by_interrupt(instance: dg.DagsterInstance, run_id: str) -> bool:
    failures = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return any("interrupted" in (f.dagster_event.message or "").lower() for f in failures if f.dagster_event)


# ---- in the run's process: every run starts by recovering the instance ---------------------------------


class RecoveringExecutor(Executor):
    """Runs `recover_dead_runs` in the run's process before delegating to `inner`, and turns an interrupt
    (Ctrl-C, SIGINT) into a cancellation: the run is marked canceling before Dagster's handler reads its
    status, so it ends CANCELED rather than failed."""

    def __init__(self, inner: Executor):
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        from sales_assets.settings import Settings

        recovery = recover_dead_runs(plan_context.instance, Settings())
        if recovery:
            plan_context.log.info(recovery.line())  # INFO: the console shows it, not only the event log
        try:
            yield from self._inner.execute(plan_context, execution_plan)
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):
            run = plan_context.instance.get_run_by_id(plan_context.run_id)
            if run is not None and run.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING):
                plan_context.instance.report_run_canceling(run, message="Interrupted by the user (Ctrl-C).")
            raise


def recovering(base: ExecutorDefinition) -> ExecutorDefinition:
    """`base` (same name, config and requirements) with every run starting by `recover_dead_runs`."""
    return ExecutorDefinition(
        name=base.name,
        config_schema=base.config_schema,
        requirements=base.get_requirements,
        executor_creation_fn=lambda init_context: RecoveringExecutor(base.executor_creation_fn(init_context)),
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


def prepare_step(instance: dg.DagsterInstance | None, run_id: str | None, data_root: Path) -> list[Path]:
    """Start the watchdog, record this host on the run, and sweep debris of dead writers under
    `data_root` (unowned leftovers only when older than every live run). Returns what was removed."""
    watch_parent()
    legacy_before = None
    if instance is not None and run_id is not None:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.tags.get(HOST_TAG) != socket.gethostname():
            instance.add_run_tags(run_id, {HOST_TAG: socket.gethostname()})
        legacy_before = live_runs_started_at(instance)
    return sweep_debris(data_root, legacy_before=legacy_before)


# ---- in the commands the README gives ---------------------------------------------------------------------


def recover_on_start(settings: Settings | None = None, echo: Callable[[str], None] = print) -> Recovery:
    """At the start of a command: recover dead runs of the instance in `DAGSTER_HOME` and sweep the data
    folder; prints one line when something was found."""
    from sales_assets.settings import Settings

    settings = settings or Settings()
    with dg.DagsterInstance.get() as instance:
        recovery = recover_dead_runs(instance, settings)
        recovery.debris = sweep_debris(settings.root, legacy_before=live_runs_started_at(instance))
    if recovery:
        echo(recovery.line())
    return recovery
