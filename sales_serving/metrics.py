"""Prometheus metrics of the service, kept by prometheus_client.

With `PROMETHEUS_MULTIPROC_DIR` set (`sales-serve --workers N` sets it) every worker writes its values to
files there and a scrape of any worker reads them all (prometheus_client's multiprocess mode), so /metrics
counts every worker's requests. Process metrics come from prometheus_client's process collector in one
process, and as `sales_worker_*` gauges labelled by pid with workers (the collector sees one process only).
Requests are timed from routing to the response object (parsing, validation, prediction, serialisation) by
`instrumentation.InstrumentedRoute`, and by `fast_predict.PredictFastPath` for /predict, not by a middleware
around every request.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    "sales_http_requests",
    "HTTP requests by endpoint (route template), method and status code.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "sales_http_request_duration_seconds",
    "Time from routing to the response object, by endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
PREDICTED_ROWS = Counter("sales_predictions", "Rows scored, by backend.", ["backend"])
MODEL_RELOADS = Counter("sales_model_reloads", "Bundles loaded (per worker) since start.")
MODEL_REFUSALS = Counter("sales_model_refusals", "Bundles refused (the old model kept serving).")
MODEL_INFO = Gauge(
    "sales_model_info",
    "1 for the model a worker serves, 0 for one it served before.",
    ["model_name", "version", "backend"],
    multiprocess_mode="liveall",
)
# Only with workers: one process's collector cannot see the others, so each worker reports itself.
WORKER_GAUGES = (
    {
        sample: Gauge(
            f"sales_worker_{sample.removeprefix('process_').removesuffix('_total')}",
            f"{help_text} (this worker, labelled by pid).",
            multiprocess_mode="liveall",
        )
        for sample, help_text in (
            ("process_cpu_seconds_total", "CPU seconds used"),
            ("process_resident_memory_bytes", "Resident memory"),
            ("process_virtual_memory_bytes", "Virtual memory"),
            ("process_open_fds", "Open file descriptors"),
            ("process_start_time_seconds", "Start time since the epoch"),
        )
    }
    if MULTIPROCESS
    else {}
)
_OWN_PROCESS = ProcessCollector(registry=None)


def record_worker_process() -> None:
    """Copies this worker's process figures into its `sales_worker_*` gauges (workers only)."""
    if not WORKER_GAUGES:
        return
    for family in _OWN_PROCESS.collect():
        for sample in family.samples:
            gauge = WORKER_GAUGES.get(sample.name)
            if gauge is not None:
                gauge.set(sample.value)


def worker_exited() -> None:
    """Drops this worker's live gauges from the shared directory (workers only)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())


def _forget_dead_workers(directory: Path) -> None:
    """Drops the live gauges of workers that are gone: uvicorn restarts a worker that stops answering its
    health check, and nobody else calls mark_process_dead for it. Counters of a dead worker stay counted."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))
        except PermissionError:  # alive, owned by another user
            continue


def render() -> tuple[bytes, str]:
    """(Prometheus text exposition, its content type); all workers' values in multiprocess mode."""
    if not MULTIPROCESS:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    record_worker_process()
    _forget_dead_workers(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def model_loaded(previous: tuple[str, str, str] | None, current: tuple[str, str, str]) -> None:
    """(model_name, version, backend) of the model given up (None at first) and the one now served."""
    if previous is not None and previous != current:
        MODEL_INFO.labels(*previous).set(0)
    MODEL_INFO.labels(*current).set(1)
    MODEL_RELOADS.inc()


def model_refused() -> None:
    MODEL_REFUSALS.inc()


# labels() takes a lock and builds a key on every call; these label sets are few (route templates, status
# codes, backends), so each child is looked up once.
@functools.cache
def request_counter(endpoint: str, method: str, status: str) -> Counter:
    return REQUESTS.labels(endpoint, method, status)


@functools.cache
def predicted_rows(backend: str) -> Counter:
    return PREDICTED_ROWS.labels(backend)


def observe_unrouted(method: str, status: int) -> None:
    """A request no route took (404, 405, a body refused before routing)."""
    request_counter("unmatched", method, str(status)).inc()
