"""What the cluster profile adds to Dagster's celery engine: a step whose worker died fails its run.

`dagster-celery`'s executor waits for each step's celery result until it is ready. A worker whose pool
process dies reports that itself (celery's `WorkerLostError`), but a worker that dies whole (its machine,
container or namespace gone; `kill -9` of the worker) reports nothing, and the run would wait for good: run
monitoring watches the run's process, which is alive and waiting. So every run of the cluster profile
watches, from its own process, the steps it submitted (`watching_workers`): a step whose celery state is
STARTED on a worker that, for `ClusterSettings.worker_lost_seconds` in a row, neither answers nor lists the
step among its active tasks is marked failed in the result backend (`WorkerLostError`, naming the step and
the worker). The executor then fails the step and the run as for any step error; the pool slot the step
held goes back once the run has ended (run monitoring's `free_slots_after_run_end_seconds`, in the
daemon), and a re-execution from the failure runs the step again on a live worker.

The workers take a task only when a process of theirs is free (`worker_disable_prefetch`) and report
STARTED with their host name (`task_track_started`): so a task is either in the queue (any worker may take
it) or STARTED on the one worker that runs it, and a dead worker holds no task nobody would see. The same
settings are in the workers' config, deploy/celery/celery.yaml (a test checks they agree).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

import dagster as dg

# The celery settings the runs and the workers share (deploy/celery/celery.yaml's `config_source`).
CELERY_CONFIG_SOURCE = {"task_track_started": True, "worker_disable_prefetch": True}
# dagster-celery's name of the task that executes a step (`dagster_celery.config.TASK_EXECUTE_PLAN_NAME`).
STEP_TASK = "execute_plan"
# How long one question to a worker waits for its answer (seconds).
INSPECT_TIMEOUT_SECONDS = 2.0


@dataclass
class _Submitted:
    step: str
    first_miss: float | None = None  # when the worker running it first failed to answer for it


@dataclass
class StepWatch:
    """The celery steps this process submitted and not yet seen end, and the thread that watches them."""

    lost_after: float
    steps: dict[str, _Submitted] = field(default_factory=dict)  # by celery task id
    lock: threading.Lock = field(default_factory=threading.Lock)
    lost: list[str] = field(default_factory=list)  # messages of the steps marked failed, for tests and logs

    def submitted(self, task_id: str, step: str) -> None:
        with self.lock:
            self.steps[task_id] = _Submitted(step)

    def check(self, app, now: float | None = None) -> list[str]:
        """One pass: steps that ended are forgotten; a STARTED step whose worker does not hold it is marked
        failed once that has lasted `lost_after` seconds. Returns the messages of the steps marked now."""
        from celery import states
        from celery.exceptions import WorkerLostError

        now = time.time() if now is None else now
        with self.lock:
            watched = list(self.steps.items())
        marked = []
        for task_id, submitted in watched:
            result = app.AsyncResult(task_id)
            if result.state in states.READY_STATES:
                with self.lock:
                    self.steps.pop(task_id, None)
                continue
            if result.state != states.STARTED:  # still in the queue: no worker holds it
                continue
            worker = (result.info or {}).get("hostname") if isinstance(result.info, dict) else None
            if worker is None or _holds(app, worker, task_id) or app.AsyncResult(task_id).ready():
                submitted.first_miss = None
                continue
            submitted.first_miss = submitted.first_miss or now
            if now - submitted.first_miss < self.lost_after:
                continue
            message = (
                f'step "{submitted.step}": celery worker {worker} stopped answering for it while running it '
                f"(no answer for {self.lost_after:g} s, SALES_CLUSTER__WORKER_LOST_SECONDS); nothing it "
                "was writing is published, and a re-execution from this failure runs the step again"
            )
            app.backend.mark_as_failure(task_id, WorkerLostError(message))
            with self.lock:
                self.steps.pop(task_id, None)
                self.lost.append(message)
            print(f"cluster: {message}", file=sys.stderr, flush=True)
            marked.append(message)
        return marked


def _holds(app, worker: str, task_id: str) -> bool:
    """Whether celery worker `worker` answers and lists task `task_id` among its active tasks."""
    try:
        active = app.control.inspect(destination=[worker], timeout=INSPECT_TIMEOUT_SECONDS).active() or {}
    except Exception:  # the broker itself unreachable: judge nothing this time
        return True
    return any(task.get("id") == task_id for task in active.get(worker, []))


_watch: StepWatch | None = None
_watch_lock = threading.Lock()


def _step_key(body) -> str:
    """The step key in a published `execute_plan` task's body (protocol 2: args, kwargs, embed)."""
    try:
        packed = body[1]["execute_step_args_packed"]
        return ", ".join(packed["step_keys_to_execute"])
    except (IndexError, KeyError, TypeError):
        return "?"


def start_watch(app, lost_after: float) -> StepWatch:
    """Watch, in a daemon thread of this process, every step task this process publishes from now on
    (once per process; later calls return the same watch). `app`: the celery app of the run's executor."""
    global _watch
    from celery.signals import after_task_publish

    with _watch_lock:
        if _watch is not None:
            return _watch
        watch = StepWatch(lost_after=lost_after)

        def published(sender=None, headers=None, body=None, **_):
            if sender == STEP_TASK and headers and "id" in headers:
                watch.submitted(headers["id"], _step_key(body))

        after_task_publish.connect(published, weak=False)
        interval = max(0.5, min(5.0, lost_after / 4))

        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    watch.check(app)
                except Exception as error:  # a broker hiccup must not end the watch
                    print(f"cluster: step watch skipped a pass ({error!r})", file=sys.stderr, flush=True)

        threading.Thread(target=loop, name="sales-celery-step-watch", daemon=True).start()
        _watch = watch
        return watch


def watching_workers(base: dg.ExecutorDefinition, lost_after: float) -> dg.ExecutorDefinition:
    """`base` (dagster-celery's executor, same name, config and requirements) with every run watching
    the workers of its steps from its own process (`start_watch`); the executor is `base`'s own object."""
    create_base = base.executor_creation_fn
    if create_base is None:
        raise ValueError(f"executor {base.name} has no creation function")

    def create(init_context: dg.InitExecutorContext):
        from dagster_celery.make_app import make_app

        executor = create_base(init_context)
        start_watch(make_app(executor.app_args()), lost_after)
        return executor

    return dg.ExecutorDefinition(
        name=base.name,
        config_schema=base.config_schema,
        requirements=base.get_requirements,
        executor_creation_fn=create,
        description=f"{base.description or base.name}; a step whose worker died fails the run.",
    )
