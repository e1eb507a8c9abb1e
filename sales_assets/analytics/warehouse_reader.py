"""Reading the warehouse `sales` table for the analytics assets: its columns and their types, the
column check every query starts with, the numeric columns, the one row an aggregate returns, and
whether the rows were inserted in a key's order (so a view in that order needs no sort).

Every analytics computation runs as DuckDB SQL over the table, so what a step holds in memory is its
aggregates (at most one column's values, for exact quantiles), never the table."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from sales_assets.sql import quote_identifier

# DuckDB type names whose values are numbers (DECIMAL(p, s) is matched by its prefix).
_NUMERIC_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
}


def table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type name of `table`, in the table's order."""
    return {name: dtype for name, dtype, *_ in conn.execute(f"DESCRIBE {quote_identifier(table)}").fetchall()}


def require_columns(conn: duckdb.DuckDBPyConnection, table: str, columns: list[str], what: str) -> None:
    """Raises KeyError naming the columns of `columns` that `table` lacks; `what` says who asked (the
    setting that lists them)."""
    present = table_columns(conn, table)
    missing = [column for column in columns if column not in present]
    if missing:
        raise KeyError(f"{what}: the {table} table lacks column(s) {missing}; it has {list(present)}")


def numeric_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of `table` whose type is an integer, a float or a decimal, in the table's order."""
    return [
        name
        for name, dtype in table_columns(conn, table).items()
        if dtype in _NUMERIC_TYPES or dtype.startswith("DECIMAL")
    ]


def scalar_row(conn: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> tuple:
    """The one row a query returns (DuckDB 2 wants every result consumed, so `fetchall`, not `fetchone`)."""
    [row] = conn.execute(sql, parameters).fetchall()
    return row


def rows_in_key_order(
    conn: duckdb.DuckDBPyConnection, table: str, key: Sequence[str], batch_rows: int = 1_000_000
) -> bool:
    """True when the rows of `table`, as a query without ORDER BY returns them (the order they were
    inserted in, which DuckDB keeps while `preserve_insertion_order` is on), come in strictly increasing
    order of the `key` columns, none of them null: then `SELECT ... WHERE ...` without ORDER BY returns
    the same rows in the same order as with `ORDER BY key` (a unique order: no two rows tie), without the
    sort. False as soon as a row breaks that order (or when the setting is off).

    One streaming scan of the key columns, `batch_rows` at a time; holds one batch, never the table.
    """
    import numpy as np  # here, not at the top: loading the analytics group imports no numeric stack

    (preserved,) = scalar_row(conn, "SELECT current_setting('preserve_insertion_order')")
    if not preserved:
        return False
    columns = ", ".join(quote_identifier(column) for column in key)
    reader = conn.sql(f"SELECT {columns} FROM {quote_identifier(table)}").to_arrow_reader(batch_rows)
    previous: list = []
    for batch in reader:
        if batch.num_rows == 0:
            continue
        if any(column.null_count for column in batch.columns):
            return False
        values = [column.to_numpy(zero_copy_only=False) for column in batch.columns]
        if previous:
            values = [np.concatenate([last, value]) for last, value in zip(previous, values, strict=True)]
        # Row i+1 follows row i when its key is greater: compare the columns last to first.
        after = values[-1][1:] > values[-1][:-1]
        for value in reversed(values[:-1]):
            after = (value[1:] > value[:-1]) | ((value[1:] == value[:-1]) & after)
        if not after.all():
            return False
        previous = [value[-1:] for value in values]
    return True
