"""A run killed with SIGKILL inside `duckdb_table` (the one step of the `duckdb_writer` pool) blocks
nothing: the next plain `dagster asset materialize` marks it failed, frees its pool slot, removes its
half-built database and finishes; the killed run's step worker does not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import psutil
import pytest

from sales_assets.ingest.generator import generate_sales_csv
from sales_tests.conftest import REPO_ROOT
from sales_tests.operations.conftest import materialize_command, run, wait_for

# Rows enough for the DuckDB load to take a few seconds on a small machine, so the kill lands inside it.
ROWS = 600_000


@pytest.fixture
def cleaned_big_layer(project_env) -> dict[str, str]:
    """A generated export of ROWS rows, cleaned into the data folder (in-process, to save a step start)."""
    data = Path(project_env["SALES_DATA_DIR"])
    raw = data / "raw" / "sales_data_sample.csv"
    generate_sales_csv(raw, rows=ROWS)
    from sales_assets.ingest.defs import clean_parquet, raw_csv
    from sales_assets.resources import build_resources

    result = dg.materialize(
        [raw_csv, clean_parquet],
        resources=build_resources(data_dir=data),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return project_env


def _run_status(env: dict[str, str]) -> list[dg.DagsterRunStatus]:
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            return [r.status for r in instance.get_runs()]
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous


@pytest.mark.parametrize("kill", ["process_group", "cli_process_only"])
def test_a_run_killed_inside_duckdb_table_blocks_nothing(cleaned_big_layer, kill):
    env = cleaned_big_layer
    duckdb_dir = Path(env["SALES_DATA_DIR"]) / "duckdb"
    victim = subprocess.Popen(
        materialize_command("duckdb_table"),
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        building = wait_for(
            lambda: duckdb_dir.is_dir() and list(duckdb_dir.glob(".sales.duckdb.build-*")),
            timeout=240,
            what="duckdb_table to start building its database",
        )
        step_workers = psutil.Process(victim.pid).children(recursive=True)
        if kill == "process_group":
            os.killpg(victim.pid, signal.SIGKILL)
        else:
            os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        # The step worker notices its run's process is gone and exits (no orphan holding the files).
        gone, alive = psutil.wait_procs(step_workers, timeout=30)
        assert alive == [], f"orphaned step workers: {alive}"
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    assert building  # a half-built database was left behind
    assert _run_status(env) == [dg.DagsterRunStatus.STARTED]

    second = run(materialize_command("duckdb_table"), env, timeout=300)

    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    output = second.stdout + second.stderr
    assert "recovery: 1 run(s) whose process was gone" in output
    assert "marked failed, pool slots freed" in output
    assert sorted(_run_status(env), key=str) == sorted(
        [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE], key=str
    )
    assert list(duckdb_dir.glob(".sales.duckdb.*")) == []  # the dead run's build file was swept
    with duckdb.connect(str(duckdb_dir / "sales.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM sales").fetchall() == [(ROWS,)]
