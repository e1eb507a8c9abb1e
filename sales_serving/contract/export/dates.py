"""Dates as exports spell them: the file's date order decided from evidence, and the parsing of date text
into datetimes in that order."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import polars as pl

from sales_serving.contract.export.dialect import Dialect
from sales_serving.contract.export.errors import SETTING_PREFIX, cut, export_error
from sales_serving.contract.export.settings import DateOrder, ExportLayout

EXCEL_EPOCH = "1899-12-30"  # day 0 of Excel's 1900 date system (its day 60 is the phantom 1900-02-29)
DATE_PARTS = re.compile(
    r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([AaPp][Mm])?)?$"
)
EXCEL_SERIAL = r"^\d{1,7}(?:\.\d+)?$"


class DateOrderDecision(NamedTuple):
    """The date order of a file and the evidence for it."""

    order: str
    evidence: str


def _date_parts(text: pl.Expr) -> list[pl.Expr]:
    return [text.str.extract(DATE_PARTS.pattern, i) for i in range(1, 8)]


def decide_date_order(
    path: Path, pairs: pl.DataFrame, layout: ExportLayout, override: DateOrder | None
) -> DateOrderDecision:
    """The date order for the file from its distinct (date text, month number text) pairs.

    Day-first evidence: a first number above 12, or a second number equal to the row's month while the
    first is not. Month-first evidence: the mirror image. Evidence both ways (a file that mixes orders, or
    dates that disagree with the month column) or none at all where the order matters stops the run.
    """
    column = layout.date_column or "date"
    if override:
        return DateOrderDecision(override, "from settings")
    month = pl.col("month").str.strip_chars().cast(pl.Int64, strict=False)
    first, second, year = (
        pl.col("text").str.extract(DATE_PARTS.pattern, i).cast(pl.Int64) for i in (1, 2, 3)
    )
    four_digit_first = pl.col("text").str.extract(DATE_PARTS.pattern, 1).str.len_chars() == 4
    parts = pairs.select(
        pl.col("text"),
        pl.col("line"),
        first.alias("first"),
        second.alias("second"),
        year.alias("year"),
        four_digit_first.alias("year_first"),
        month.alias("month"),
    ).filter(pl.col("first").is_not_null() & ~pl.col("year_first"))
    if parts.is_empty():
        return DateOrderDecision(
            "year_first", "no day/month dates (ISO year-first or Excel day numbers only)"
        )
    differ = pl.col("first") != pl.col("second")
    # A value with both numbers above 12 is no date in either order: it is rejected, not evidence.
    first_big = (pl.col("first") > 12) & (pl.col("second") <= 12)
    second_big = (pl.col("second") > 12) & (pl.col("first") <= 12)
    day = parts.filter(
        first_big | (differ & (pl.col("second") == pl.col("month")) & (pl.col("first") != pl.col("month")))
    )
    month_first = parts.filter(
        second_big | (differ & (pl.col("first") == pl.col("month")) & (pl.col("second") != pl.col("month")))
    )
    if day.height and month_first.height:
        d, m = day.row(0, named=True), month_first.row(0, named=True)
        raise export_error(
            path,
            f"dates read day-first in {day.height} distinct value(s) (e.g. {cut(d['text'])}, line {d['line']}) "
            f"but month-first in {month_first.height} (e.g. {cut(m['text'])}, line {m['line']}), counting "
            f"numbers above 12 and agreement with {layout.month_column or 'the month column'}",
            column=column,
            setting=f"{SETTING_PREFIX}DATE_ORDER to day_first or month_first",
        )
    if day.height:
        example = day.row(0, named=True)
        return DateOrderDecision(
            "day_first",
            f"{day.height} distinct date(s) only day-first reads right, e.g. {cut(example['text'])}",
        )
    if month_first.height:
        example = month_first.row(0, named=True)
        return DateOrderDecision(
            "month_first",
            f"{month_first.height} distinct date(s) only month-first reads right, e.g. {cut(example['text'])}",
        )
    unsettled = parts.filter(differ)
    if unsettled.is_empty():
        return DateOrderDecision(
            "month_first", "day and month are equal in every date: the order makes no difference"
        )
    example = unsettled.row(0, named=True)
    raise export_error(
        path,
        "cannot tell whether dates are day-first or month-first: no number above 12 and no month column "
        "that settles it",
        line=example["line"],
        column=column,
        seen=example["text"],
        setting=f"{SETTING_PREFIX}DATE_ORDER to day_first or month_first",
    )


def parse_dates(text: pl.Expr, dialect: Dialect, extra_formats: Sequence[str] = ()) -> pl.Expr:
    """Datetime (us) of date text in the file's date order: `D/M/Y`, `M/D/Y` or `Y-M-D` with `/ . -`,
    an optional `H:MM[:SS]` time (with AM/PM), two-digit years by the pivot, Excel serial day numbers
    (days since 1899-12-30, fraction = time of day), then `extra_formats` (strptime). Null otherwise,
    including dates that do not exist (31/2/2003). Meant for a frame of distinct date texts."""
    if dialect.date_order is None:
        raise ValueError("decide the date order (Export.resolve_date_order) before parsing dates")
    g = _date_parts(text)
    year_first = g[0].str.len_chars() == 4
    if dialect.date_order == "day_first":
        day, month = g[0], g[1]
    else:
        month, day = g[0], g[1]
    day = pl.when(year_first).then(g[2]).otherwise(day)
    month = pl.when(year_first).then(g[1]).otherwise(month)
    # A four-digit first number is a year in any file; otherwise the year is last, in 2 or 4 digits.
    valid_shape = year_first
    if dialect.date_order != "year_first":
        valid_shape = year_first | g[2].str.len_chars().is_in([2, 4])
    year = pl.when(year_first).then(g[0].cast(pl.Int64)).otherwise(g[2].cast(pl.Int64))
    two_digit = ~year_first & (g[2].str.len_chars() == 2)
    pivot = dialect.two_digit_year_pivot
    year = (
        pl.when(two_digit)
        .then(pl.when(year < pivot).then(year + 2000).otherwise(year + 1900))
        .otherwise(year)
    )
    hour = g[3].cast(pl.Int64).fill_null(0)
    meridiem = g[6].str.to_lowercase()
    hour = (
        pl.when(meridiem == "pm").then(hour % 12 + 12).when(meridiem == "am").then(hour % 12).otherwise(hour)
    )
    iso = pl.format(
        "{}-{}-{} {}:{}:{}",
        year.cast(pl.String).str.zfill(4),
        month.str.zfill(2),
        day.str.zfill(2),
        hour.cast(pl.String).str.zfill(2),
        g[4].fill_null("00"),
        g[5].fill_null("00"),
    )
    parsed = pl.when(valid_shape).then(iso.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"))
    serial_days = pl.when(text.str.contains(EXCEL_SERIAL)).then(text.cast(pl.Float64, strict=False))
    serial = pl.lit(EXCEL_EPOCH).str.to_datetime("%Y-%m-%d", time_unit="us") + pl.duration(
        microseconds=(serial_days * 86_400_000_000).round(0).cast(pl.Int64)
    )
    candidates = [parsed, pl.when(serial_days >= 1).then(serial)]
    candidates += [text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in extra_formats]
    return pl.coalesce(candidates)
