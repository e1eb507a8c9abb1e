"""The warehouse's SQL: the `sales` table rebuilt from the Parquet layer in one statement, or from the
clean partitions of a folder of exports with one row per order line, the newest export winning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sales_assets.parquet_layer import parquet_glob


def replace_sales_table(conn: duckdb.DuckDBPyConnection, parquet_dir: Path, table: str = "sales") -> int:
    """`CREATE OR REPLACE` the table from the hive-partitioned Parquet; returns its row count.

    DuckDB swaps the table in one transaction, so readers see the old table or the new one, never half.
    No ORDER BY: sorting millions of wide rows would cost memory for an order nobody relies on.
    """
    conn.execute(
        f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT * FROM read_parquet(?, hive_partitioning = true, hive_types = {{'YEAR': BIGINT}})
        """,
        [parquet_glob(parquet_dir)],
    )
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def table_columns(conn: duckdb.DuckDBPyConnection, table: str = "sales") -> list[tuple[str, str]]:
    return [(name, dtype) for name, dtype, *_ in conn.execute(f"DESCRIBE {table}").fetchall()]


RANK = "__export_rank"
LINE_KEY = ("ORDERNUMBER", "ORDERLINENUMBER")


@dataclass(frozen=True)
class PartitionLoad:
    """One export partition's share of the table: rows in its clean layer and rows kept in `sales`."""

    key: str
    rank: int
    rows_in: int
    rows_kept: int


@dataclass(frozen=True)
class ExportsLoad:
    """What `replace_sales_table_from_exports` built: table rows, distinct order lines, order lines found
    in more than one export (their rows from the older exports were replaced), and per partition."""

    rows: int
    order_lines: int
    replaced_lines: int
    partitions: list[PartitionLoad]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def exports_union_sql(globs: Sequence[str]) -> str:
    """One SELECT over every partition's Parquet files (`globs` oldest export first), each row tagged
    with its export's rank (`__export_rank`, its index in `globs`); columns matched by name, so exports
    with different extra columns union (missing ones are NULL)."""
    if not globs:
        raise ValueError("no export partitions to load")
    parts = [
        f"SELECT *, {rank}::INTEGER AS {RANK} FROM read_parquet({_sql_text(glob)}, hive_partitioning = true, "
        "hive_types = {'YEAR': BIGINT})"
        for rank, glob in enumerate(globs)
    ]
    return "\nUNION ALL BY NAME\n".join(parts)


def replace_sales_table_from_exports(
    conn: duckdb.DuckDBPyConnection, partitions: Sequence[tuple[str, str]], table: str = "sales"
) -> ExportsLoad:
    """`CREATE OR REPLACE` the table from export partitions, given as (key, Parquet glob) oldest first.

    Every order line (ORDERNUMBER, ORDERLINENUMBER) comes from the newest export that has it: its rows
    there are kept and its rows in older exports are not (an export replaces lines, it does not add to
    them; a line repeated inside one export stays as that export has it). Bounded memory: a grouped
    aggregate (the newest rank per line) and a semi-join, both of which DuckDB spills to disk past its
    memory limit; no window over the rows, no sort. Raises ValueError when `partitions` is empty.
    """
    union = exports_union_sql([glob for _, glob in partitions])
    on = " AND ".join(f"u.{c} = b.{c}" for c in LINE_KEY)
    line = ", ".join(LINE_KEY)
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __newest AS
        SELECT {line}, max({RANK}) AS {RANK}, min({RANK}) < max({RANK}) AS replaced
        FROM ({union}) GROUP BY {line}
        """
    )
    conn.execute(
        f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT * EXCLUDE ({RANK}) FROM ({union}) u SEMI JOIN __newest b ON {on} AND u.{RANK} = b.{RANK}
        """
    )
    by_rank = dict.fromkeys(range(len(partitions)), (0, 0))
    for rank, rows_in, kept in conn.execute(
        f"""
        SELECT u.{RANK}, count(*), count(*) FILTER (WHERE u.{RANK} = b.{RANK})
        FROM ({union}) u JOIN __newest b ON {on} GROUP BY u.{RANK}
        """
    ).fetchall():
        by_rank[rank] = (rows_in, kept)
    order_lines, replaced = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE replaced) FROM __newest"
    ).fetchone()
    conn.execute("DROP TABLE __newest")
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return ExportsLoad(
        rows=rows,
        order_lines=order_lines,
        replaced_lines=replaced,
        partitions=[PartitionLoad(key, rank, *by_rank[rank]) for rank, (key, _) in enumerate(partitions)],
    )


def exports_table(table: str = "sales") -> str:
    """The table beside `table` that records the exports it was built from (folder mode only)."""
    return f"{table}_exports"


def record_exports_used(
    conn: duckdb.DuckDBPyConnection, load: ExportsLoad, sha256: Sequence[str], table: str = "sales"
) -> None:
    """`CREATE OR REPLACE` `<table>_exports`: one row per export partition the table was built from, in the
    warehouse's order (rank 0 the oldest), with its key, full content sha256 and rows in and kept. It lives
    in the same file as the table, so a reader (the training lineage, the dashboard) sees the exports of
    the table it reads."""
    if len(sha256) != len(load.partitions):
        raise ValueError(f"{len(sha256)} digests for {len(load.partitions)} partitions")
    conn.execute(
        f"CREATE OR REPLACE TABLE {exports_table(table)} "
        "(rank INTEGER, key VARCHAR, sha256 VARCHAR, rows_in BIGINT, rows_kept BIGINT)"
    )
    conn.executemany(
        f"INSERT INTO {exports_table(table)} VALUES (?, ?, ?, ?, ?)",
        [
            [p.rank, p.key, digest, p.rows_in, p.rows_kept]
            for p, digest in zip(load.partitions, sha256, strict=True)
        ],
    )


def exports_used(conn: duckdb.DuckDBPyConnection, table: str = "sales") -> list[tuple[str, str]] | None:
    """(key, sha256) of the exports `table` was built from, oldest first (its rank order); None when the
    table was not built from a folder of exports (no `<table>_exports` beside it)."""
    found = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
        [exports_table(table)],
    ).fetchone()[0]
    if not found:
        return None
    return [
        (key, digest)
        for key, digest in conn.execute(
            f"SELECT key, sha256 FROM {exports_table(table)} ORDER BY rank"
        ).fetchall()
    ]
