"""Reading the warehouse `sales` table for the analytics assets, through the read-only DuckDB resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import polars as pl
from dagster_duckdb import DuckDBResource

SALES_TABLE = "sales"
T = TypeVar("T")


def _select(columns: list[str] | None) -> str:
    projection = ", ".join(f'"{column}"' for column in columns) if columns else "*"
    return f"SELECT {projection} FROM {SALES_TABLE}"


def read_sales(reader: DuckDBResource, columns: list[str] | None = None) -> pl.DataFrame:
    """The `sales` table (or the named columns of it) as a Polars frame."""
    with reader.get_connection() as conn:
        return conn.sql(_select(columns)).pl()


def with_sales_lazy(reader: DuckDBResource, consume: Callable[[pl.LazyFrame], T]) -> T:
    """Run `consume` on a lazy scan of the whole table while the connection is open, so an aggregate
    streams through DuckDB's batches instead of loading every column."""
    with reader.get_connection() as conn:
        return consume(conn.sql(_select(None)).pl(lazy=True))
