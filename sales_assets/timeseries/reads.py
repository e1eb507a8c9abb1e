"""What the timeseries group reads from the DuckDB `sales` table: the data window, the segment catalogue
and one segment's monthly totals. Aggregation runs in DuckDB, so only month totals reach Python.

`ts_segments` scans the table once for the catalogue and writes it, with the data window, to
`SEGMENTS_FILE`; the report partitions read that file instead of scanning the table again (issue 15).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ValidationError

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


def check_segment(segment: Segment, valid: list[str], min_months: int) -> None:
    """Fail with the list of `valid` segment keys when `segment` is not one of them.

    Raises:
        UnknownSegmentError: naming the segment and every valid key.
    """
    if segment.key not in valid:
        raise UnknownSegmentError(
            f"segment {segment.key!r} is not a segment of table {TABLE!r} (pairs need orders in at least "
            f"{min_months} months); valid segments: {', '.join(valid)}"
        )


def require_segment(connection: Any, segment: Segment, min_months: int) -> None:
    """`check_segment` against the table itself (the CLI, which runs without `ts_segments`)."""
    check_segment(segment, segment_keys(connection, min_months), min_months)


SEGMENTS_FILE = "sales_ts_segments.json"


class CatalogueRow(BaseModel):
    segment: str
    product_line: str | None
    country: str | None
    active_months: int
    partitioned: bool


class SegmentCatalogue(BaseModel):
    """What `ts_segments` saw in one scan of the table: every segment and the data window (first and last
    ORDERDATE), which every segment's monthly series spans."""

    segment_min_months: int
    first_order: datetime
    last_order: datetime
    segments: list[CatalogueRow]

    @classmethod
    def scan(cls, connection: Any, min_months: int) -> SegmentCatalogue:
        first, last = data_window(connection)
        rows = segment_catalogue(connection, min_months).to_dicts()
        return cls(segment_min_months=min_months, first_order=first, last_order=last, segments=rows)

    @classmethod
    def read(cls, path: Path) -> SegmentCatalogue:
        """Raises:
        FileNotFoundError / ValueError: the file is missing or not a catalogue; both say to materialise
            `ts_segments` (which writes it) first."""
        if not path.is_file():
            raise FileNotFoundError(
                f"segment catalogue {path} not found: materialise ts_segments first (it writes the file)"
            )
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as error:
            raise ValueError(
                f"{path}: not a segment catalogue ({error.errors()[0]['msg']} at "
                f"{'.'.join(str(p) for p in error.errors()[0]['loc'])}); materialise ts_segments again"
            ) from error

    @property
    def partition_keys(self) -> list[str]:
        """Partition keys in a stable order: ALL, product lines, then pairs."""
        return [row.segment for row in self.segments if row.partitioned]

    @property
    def product_lines(self) -> list[str]:
        """The product lines, the bottom level of the hierarchy under ALL."""
        return [row.segment for row in self.segments if row.country is None and row.product_line is not None]

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.first_order, self.last_order

    def require(self, segment: Segment) -> None:
        check_segment(segment, self.partition_keys, self.segment_min_months)


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


def load_segment_series(
    connection: Any, segment: Segment, window: tuple[datetime, datetime] | None = None
) -> MonthlySeries:
    """One segment's monthly series over `window` (first, last ORDERDATE; default: read from the table)."""
    first, last = window or data_window(connection)
    return build_monthly_series(segment_month_totals(connection, segment), first, last)
