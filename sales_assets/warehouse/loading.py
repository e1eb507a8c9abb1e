"""The warehouse's SQL: the `sales` table rebuilt from the Parquet layer in one statement."""

from __future__ import annotations

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
