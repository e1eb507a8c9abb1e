"""The production profile (deploy/postgres/, docs/DEPLOY.md) on a real PostgreSQL cluster: the Dagster CLI
and the segment backfill record their runs in PostgreSQL, a launched run waits in the queue until the daemon
starts it, the DuckDB writer pool is enforced from PostgreSQL, and MLflow tracks and registers there."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from sales_assets.resources import DUCKDB_WRITER_POOL
from sales_assets.settings import Settings
from sales_tests.conftest import REPO_ROOT
from sales_tests.deploy.conftest import BIN, PROFILE, run_command

pytestmark = pytest.mark.postgres


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def dagster_db(env: dict[str, str]) -> str:
    return f"{env['SALES_PG_URL']}/{env['DAGSTER_PG_DB']}"


def test_profile_differs_from_the_local_instance_only_in_storage_and_run_coordinator():
    production = yaml.safe_load(PROFILE.read_text())
    local = yaml.safe_load((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    # Only where runs are stored and how they are started differ from the local instance.
    profile_only = {"storage", "run_coordinator"}
    assert {key: value for key, value in production.items() if key not in profile_only} == {
        key: value for key, value in local.items() if key not in profile_only
    }
    assert production["concurrency"]["pools"]["default_limit"] == 1  # the duckdb_writer pool
    assert production["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed.
    assert production["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


@pytest.fixture(scope="module")
def warehouse_on_postgres(deployment_env: dict[str, str]) -> dict[str, str]:
    """raw_csv -> duckdb_table materialised with the real CLI against the PostgreSQL instance."""
    run_command(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "--select",
            "++duckdb_table",
            "-m",
            "sales_assets.definitions",
        ],
        deployment_env,
    )
    return deployment_env


def test_cli_and_segment_backfill_record_their_runs_in_postgres(warehouse_on_postgres):
    env = warehouse_on_postgres
    # Two segments (the total, which also writes the hierarchy, and one product line) take the same path
    # through the instance as all ten, in less time.
    backfill = run_command(
        [
            str(BIN / "python"),
            "-m",
            "sales_assets.timeseries.backfill",
            "--segment",
            "ALL",
            "--segment",
            "Trains",
        ],
        env,
    )
    url = dagster_db(env)
    runs = query(url, "SELECT pipeline_name, status FROM runs")
    assert runs and all(status == "SUCCESS" for _, status in runs), runs
    assert "__ASSET_JOB" in {name for name, _ in runs}
    materialised = dict(
        query(
            url,
            "SELECT asset_key, count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
            "GROUP BY asset_key",
        )
    )
    assert materialised['["clean_parquet"]'] == 1
    assert materialised['["duckdb_table"]'] == 1
    done, total = map(int, re.search(r"(\d+)/(\d+) segments materialised", backfill.stdout).groups())
    assert done == total == 2
    assert materialised['["ts_risk_reports"]'] == total
    # The writer pool's slot was claimed through PostgreSQL, with the profile's default limit.
    limits = query(url, 'SELECT concurrency_key, "limit" FROM concurrency_limits')
    assert (DUCKDB_WRITER_POOL, 1) in limits
    # Nothing fell back to the sqlite files of a default instance.
    assert not list(Path(env["DAGSTER_HOME"]).rglob("*.db"))


@pytest.fixture
def daemon(warehouse_on_postgres: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`dagster-daemon run` on the code location, in a process group of its own, interrupted afterwards;
    yields the process and its log file."""
    log_path = tmp_path / "daemon.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "sales_assets.definitions"],
        cwd=REPO_ROOT,
        env=warehouse_on_postgres,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process, log_path
    finally:
        # SIGINT is the daemon's orderly shutdown; it stops its code server too.
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wait_for_run_end(url: str, run_id: str, daemon: tuple[subprocess.Popen, Path], timeout: float) -> str:
    """The run's final status; fails with the daemon's log when the daemon exits or the run does not end."""
    process, log = daemon
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline and process.poll() is None:
        status = query(url, "SELECT status FROM runs WHERE run_id = :run_id", run_id=run_id)[0][0]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            return status
        time.sleep(1)
    detail = f"exited with {process.returncode}" if process.poll() is not None else f"after {timeout:.0f}s"
    pytest.fail(f"run {run_id} still {status or 'unknown'}; daemon {detail}:\n{log.read_text()[-3000:]}")


def test_a_launched_run_waits_in_the_postgres_queue_until_the_daemon_starts_it(
    warehouse_on_postgres, request
):
    env = warehouse_on_postgres
    url = dagster_db(env)
    run_command(
        [str(BIN / "dagster"), "job", "launch", "-j", "ts_segments_job", "-m", "sales_assets.definitions"],
        env,
    )
    queued = query(url, "SELECT run_id FROM runs WHERE status = 'QUEUED'")
    assert len(queued) == 1, "the queued run coordinator should leave the launched run in the queue"
    run_id = queued[0][0]
    time.sleep(2)
    assert query(url, "SELECT status FROM runs WHERE run_id = :run_id", run_id=run_id) == [("QUEUED",)]
    status = wait_for_run_end(url, run_id, request.getfixturevalue("daemon"), timeout=180)
    assert status == "SUCCESS", f"run {run_id} ended {status}"


def run_roundtrip(command: str, env: dict[str, str]) -> dict:
    result = run_command([str(BIN / "python"), "-m", "sales_tests.deploy.mlflow_roundtrip", command], env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mlflow_tracks_and_registers_in_postgres(deployment_env):
    env = deployment_env
    assert env["SALES_ML__MLFLOW_TRACKING_URI"].startswith("postgresql+psycopg2://")
    logged = run_roundtrip("log", env)
    # A second process sees the run, the registered version and its alias, and loads the model.
    champion = run_roundtrip("read", env)
    assert (champion["run_id"], champion["version"]) == (logged["run_id"], logged["version"])
    assert champion["run_name"] == "deploy-roundtrip"
    assert champion["params"] == {"rows": "20"}
    assert champion["metrics"]["slope"] == pytest.approx(3.0)
    assert champion["prediction_at_10"] == pytest.approx(31.0)
    # ...and all of it lives in PostgreSQL's mlflow database.
    url = env["SALES_ML__MLFLOW_TRACKING_URI"]
    assert query(url, "SELECT run_uuid FROM runs") == [(logged["run_id"],)]
    aliases = query(url, "SELECT name, alias, version FROM registered_model_aliases")
    ml = Settings().ml
    assert aliases == [(ml.registered_model_name, ml.champion_alias, int(logged["version"]))]
