"""What the timeseries group reads from the DuckDB `sales` table: the data window, the segment catalogue
and one segment's monthly totals. Aggregation runs in DuckDB, so only month totals reach Python."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from sales_assets.timeseries.series import ALL, MonthlySeries, Segment, build_monthly_series

TABLE = "sales"


def data_window(connection: Any) -> tuple[datetime, datetime]:
    """First and last ORDERDATE of the whole table; every segment's series spans these months."""
    window = connection.sql(f"SELECT min(ORDERDATE) AS first, max(ORDERDATE) AS last FROM {TABLE}").pl()
    first, last = window["first"][0], window["last"][0]
    if first is None or last is None:
        raise ValueError(
            f"DuckDB table {TABLE!r} has no ORDERDATE values: nothing to build a monthly series from"
        )
    return first, last


def segment_catalogue(connection: Any, min_months: int) -> pl.DataFrame:
    """Every segment with its count of months with orders, and whether it gets a partition.

    `ALL` and each PRODUCTLINE always do; a PRODUCTLINE x COUNTRY pair does when it has orders in at
    least `min_months` distinct months, since sparser pairs are mostly zeros and support no seasonal model.
    """
    catalogue = connection.sql(
        f"""
        SELECT PRODUCTLINE AS product_line, COUNTRY AS country,
               count(DISTINCT date_trunc('month', ORDERDATE)) AS active_months
        FROM {TABLE}
        GROUP BY GROUPING SETS ((), (PRODUCTLINE), (PRODUCTLINE, COUNTRY))
        """
    ).pl()
    keys = [Segment(p, c).key for p, c in catalogue.select("product_line", "country").iter_rows()]
    return (
        catalogue.with_columns(segment=pl.Series(keys, dtype=pl.String))
        .with_columns(partitioned=pl.col("country").is_null() | (pl.col("active_months") >= min_months))
        .with_columns(
            level=pl.when(pl.col("segment") == ALL)
            .then(0)
            .when(pl.col("country").is_null())
            .then(1)
            .otherwise(2)
        )
        .sort("level", "product_line", "country", nulls_last=False)
        .select("segment", "product_line", "country", "active_months", "partitioned")
    )


def segment_keys(connection: Any, min_months: int) -> list[str]:
    """Partition keys in a stable order: ALL, product lines, then pairs."""
    return segment_catalogue(connection, min_months).filter("partitioned")["segment"].to_list()


class UnknownSegmentError(ValueError):
    """A segment that has no partition: not in the data, or a pair with too little history."""


def require_segment(connection: Any, segment: Segment, min_months: int) -> None:
    """Fail with the list of valid segment keys when `segment` is not one of them."""
    valid = segment_keys(connection, min_months)
    if segment.key not in valid:
        raise UnknownSegmentError(
            f"segment {segment.key!r} is not a segment of table {TABLE!r} (pairs need orders in at least "
            f"{min_months} months); valid segments: {', '.join(valid)}"
        )


def segment_month_totals(connection: Any, segment: Segment) -> pl.DataFrame:
    """Monthly SALES of one segment (months without orders are absent here; the series fills them)."""
    conditions, params = [], []
    if segment.product_line is not None:
        conditions.append("PRODUCTLINE = ?")
        params.append(segment.product_line)
    if segment.country is not None:
        conditions.append("COUNTRY = ?")
        params.append(segment.country)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return connection.sql(
        f"""
        SELECT date_trunc('month', ORDERDATE)::TIMESTAMP AS month, sum(SALES) AS sales
        FROM {TABLE} {where}
        GROUP BY 1 ORDER BY 1
        """,
        params=params or None,
    ).pl()


def load_segment_series(connection: Any, segment: Segment) -> MonthlySeries:
    first, last = data_window(connection)
    return build_monthly_series(segment_month_totals(connection, segment), first, last)
