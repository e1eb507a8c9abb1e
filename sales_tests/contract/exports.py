"""Small exports the way other systems and locales write them, derived from the generated sample (the
first rows of the project's own generator: made-up customers, the real file's shape)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import polars as pl

from sales_assets.ingest.cleaning import clean_to_parquet
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.settings import IngestSettings

Row = dict[str, str]
MONEY = ("PRICEEACH", "SALES", "MSRP")


@cache
def _sample_text(rows: int) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "sample.csv"
        generate_sales_csv(path, rows=rows)
        return path.read_bytes().decode("cp850")


def sample_rows(rows: int = 200) -> list[Row]:
    """The first `rows` generated order lines as text cells, as the sample file spells them."""
    return list(csv.DictReader(io.StringIO(_sample_text(rows))))


def write_export(
    path: Path,
    rows: list[Row],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    columns: list[str] | None = None,
    line_end: str = "\n",
) -> Path:
    """Write `rows` as a CSV export (minimal quoting, the way Excel and most tools write)."""
    columns = columns or list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, columns, delimiter=delimiter, lineterminator=line_end, extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def restyle(rows: list[Row], column: str, style: Callable[[str], str], every: int = 1) -> list[Row]:
    """Rows with `column` rewritten by `style` on every `every`-th row."""
    return [row | {column: style(row[column])} if i % every == 0 else dict(row) for i, row in enumerate(rows)]


def excel_thousands(value: str, thousands: str = ",", decimal: str = ".") -> str:
    """`2871.0` -> `2,871.00` (Excel's `#,##0.00`), in the given separators."""
    text = f"{float(value):,.2f}"
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def decimal_comma(value: str) -> str:
    return value.replace(".", ",")


def order_date(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%m/%d/%Y %H:%M")


def day_first(value: str) -> str:
    date = order_date(value)
    return f"{date.day}/{date.month}/{date.year} 0:00"


def iso_date(value: str) -> str:
    return order_date(value).strftime("%Y-%m-%d %H:%M:%S")


def clean(
    path: Path, work: Path, ingest: dict | None = None, **reading
) -> tuple[object, pl.DataFrame, pl.DataFrame]:
    """(stats, clean frame sorted by ORDERNUMBER/ORDERLINENUMBER, rejects) of cleaning `path` with the
    reading settings `reading` (`dialect={...}`, ...) and the cleaning settings `ingest`."""
    work.mkdir(parents=True, exist_ok=True)
    settings = IngestSettings(reading=reading, **(ingest or {}))
    stats = clean_to_parquet(path, work / "pq", work / "rejects.parquet", settings, work)
    frame = pl.read_parquet(work / "pq", hive_partitioning=True) if stats.rows_clean else pl.DataFrame()
    if frame.height:
        frame = frame.sort("ORDERNUMBER", "ORDERLINENUMBER").select(sorted(frame.columns))
    return stats, frame, pl.read_parquet(work / "rejects.parquet")
