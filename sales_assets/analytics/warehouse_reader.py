"""Reading the warehouse `sales` table for the analytics assets: its columns and their types, the
column check every query starts with, the numeric columns, and the one row an aggregate returns.

Every analytics computation runs as DuckDB SQL over the table, so what a step holds in memory is its
aggregates (at most one column's values, for exact quantiles), never the table."""

from __future__ import annotations

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
