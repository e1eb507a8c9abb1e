"""The dashboard's one query layer: every sales figure the page shows, as one DuckDB aggregate over either
the single CSV's cleaned Parquet copy or the warehouse's deduplicated table.

Only the small results reach Python (DuckDB streams the rows and spills what does not fit); the page
(`app.py`) only renders them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from sales_assets.parquet_layer import parquet_glob
from sales_assets.timeseries.series import month_is_complete
from sales_assets.warehouse.loading import exports_table

# Columns the page reads (the warehouse contract guarantees them, no nulls).
SALES_COLUMNS = ("ORDERNUMBER", "SALES", "ORDERDATE", "PRODUCTLINE", "COUNTRY", "CUSTOMERNAME", "YEAR")
FILTER_COLUMNS = ("PRODUCTLINE", "COUNTRY", "YEAR")
HEADLINE = ("total_sales", "orders", "customers", "countries", "order_lines")


@dataclass(frozen=True)
class Filters:
    """The sidebar's choice; an empty tuple means no filter on that column."""

    product_lines: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    years: tuple[int, ...] = ()

    def where(self) -> tuple[str, list]:
        """(` WHERE ...` or empty, its parameters)."""
        clauses, params = [], []
        for column, chosen in zip(
            FILTER_COLUMNS, (self.product_lines, self.countries, self.years), strict=True
        ):
            if chosen:
                clauses.append(f"{column} IN ({', '.join('?' * len(chosen))})")
                params.extend(chosen)
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


@dataclass(frozen=True)
class PartialMonth:
    """The newest month when the data stops before its last day: its first day and the last order date."""

    start: dt.date
    last_order: dt.date


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SalesQueries:
    """The sales figures over `source` (a table or a `read_parquet(...)` call) on `conn`.

    Build it with `from_parquet` (single CSV mode) or `from_warehouse` (folder of exports). Raises
    ValueError naming `where` when the source lacks a column of SALES_COLUMNS.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, source: str, where: str, table: str | None = None):
        self.conn, self.source, self.table = conn, source, table
        columns = {row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        missing = [c for c in SALES_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{where} lacks columns {missing}")

    @classmethod
    def from_parquet(cls, parquet_dir: Path) -> SalesQueries:
        """The cleaned Parquet layer (hive-partitioned by YEAR), one version of it for every query: the
        folder is a symlink swapped on each refresh, so its target is resolved once here."""
        source = f"read_parquet({_literal(parquet_glob(parquet_dir))}, hive_partitioning = true)"
        return cls(duckdb.connect(), source, f"{parquet_dir}: the sales Parquet")

    @classmethod
    def from_warehouse(cls, conn: duckdb.DuckDBPyConnection, table: str, where: Path | str) -> SalesQueries:
        """The warehouse table `table` over `conn` (open it read-only)."""
        return cls(conn, _identifier(table), f"{where}: the {table} table", table)

    def filter_options(self) -> dict[str, list]:
        """Each filter column's distinct values, sorted."""
        row = self.conn.execute(
            "SELECT "
            + ", ".join(
                f"list(DISTINCT {c} ORDER BY {c}) FILTER (WHERE {c} IS NOT NULL)" for c in FILTER_COLUMNS
            )
            + f" FROM {self.source}"
        ).fetchone()
        return {c: list(values or []) for c, values in zip(FILTER_COLUMNS, row, strict=True)}

    def headline(self, filters: Filters = Filters()) -> dict[str, float | int]:
        """Total SALES (USD), distinct orders, customers and countries, and order lines."""
        where, params = filters.where()
        row = self.conn.execute(
            "SELECT coalesce(sum(SALES), 0)::DOUBLE, count(DISTINCT ORDERNUMBER), count(DISTINCT CUSTOMERNAME), "
            f"count(DISTINCT COUNTRY), count(*) FROM {self.source}{where}",
            params,
        ).fetchone()
        return dict(zip(HEADLINE, row, strict=True))

    def sales_by(self, column: str, filters: Filters = Filters()) -> pl.DataFrame:
        """SALES summed per value of `column` (columns `column`, `SALES`), largest first."""
        if column not in SALES_COLUMNS:
            raise ValueError(f"not a sales column: {column}")
        where, params = filters.where()
        rows = self.conn.execute(
            f"SELECT {column}::VARCHAR, sum(SALES)::DOUBLE FROM {self.source}{where} GROUP BY 1 ORDER BY 2 DESC, 1",
            params,
        ).fetchall()
        return pl.DataFrame(rows, schema={column: pl.String, "SALES": pl.Float64}, orient="row")

    def partial_month(self) -> PartialMonth | None:
        """The newest month when the data stops before its last day (the rule of
        `sales_assets.timeseries.series.month_is_complete`, which the forecasts use too), else None. Always
        of the unfiltered data: a filter that leaves a country's last order early in the month does not make
        the month partial."""
        last_order = self.conn.execute(f"SELECT max(ORDERDATE)::DATE FROM {self.source}").fetchone()[0]
        if last_order is None or month_is_complete(last_order):
            return None
        return PartialMonth(dt.date(last_order.year, last_order.month, 1), last_order)

    def sales_by_month(self, filters: Filters = Filters()) -> pl.DataFrame:
        """Monthly SALES (columns `month`, `SALES`, `partial`); `partial` is True on the month
        `partial_month` names."""
        where, params = filters.where()
        rows = self.conn.execute(
            # Positions, not names: the warehouse table has a MONTH column of its own.
            f"SELECT date_trunc('month', ORDERDATE)::DATE, sum(SALES)::DOUBLE FROM {self.source}{where} "
            "GROUP BY 1 ORDER BY 1",
            params,
        ).fetchall()
        monthly = pl.DataFrame(rows, schema={"month": pl.Date, "SALES": pl.Float64}, orient="row")
        partial = self.partial_month()
        is_partial = pl.lit(False) if partial is None else pl.col("month") == partial.start
        return monthly.with_columns(is_partial.alias("partial"))

    def exports(self) -> pl.DataFrame | None:
        """The exports the warehouse table was built from (`<table>_exports`: export key, rows in, rows
        kept), oldest first; None for the Parquet layer or a table not built from a folder of exports."""
        if self.table is None:
            return None
        name = exports_table(self.table)
        found = self.conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [name]
        ).fetchone()[0]
        if not found:
            return None
        rows = self.conn.execute(
            f"SELECT key, rows_in, rows_kept FROM {_identifier(name)} ORDER BY rank"
        ).fetchall()
        return pl.DataFrame(
            rows, schema={"export": pl.String, "rows in": pl.Int64, "rows kept": pl.Int64}, orient="row"
        )
