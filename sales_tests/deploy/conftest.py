"""Fixtures of the production-profile tests: a throwaway PostgreSQL cluster (Debian's server, installed on
demand; the only reason to skip) and the environment a deployment gives every Dagster and MLflow process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sales_tests.conftest import REPO_ROOT

START_SCRIPT = REPO_ROOT / "scripts" / "start_postgres.sh"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_postgres.sh"
PROFILE = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"
# The environment's console scripts (dagster, dagster-daemon, sales-generate) beside its python.
BIN = Path(sys.executable).parent
# start_postgres.sh's exit code when no PostgreSQL server binaries are installed.
NO_POSTGRES = 3


def _start() -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(START_SCRIPT), "start"], capture_output=True, text=True, timeout=180, check=False
    )


def _exports(stdout: str) -> dict[str, str]:
    """`export NAME=value` lines of start_postgres.sh as a dict."""
    pairs = (line.removeprefix("export ").split("=", 1) for line in stdout.splitlines() if "=" in line)
    return {name: value for name, value in pairs}


@pytest.fixture(scope="session")
def postgres_env() -> Iterator[dict[str, str]]:
    """The variables start_postgres.sh exports for a running cluster (DAGSTER_PG_*, SALES_PG_URL,
    SALES_ML__MLFLOW_TRACKING_URI); the cluster is stopped and its folder removed afterwards."""
    started = _start()
    if started.returncode == NO_POSTGRES:
        install = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
        )
        if install.returncode != 0:
            pytest.skip(f"PostgreSQL is not installed and cannot be: {install.stderr.strip()[-500:]}")
        started = _start()
        if started.returncode == NO_POSTGRES:
            pytest.skip(f"PostgreSQL server binaries not found after installing: {started.stderr.strip()}")
    # Any other failure is a fault of the profile, not a missing PostgreSQL: it fails the tests.
    assert started.returncode == 0, f"start_postgres.sh failed:\n{started.stderr[-3000:]}"
    env = _exports(started.stdout)
    try:
        yield env
    finally:
        subprocess.run(["bash", str(START_SCRIPT), "stop", env["SALES_PG_DIR"]], timeout=120, check=False)


@pytest.fixture(scope="module")
def deployment_env(postgres_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of every process of the deployment: the cluster's variables, a DAGSTER_HOME
    holding deploy/postgres/dagster.yaml, and an empty SALES_DATA_DIR with a generated 2,000-row export."""
    root = tmp_path_factory.mktemp("deployment")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROFILE, home / "dagster.yaml")
    raw_csv = root / "raw" / "sales_export.csv"
    env = {
        **os.environ,
        **postgres_env,
        "DAGSTER_HOME": str(home),
        "SALES_DATA_DIR": str(root / "data"),
        "SALES_RAW_CSV": str(raw_csv),
    }
    run_command([str(BIN / "sales-generate"), "--rows", "2000", "--out", str(raw_csv)], env)
    return env


def run_command(argv: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a project command from the repository root as a user would; fail with its output's tail."""
    result = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, (
        f"{' '.join(Path(a).name if '/' in a else a for a in argv)} failed:\n{output}"
    )
    return result
