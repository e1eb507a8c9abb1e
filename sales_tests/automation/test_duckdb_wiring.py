"""The final Definitions: every step that opens the DuckDB file waits for a held lock (the resource's backoff),
no step has a retry policy (a Ctrl-C would become a retry), and the one writer runs in the `duckdb_writer`
concurrency pool so two runs never write the file at once."""

from __future__ import annotations

import shutil

import dagster as dg

from sales_assets.resources import DUCKDB_WRITER_POOL
from sales_tests.conftest import REPO_ROOT

DUCKDB_RESOURCE_KEYS = {"duckdb", "duckdb_reader"}


def _ops_by_assets_def() -> list[tuple[dg.AssetsDefinition, dg.OpDefinition]]:
    from sales_assets.definitions import defs

    return [
        (assets_def, op)
        for assets_def in defs.resolve_asset_graph().assets_defs
        if assets_def.is_executable
        for op in assets_def.node_def.iterate_op_defs()
    ]


def _names(assets_def: dg.AssetsDefinition) -> list[str]:
    keys = [k.to_user_string() for k in assets_def.keys] + [k.to_user_string() for k in assets_def.check_keys]
    return sorted(keys)


def test_no_step_has_a_retry_policy_so_ctrl_c_stops_the_run():
    """Dagster turns an interrupt in a step that has a RetryPolicy into a retry of that step; the lock wait
    lives in the DuckDB resource instead (next test)."""
    with_policy = [_names(a) for a, op in _ops_by_assets_def() if op.retry_policy is not None]
    assert with_policy == [], f"steps a Ctrl-C would retry instead of stopping: {with_policy}"


def test_every_step_that_opens_duckdb_does_it_through_the_resource_that_waits_for_a_held_lock():
    from dagster_duckdb import DuckDBResource

    from sales_assets.definitions import defs

    users = [(a, op) for a, op in _ops_by_assets_def() if op.required_resource_keys & DUCKDB_RESOURCE_KEYS]
    assert "duckdb_table" in {k.to_user_string() for a, _ in users for k in a.keys}
    resources = defs.resources or {}
    for key in DUCKDB_RESOURCE_KEYS:
        assert isinstance(resources[key], DuckDBResource), key


# Holds the file's lock until told to let go on stdin, then releases it a moment later: the test proves
# the lock was held by a refused plain connect (no timing), then lets the resource's backoff wait it out.
HOLD_THE_LOCK = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
connection.execute("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS x")
print("locked", flush=True)
sys.stdin.readline()
time.sleep(0.5)
connection.close()
"""


def test_a_reader_waits_while_another_process_holds_the_duckdb_file(tmp_path):
    """A real lock held by another process: the resource's backoff opens the file once it is released."""
    import subprocess
    import sys

    import duckdb
    import pytest
    from dagster_duckdb import DuckDBResource

    database = tmp_path / "sales.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(database))
        assert holder.stdin is not None
        holder.stdin.write("release\n")
        holder.stdin.flush()
        with DuckDBResource(database=str(database)).get_connection() as connection:
            assert connection.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        holder.wait(timeout=30)


def test_only_duckdb_table_writes_and_it_runs_in_the_writer_pool():
    writers = [(a, op) for a, op in _ops_by_assets_def() if "duckdb" in op.required_resource_keys]
    assert [_names(a) for a, _ in writers] == [["duckdb_table"]]
    (_, writer_op), *_ = writers
    assert writer_op.pool == DUCKDB_WRITER_POOL


def test_the_instance_lets_one_writer_into_the_pool_at_a_time(tmp_path, monkeypatch):
    """dagster_home/dagster.yaml gives every pool, `duckdb_writer` included, a limit of one."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
