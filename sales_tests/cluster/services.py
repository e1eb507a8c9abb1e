"""The cluster profile's servers and worker hosts started on this machine, for the cluster tests and
bench/bench_cluster.py: Redis (`redis_server`), an MLflow tracking server (`mlflow_server`), and celery
workers as separate hosts (`Workers`): each
worker runs deploy/celery/worker.sh in its own mount, PID and UTS namespaces (`unshare`, root only), under
its own host name, with a private empty tmpfs over every local folder it writes that another host must not
read: the Dagster home (the instance config is copied in; step compute logs land there), the MLflow folder
of the data folder (MLflow is a tracking server in this profile), its TMPDIR and its HOME.

What the hosts still share, and why: the data folder (`SALES_DATA_DIR` minus `mlflow/`: the raw copy, the
Parquet layers, the DuckDB file, reports and model bundles; the object-store layer that would replace it is
not built, docs/DEPLOY.md), the export (`SALES_RAW_CSV`), the code and its virtual environment (the image a
deployment ships), and the servers on loopback (Redis, PostgreSQL, MLflow). Killing a host
(`Workers.kill`) kills its namespace's first process, and the kernel then kills every process in it, as a
machine that stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKER = REPO_ROOT / "deploy" / "celery" / "worker.sh"

# Inside the namespaces: name the host, mount the private folders (the Dagster home gets its instance
# config back), then start the worker as a child of this shell (the namespace's first process).
_HOST_SCRIPT = r"""
set -eu
name=$1 concurrency=$2
shift 2
hostname "host-$name"
instance=$(cat "$DAGSTER_HOME/dagster.yaml")
for folder in "$@"; do
    mkdir -p "$folder"
    mount -t tmpfs -o mode=0700 "private-$name" "$folder"
done
printf '%s\n' "$instance" > "$DAGSTER_HOME/dagster.yaml"
bash "$WORKER" "$name" "$concurrency"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def redis_server(executable: str, folder: Path) -> Iterator[str]:
    """`redis://127.0.0.1:<port>` of a Redis server without persistence (working folder `folder`), stopped
    afterwards.

    Raises:
        RuntimeError: it did not answer PING within 30 s."""
    port = free_port()
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def mlflow_server(folder: Path, backend_store_uri: str, destination: Path) -> Iterator[str]:
    """The tracking URI of an `mlflow server` on a free loopback port with its store at `backend_store_uri`
    and proxied artifacts in `destination` (the object store's stand-in), logging to
    `<folder>/mlflow-server.log`; stopped afterwards.

    Raises:
        RuntimeError: it did not answer `/health` within 180 s (the log's tail in the message)."""
    port, log_path = free_port(), folder / "mlflow-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", backend_store_uri, "--artifacts-destination", destination.as_uri()],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True,
            # MLflow 3's job runner (eight huey processes, for its GenAI jobs) is not used here.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        uri = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.5)
            yield uri
        finally:
            # The server and its uvicorn workers, as a group; a loaded machine can take it past 30 s.
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)


def can_make_hosts() -> bool:
    """Whether this process may make namespaces and mounts (root and `unshare` on Linux)."""
    return shutil.which("unshare") is not None and hasattr(os, "geteuid") and os.geteuid() == 0


class Workers:
    """Celery workers, one per host (`start`), logging to `<folder>/<name>.log`; each host's private
    folders are under `<folder>/hosts/<name>/` besides the Dagster home and the data folder's `mlflow/`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.processes: dict[str, subprocess.Popen] = {}
        self.private: dict[str, list[Path]] = {}
        self.killed: set[str] = set()

    def host_name(self, name: str) -> str:
        return f"host-{name}"

    def worker_name(self, name: str) -> str:
        """The worker's name as celery reports it (`Celery worker` in the run's events)."""
        return f"{name}@{self.host_name(name)}"

    def start(self, name: str, env: dict[str, str], concurrency: int = 1) -> None:
        """Start worker `name` on a new host; `env` needs DAGSTER_HOME (holding the instance config),
        SALES_DATA_DIR and the broker settings, as for deploy/celery/worker.sh."""
        own = self.folder / "hosts" / name
        private = [
            Path(env["DAGSTER_HOME"]),
            Path(env["SALES_DATA_DIR"]) / "mlflow",
            own / "tmp",
            own / "home",
        ]
        own.mkdir(parents=True, exist_ok=True)
        Path(env["SALES_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        self.private[name] = private
        host_env = {**env, "WORKER": str(WORKER), "TMPDIR": str(own / "tmp"), "HOME": str(own / "home")}
        log = (self.folder / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--uts", "--mount",
             "--propagation", "private", "sh", "-c", _HOST_SCRIPT, "sh", name,
             str(concurrency), *map(str, private)],
            env=host_env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = 300) -> None:
        """Wait until every worker not killed says it is ready."""
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            while name not in self.killed:
                text = self.log(name)
                if self.worker_name(name) in text and " ready." in text:
                    break
                assert process.poll() is None, f"worker {name} exited:\n{text[-3000:]}"
                assert time.monotonic() < deadline, f"worker {name} not ready:\n{text[-3000:]}"
                time.sleep(0.5)

    def namespace_pid(self, name: str) -> int:
        """The pid (as this host sees it) of the first process in worker `name`'s namespaces."""
        import psutil

        [first] = psutil.Process(self.processes[name].pid).children()
        return first.pid

    def listing(self, name: str, folder: Path) -> list[str]:
        """Files under `folder` as host `name` sees them (relative paths, sorted), read inside its mount
        namespace: what it wrote in a private folder is visible nowhere else."""
        done = subprocess.run(
            ["nsenter", "--target", str(self.namespace_pid(name)), "--mount", "find", str(folder), "-type", "f"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return sorted(str(Path(line).relative_to(folder)) for line in done.stdout.splitlines() if line)

    def kill(self, name: str) -> None:
        """Stop host `name` at once, as a machine that dies: SIGKILL to `unshare`, whose child (the
        namespace's first process) then gets SIGKILL too, and with it every process in the namespace."""
        process = self.processes[name]
        self.killed.add(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        # celery's own children leave with their group; make sure none outlives the test.
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
