"""The final Definitions: every step that opens the DuckDB file retries with backoff, and the one writer
runs in the `duckdb_writer` concurrency pool so two runs never write the file at once."""

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


def test_every_step_that_opens_duckdb_retries_with_backoff():
    users = [(a, op) for a, op in _ops_by_assets_def() if op.required_resource_keys & DUCKDB_RESOURCE_KEYS]
    user_keys = {k.to_user_string() for a, _ in users for k in a.keys}
    assert "duckdb_table" in user_keys, "the duckdb_table asset (the writer) is not in the Definitions yet"
    without_retry = [
        _names(a)
        for a, op in users
        if op.retry_policy is None or op.retry_policy.max_retries < 1 or op.retry_policy.backoff is None
    ]
    assert without_retry == [], (
        f"steps opening the DuckDB file without a retry policy with backoff: {without_retry}"
    )


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
