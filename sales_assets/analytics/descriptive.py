"""Descriptive statistics of the numeric columns, one row per column, as pandas' `describe` gives them,
computed in DuckDB one column at a time (exact quartiles hold one column's values, never the table)."""

from __future__ import annotations

import duckdb
import polars as pl

from sales_assets.analytics.warehouse_reader import numeric_columns
from sales_assets.sql import quote_identifier

STATISTICS = ("count", "missing", "mean", "std", "min", "q25", "median", "q75", "max")
SCHEMA = {"column": pl.String, "count": pl.Int64, "missing": pl.Int64} | {
    statistic: pl.Float64 for statistic in STATISTICS[2:]
}
# What each statistic is, for the UI's column headers.
DESCRIPTIONS = {
    "count": "non-null values",
    "missing": "null values",
    "mean": "arithmetic mean, in the column's unit",
    "std": "sample standard deviation (n - 1), in the column's unit",
    "q25": "first quartile (linear interpolation)",
    "median": "median (linear interpolation)",
    "q75": "third quartile (linear interpolation)",
}


def numeric_descriptive_stats(conn: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """count, missing, mean, sample std, min, quartiles and max of every numeric column of `table`, in
    the table's column order (the frame `SCHEMA`).

    Quartiles are `quantile_cont` (linear interpolation between the two nearest ranks: pandas' and
    Polars' default, numpy's `linear`). The mean is `favg` (Kahan-compensated summation); the standard
    deviation takes a second pass over the deviations from it, also compensated, which gives the exact
    value rounded to a double (Polars' `std` was off by up to 1.1e-12 relative on a generated
    table). Raises ValueError when `table` has no numeric column.
    """
    numeric = numeric_columns(conn, table)
    if not numeric:
        raise ValueError(f"descriptive statistics: no numeric column in the {table} table")
    source = quote_identifier(table)
    rows = []
    for name in numeric:
        # One scan per column, no CTE: a CTE referenced three times (the mean's two subqueries) is
        # materialised, a copy of the column that spilled to disk at 20 million rows beside the quartiles'
        # buffer; here the quartiles' buffer of one column is all the query holds.
        [row] = conn.execute(
            f"""SELECT count(value), count(*) - count(value), favg(value), min(value),
                       quantile_cont(value, [0.25, 0.5, 0.75]), max(value)
                FROM (SELECT CAST({quote_identifier(name)} AS DOUBLE) AS value FROM {source})"""
        ).fetchall()
        count, missing, mean, low, quartiles, high = row
        q25, median, q75 = quartiles or (None, None, None)
        rows.append([name, count, missing, mean, None, low, q25, median, q75, high])
    # The standard deviations of every column in one more scan, around the means found above.
    deviations = ", ".join(
        f"CASE WHEN count({value}) > 1 THEN sqrt(fsum(({value} - CAST(? AS DOUBLE)) ^ 2) / (count({value}) - 1)) END"
        for value in (f"CAST({quote_identifier(name)} AS DOUBLE)" for name in numeric)
    )
    [stds] = conn.execute(f"SELECT {deviations} FROM {source}", [row[3] for row in rows]).fetchall()
    for row, std in zip(rows, stds, strict=True):
        row[4] = std
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")
