"""What a caller tells the reader: the dialect parts it fixes, the reading rules, and the layout it expects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

DateOrder = Literal["month_first", "day_first", "year_first"]


class ExportDialect(BaseModel):
    """How an export is written. Every field left None is detected from the file; set one to settle it."""

    # A Python codec name: "utf-8", "utf-8-sig", "utf-16", "cp850", "cp1252", ...
    encoding: str | None = None
    # A file whose lines are partly UTF-8 (two exports pasted together): True reads each UTF-8 line as
    # UTF-8 and the others in the code page decided on them (or `encoding`).
    utf8_lines: bool | None = None
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    # The header's line (1-based, a `sep=` line counted): for more title lines above it than the reader
    # looks past by itself (10).
    header_line: int | None = Field(default=None, ge=1)
    decimal_mark: Literal[".", ","] | None = None
    # "" means numbers carry no thousands separator.
    thousands_separator: Literal[",", ".", "'", "’", " ", "\u00a0", "\u202f", ""] | None = None
    # Signs stripped from money columns ([] means none is allowed).
    currency_signs: list[str] | None = None
    date_order: DateOrder | None = None
    # Two-digit years: 00..pivot-1 are 20xx, pivot..99 are 19xx (POSIX strptime's rule with pivot 69).
    two_digit_year_pivot: int = 69
    # How a quote inside a quoted field is written: `doubled` (`""`, RFC 4180) or `backslash` (`\"`, MySQL).
    quote_escape: Literal["doubled", "backslash"] | None = None
    # Excel's date system of serial day numbers: 1900 (Windows) or 1904 (old Mac); None decides per file.
    excel_date_system: Literal[1900, 1904] | None = None


class ExportReading(BaseModel):
    """Rules of reading every export, beside the dialect."""

    dialect: ExportDialect = ExportDialect()
    # Encodings tried (in this order, which breaks exact ties) when the file is neither UTF-8 nor marked
    # by a BOM: the DOS, Windows, ISO-8859, Mac and East Asian encodings exports come in.
    candidate_encodings: list[str] = [
        "cp850",
        "cp437",
        "cp1252",
        "cp1250",
        "cp1251",
        "cp1253",
        "cp1254",
        "cp1257",
        "iso8859-1",
        "iso8859-2",
        "iso8859-5",
        "iso8859-7",
        "iso8859-15",
        "mac_roman",
        "cp852",
        "cp866",
        "koi8_r",
        "cp932",
        "euc_jp",
        "gb18030",
        "big5",
        "euc_kr",
    ]
    # Spreadsheet spellings of a missing value: a cell holding one of these (after trimming) is missing.
    null_tokens: list[str] = ["NULL", "null", "None", "#N/A", "N/A", "n/a", "-", "\\N"]  # `\N`: MySQL
    # Per column, tokens that are real values there even if `null_tokens` lists them.
    kept_tokens: dict[str, list[str]] = {"TERRITORY": ["NA"]}
    # Signs a money column may carry; the ones a file uses are recorded in its dialect.
    known_currency_signs: list[str] = ["$", "€", "£", "¥", "USD", "EUR", "GBP"]
    # Records read to detect the number format (decimal mark, thousands separator, currency).
    sample_rows: int = 20_000


@dataclass(frozen=True)
class ExportLayout:
    """The columns a caller expects, in their canonical spelling, and what each holds."""

    columns: tuple[str, ...]
    required: tuple[str, ...] = ()
    integer_columns: tuple[str, ...] = ()
    number_columns: tuple[str, ...] = ()  # money and other decimal numbers
    date_column: str | None = None
    month_column: str | None = None  # the month number a date must agree with (date-order evidence)
    year_column: str | None = None  # the year a date must agree with (Excel date-system evidence)

    @property
    def numeric(self) -> frozenset[str]:
        return frozenset((*self.integer_columns, *self.number_columns))
