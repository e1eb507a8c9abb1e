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

# Day 0 of Excel's date systems: 1900 (Windows; its day 60 is the phantom 1900-02-29) and 1904 (old Mac).
EXCEL_EPOCHS = {1900: "1899-12-30", 1904: "1904-01-01"}
# A numeric date, an optional time (AM/PM) and an ISO 8601 zone (`Z`, `+02:00`): the zone is read and
# dropped, the wall-clock time as written kept, since an order's date is the date where it was taken.
DATE_PARTS = re.compile(
    r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?\s*([AaPp][Mm])?)?(?:\s*(?:Z|[+-]\d{2}(?::?\d{2})?))?$"
)
# Month names in English and the common European languages (German, French, Spanish, Italian, Dutch,
# Portuguese, Swedish, Danish, Norwegian), full and abbreviated, lower case without accents' variants where exports drop them.
MONTH_NAMES: dict[str, int] = {
    name: number
    for number, names in enumerate(
        [
            "january jan januar janvier janv enero ene gennaio gen januari janeiro",
            "february feb februar février fevrier févr fevr febrero febbraio februari fevereiro fev",
            "march mar märz marz mär mrz mars marzo maart mrt março marco marts",
            "april apr avril avr abril abr aprile",
            "may mai maj mayo maggio mag mei maio",
            "june jun juni juin junio giugno giu junho",
            "july jul juli juillet juil julio luglio lug julho",
            "august aug août aout agosto ago augustus augusti",
            "september sep sept septembre septiembre settembre set setembro",
            "october oct oktober okt octobre octubre ottobre ott outubro out",
            "november nov novembre noviembre novembro",
            "december dec dezember dez décembre decembre déc dic diciembre dicembre dezembro desember des",
        ],
        start=1,
    )
    for name in names.split()
}
_MONTH = "(" + "|".join(sorted(map(re.escape, MONTH_NAMES), key=len, reverse=True)) + r")\.?"
_TIME = r"(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
# `24-Feb-2003`, `24. Februar 2003`, `24 févr. 2003`, `24 de febrero de 2003` (day first) and
# `Feb 24, 2003` (month first).
# Spanish and Portuguese write `24 de febrero de 2003`.
DAY_NAME_YEAR = (
    r"(?i)^(\d{1,2})\.?[\s\-/]*(?:de\s+)?" + _MONTH + r"[\s\-/,]*(?:de\s+)?(\d{4}|\d{2})" + _TIME + "$"
)
NAME_DAY_YEAR = r"(?i)^" + _MONTH + r"[\s\-/]*(\d{1,2}),?[\s\-/]+(\d{4}|\d{2})" + _TIME + "$"
EXCEL_SERIAL = r"^\d{1,7}(?:\.\d+)?$"


class Decision(NamedTuple):
    """One part of the dialect decided for a file (the date order, the Excel date system) and why."""

    value: str
    evidence: str


def _date_parts(text: pl.Expr) -> list[pl.Expr]:
    """DATE_PARTS' groups of `text`: three numbers, hour, minute, seconds, AM/PM (null where absent)."""
    return [text.str.extract(DATE_PARTS.pattern, i) for i in range(1, 8)]


def decide_date_order(
    path: Path, pairs: pl.DataFrame, layout: ExportLayout, override: DateOrder | None
) -> Decision:
    """The date order for the file from its distinct (date text, month number text) pairs.

    Day-first evidence: a first number above 12, or a second number equal to the row's month while the
    first is not. Month-first evidence: the mirror image. Evidence both ways (a file that mixes orders, or
    dates that disagree with the month column) or none at all where the order matters stops the run.
    """
    column = layout.date_column or "date"
    if override:
        return Decision(override, "from settings")
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
        return Decision("year_first", "no day/month dates (ISO year-first or Excel day numbers only)")
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
            setting=f"{SETTING_PREFIX}DATE_ORDER=month_first or =day_first, the order the export was "
            "written in (the dates the other order reads are then rejected, each named)",
        )
    if day.height:
        example = day.row(0, named=True)
        return Decision(
            "day_first",
            f"{day.height} distinct date(s) only day-first reads right, e.g. {cut(example['text'])}",
        )
    if month_first.height:
        example = month_first.row(0, named=True)
        return Decision(
            "month_first",
            f"{month_first.height} distinct date(s) only month-first reads right, e.g. {cut(example['text'])}",
        )
    unsettled = parts.filter(differ)
    if unsettled.is_empty():
        return Decision("month_first", "day and month are equal in every date: the order makes no difference")
    example = unsettled.row(0, named=True)
    raise export_error(
        path,
        "cannot tell whether dates are day-first or month-first: no number above 12 and no month column "
        "that settles it",
        line=example["line"],
        column=column,
        seen=example["text"],
        setting=f"{SETTING_PREFIX}DATE_ORDER=day_first or =month_first, the order the export was written in",
    )


def decide_excel_system(pairs: pl.DataFrame, override: int | None) -> Decision:
    """Excel's date system (1900 or 1904) for the file's serial day numbers, from distinct (`text`,
    `month`, `year`) rows: 1904 when settings say so, or when the month and year columns agree with the
    1904 reading of some serials and with the 1900 reading of none (the two systems are 4 years and a
    day apart, so the year tells them apart); 1900 otherwise (Excel's default)."""
    if override:
        return Decision(str(override), "from settings")
    text = pl.col("text").str.strip_chars()
    month, year = (
        pl.col(c).str.strip_chars().cast(pl.Int64, strict=False)
        if c in pairs.columns
        else pl.lit(None, pl.Int64)
        for c in ("month", "year")
    )

    def fits(system: int) -> pl.Expr:
        day = excel_day(text, system)
        return ((day.dt.month() == month) & (day.dt.year() == year)).sum().alias(str(system))

    agree = pairs.select(fits(1900), fits(1904)).row(0, named=True)
    if not agree["1900"] and agree["1904"]:
        return Decision("1904", f"{agree['1904']} distinct day number(s) fit the month and year only as 1904")
    return Decision("1900", f"{agree['1900'] or 0} distinct day number(s) fit the month and year as 1900")


def excel_day(text: pl.Expr, system: int) -> pl.Expr:
    """Datetime of an Excel serial day number (fraction = time of day) in Excel's 1900 or 1904 date
    system; null for other text and for days before 1."""
    days = pl.when(text.str.contains(EXCEL_SERIAL)).then(text.cast(pl.Float64, strict=False))
    date = pl.lit(EXCEL_EPOCHS[system]).str.to_datetime("%Y-%m-%d", time_unit="us") + pl.duration(
        microseconds=(days * 86_400_000_000).round(0).cast(pl.Int64)
    )
    return pl.when(days >= 1).then(date)


def _named_month_date(text: pl.Expr, pattern: str, day_group: int, month_group: int, pivot: int) -> pl.Expr:
    """Datetime of a date whose month is a name (`MONTH_NAMES`), matched by `pattern`; null otherwise."""
    day, name, year = (text.str.extract(pattern, g) for g in (day_group, month_group, 3))
    month = name.str.to_lowercase().replace_strict(MONTH_NAMES, default=None, return_dtype=pl.Int64)
    year = year.cast(pl.Int64)
    year = pl.when(year >= 100).then(year).when(year < pivot).then(year + 2000).otherwise(year + 1900)
    hour, minute, second = (text.str.extract(pattern, g).fill_null("0").cast(pl.Int64) for g in (4, 5, 6))
    iso = pl.format(
        "{}-{}-{} {}:{}:{}",
        year.cast(pl.String).str.zfill(4),
        month.cast(pl.String).str.zfill(2),
        day.str.zfill(2),
        *(part.cast(pl.String).str.zfill(2) for part in (hour, minute, second)),
    )
    return iso.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")


def parse_dates(text: pl.Expr, dialect: Dialect, extra_formats: Sequence[str] = ()) -> pl.Expr:
    """Datetime (us) of date text in the file's date order: `D/M/Y`, `M/D/Y` or `Y-M-D` with `/ . -`,
    an optional `H:MM[:SS]` time (with AM/PM) and ISO 8601 `T` and zone (`Z`, `+02:00`; the wall-clock
    time kept), two-digit years by the pivot, Excel serial day numbers in the file's date system (1900 or
    1904; fraction = time of day), dates with a month name in English or a common European language
    (`24-Feb-2003`, `24. Februar 2003`, `Feb 24, 2003`), then `extra_formats` (strptime). Null otherwise,
    including dates that do not exist (31/2/2003). Meant for a frame of distinct date texts."""
    if dialect.date_order is None:
        raise ValueError("decide the date order (Export.resolve_date_order) before parsing dates")
    first, second, third, hour_text, minute, seconds, meridiem = _date_parts(text)
    year_first = first.str.len_chars() == 4
    if dialect.date_order == "day_first":
        day, month = first, second
    else:
        month, day = first, second
    day = pl.when(year_first).then(third).otherwise(day)
    month = pl.when(year_first).then(second).otherwise(month)
    # A four-digit first number is a year in any file; otherwise the year is last, in 2 or 4 digits.
    valid_shape = year_first
    if dialect.date_order != "year_first":
        valid_shape = year_first | third.str.len_chars().is_in([2, 4])
    year = pl.when(year_first).then(first.cast(pl.Int64)).otherwise(third.cast(pl.Int64))
    two_digit = ~year_first & (third.str.len_chars() == 2)
    pivot = dialect.two_digit_year_pivot
    year = (
        pl.when(two_digit)
        .then(pl.when(year < pivot).then(year + 2000).otherwise(year + 1900))
        .otherwise(year)
    )
    hour = hour_text.cast(pl.Int64).fill_null(0)
    meridiem = meridiem.str.to_lowercase()
    hour = (
        pl.when(meridiem == "pm").then(hour % 12 + 12).when(meridiem == "am").then(hour % 12).otherwise(hour)
    )
    iso = pl.format(
        "{}-{}-{} {}:{}:{}",
        year.cast(pl.String).str.zfill(4),
        month.str.zfill(2),
        day.str.zfill(2),
        hour.cast(pl.String).str.zfill(2),
        minute.fill_null("00"),
        seconds.fill_null("00"),
    )
    parsed = pl.when(valid_shape).then(iso.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"))
    candidates = [
        parsed,
        excel_day(text, dialect.excel_date_system),
        _named_month_date(text, DAY_NAME_YEAR, day_group=1, month_group=2, pivot=pivot),
        _named_month_date(text, NAME_DAY_YEAR, day_group=2, month_group=1, pivot=pivot),
    ]
    candidates += [text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in extra_formats]
    return pl.coalesce(candidates)
