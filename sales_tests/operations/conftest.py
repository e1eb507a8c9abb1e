"""Fixtures for operating the project as a user does: a real Dagster instance folder (the project's
dagster.yaml), a data folder, and the real CLI in subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sales_tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


@pytest.fixture
def project_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a command run by a user: DAGSTER_HOME with the project's dagster.yaml, an empty
    SALES_DATA_DIR, no settings file."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home)
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(home),
        SALES_DATA_DIR=str(tmp_path / "data"),
        SALES_SETTINGS_FILE="",
        PYTHONWARNINGS="ignore",
    )
    env.pop("SALES_RAW_CSV", None)
    return env


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def materialize_command(selection: str) -> list[str]:
    return [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "--select",
        selection,
        "-m",
        "sales_assets.definitions",
    ]


def run(command: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
