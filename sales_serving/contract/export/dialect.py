"""The resolved dialect of one file: every part decided (from settings or the file) and its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

# Unicode category Cf: zero-width spaces and joiners, a BOM inside a cell, direction marks. Invisible in
# a spreadsheet, they split `USA` from `USA\u200b` and break numbers.
FORMAT_CHARACTERS = r"\p{Cf}"


@dataclass
class Dialect:
    """The resolved dialect of one file and the evidence behind each part."""

    encoding: str
    has_bom: bool
    delimiter: str
    decimal_mark: str = "."
    thousands_separator: str = ""
    currency_signs: tuple[str, ...] = ()
    date_order: str | None = None
    two_digit_year_pivot: int = 69
    excel_date_system: int = 1900
    non_ascii_bytes: int = 0
    # Whether the text holds format characters (Cf) or combining marks (`unicode_tidy_needed`): only then
    # are cells composed to NFC and stripped of Cf, which costs a pass over every text cell.
    unicode_tidy: bool = True
    # Integer columns written as integral floats (`30.0`, `3E+01`) in the sample: then read as such.
    integral_floats: bool = False
    quote_escape: str = "doubled"  # `""` inside a quoted field (RFC 4180), or `backslash` (`\"`)
    line_ends: str = "not counted"  # LF, CRLF, CR or mixed (with counts)
    lines_above_header: int = 0  # report titles (and a `sep=` line) skipped above the header
    evidence: dict[str, str] = field(default_factory=dict)

    def metadata(self) -> dict[str, str | bool | int]:
        """Flat facts for asset metadata and logs."""
        return {
            "encoding": self.encoding,
            "has_bom": self.has_bom,
            "non_ascii_bytes": self.non_ascii_bytes,
            "delimiter": {"\t": "tab"}.get(self.delimiter, self.delimiter),
            "decimal_mark": self.decimal_mark,
            "thousands_separator": self.thousands_separator or "none",
            "currency_signs": " ".join(self.currency_signs) or "none",
            "date_order": self.date_order or "not decided",
            "two_digit_year_pivot": self.two_digit_year_pivot,
            "excel_date_system": self.excel_date_system,
            "line_ends": self.line_ends,
            "quote_escape": self.quote_escape,
            "integral_floats": self.integral_floats,
            "lines_above_header": self.lines_above_header,
        }


def tidy_text(cell: pl.Expr, dialect: Dialect) -> pl.Expr:
    """`cell` trimmed of Unicode white space (no-break spaces U+00A0 and U+202F included, which
    spreadsheets put around numbers and names) and, when the file holds any (`Dialect.unicode_tidy`),
    with format characters (category Cf) removed and composed to Unicode NFC, so `Mu\u0308ller` is
    `Müller`."""
    if dialect.unicode_tidy:
        cell = cell.str.replace_all(FORMAT_CHARACTERS, "").str.normalize("NFC")
    return cell.str.strip_chars()


def unicode_tidy_needed(lines: pl.LazyFrame, text: str) -> bool:
    """Whether any line of `lines` (column `text`) holds a format character (Cf) or a combining mark (M):
    text without them is NFC already and has nothing to strip. One streaming pass."""
    found = lines.select(pl.col(text).str.contains(r"[\p{Cf}\p{M}]").any()).collect(engine="streaming")
    return bool(found.item())
