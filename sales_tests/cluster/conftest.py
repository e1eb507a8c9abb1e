"""Fixtures of the cluster-profile tests (marker `cluster`): a throwaway Redis broker and the throwaway
PostgreSQL cluster of the production profile, each on a free loopback port, and celery workers started
with the project's worker command (deploy/celery/worker.sh). Skip only when Redis or PostgreSQL is not
installed and cannot be (scripts/install_redis.sh, scripts/install_postgres.sh)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sales_tests.conftest import REPO_ROOT
from sales_tests.deploy.conftest import postgres_env  # noqa: F401  (the session's PostgreSQL cluster)

WORKER = REPO_ROOT / "deploy" / "celery" / "worker.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "sales_tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found is None:
        install = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "install_redis.sh")],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if install.returncode != 0:
            pytest.skip(f"redis-server is not installed and cannot be: {install.stderr.strip()[-500:]}")
        found = shutil.which("redis-server")
    return found


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`redis://127.0.0.1:<port>` of a Redis server without persistence, stopped afterwards."""
    server = _redis_server()
    if server is None:
        pytest.skip("redis-server not found after installing")
    folder, port = tmp_path_factory.mktemp("redis"), free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.2)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


class Workers:
    """Celery workers started with deploy/celery/worker.sh, each in its own process group, logging to
    `<folder>/<name>.log`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, env: dict[str, str]) -> None:
        log = (self.folder / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            ["bash", str(WORKER), name, "1"], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            while f"{name}@" not in self.log(name) or " ready." not in self.log(name):
                assert process.poll() is None, f"worker {name} exited:\n{self.log(name)[-3000:]}"
                assert time.monotonic() < deadline, f"worker {name} not ready:\n{self.log(name)[-3000:]}"
                time.sleep(0.5)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
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


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.stop()
