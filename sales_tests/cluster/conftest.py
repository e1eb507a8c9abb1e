"""Fixtures of the cluster-profile tests (marker `cluster`): a throwaway Redis broker, the throwaway
PostgreSQL cluster of the production profile, an MLflow tracking server on that PostgreSQL with proxied
artifacts, each on a free loopback port, and celery workers started with the project's worker command
(deploy/celery/worker.sh), each a host of its own (`sales_tests.cluster.services`). Skip only when Redis or
PostgreSQL is not installed and cannot be (scripts/install_redis.sh, scripts/install_postgres.sh), or
when namespaces cannot be made (not root)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sales_tests.cluster.services import Workers, can_make_hosts, redis_server
from sales_tests.cluster.services import mlflow_server as running_mlflow_server
from sales_tests.conftest import REPO_ROOT
from sales_tests.deploy.conftest import postgres_env  # noqa: F401  (the session's PostgreSQL cluster)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "sales_tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


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
    with redis_server(server, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Celery workers, each a host of its own (`sales_tests.cluster.services`), stopped afterwards."""
    if not can_make_hosts():
        pytest.skip("the workers' own namespaces and private mounts need root and unshare")
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def mlflow_server(postgres_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:  # noqa: F811
    """(tracking URI, artifact folder) of an MLflow tracking server whose store is the session's PostgreSQL
    `mlflow` database and whose proxied artifacts land in the folder (the object store's stand-in)."""
    destination = tmp_path / "artifact-store"
    with running_mlflow_server(tmp_path, postgres_env["SALES_ML__MLFLOW_TRACKING_URI"], destination) as uri:
        yield uri, destination
