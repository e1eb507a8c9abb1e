"""Lines and records: every line of the file with its number, and the structure check that sets aside
malformed lines (wrong field count, a quote that never closes) and blank ones, so the rest loads."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import polars as pl

from sales_serving.contract.export.encoding import NUL_MARK
from sales_serving.contract.export.errors import SETTING_PREFIX, export_error

LINE = "__line"  # 1-based line number in the file of the line a record starts on (the header is line 1)
TEXT = "__text"
# Malformed lines held in memory at most; past this the file is read wrong, not a few lines bad.
MAX_MALFORMED_LINES = 100_000


class MalformedLine(NamedTuple):
    line: int
    text: str
    reason: str


class SuspectLine(NamedTuple):
    """A line the streaming pass flagged: its text, its quote count and its field count outside quotes."""

    text: str | None  # None for a blank line (which has no counts either)
    quotes: int | None
    fields: int | None


@dataclass
class Structure:
    """What the line-by-line pass found: records, malformed lines (line, text, reason), blank lines."""

    records: int
    malformed: pl.DataFrame
    blank_lines: int
    continuation_lines: int


@dataclass(frozen=True)
class LineCheck:
    """The structure and the lines a repaired copy leaves out (skipped) or joins to the one before."""

    structure: Structure
    skipped: frozenset[int]
    continuation: frozenset[int]


def read_lines(text_path: Path) -> pl.LazyFrame:
    """Every line of a UTF-8 file as one text cell (null when blank), with its 1-based number."""
    # NUL never occurs in the text (detect_encoding refuses such files), so no line is split.
    return (
        pl.scan_csv(
            text_path,
            has_header=False,
            separator="\x00",
            quote_char=None,
            new_columns=[TEXT],
            infer_schema=False,
            glob=False,  # a file name such as `sales [rev 2].csv` is a name, not a pattern
        )
        .with_row_index(LINE, offset=1)
        .with_columns(pl.col(TEXT).str.strip_suffix("\r"))
    )


def parse_record(text: str, delimiter: str) -> list[str] | None:
    """The fields of one record's text, or None when it is not exactly one well-quoted record."""
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _suspect_lines(
    path: Path, text_path: Path, delimiter: str, width: int, header_line: int
) -> dict[int, SuspectLine]:
    """Lines below the header whose field count (outside quotes) is not the header's, or with an odd
    quote count, or a NUL byte (NUL_MARK in the copy), or blank.

    One streaming pass counts delimiters per line; only lines with quotes or a wrong count are looked at
    closer, and only the bad ones reach Python.
    """
    text = pl.col(TEXT)
    quotes = text.str.count_matches('"', literal=True)
    delimiters = text.str.count_matches(delimiter, literal=True)
    outside = text.str.replace_all(r'"[^"]*"', "").str.count_matches(delimiter, literal=True)
    suspicious = (
        read_lines(text_path)
        .filter(pl.col(LINE) > header_line)
        .with_columns(quotes.alias("quotes"), delimiters.alias("delimiters"))
        .filter(
            (pl.col("quotes") > 0)
            | (pl.col("delimiters") != width - 1)
            | text.is_null()
            | text.str.contains(NUL_MARK, literal=True)
        )
        .with_columns(
            pl.when(pl.col("quotes") > 0).then(outside).otherwise(pl.col("delimiters")).alias("outside")
        )
        .filter(
            (pl.col("quotes") % 2 == 1)
            | (pl.col("outside") != width - 1)
            | text.is_null()
            | text.str.contains(NUL_MARK, literal=True)
        )
        .select(LINE, TEXT, "quotes", "outside")
        .head(MAX_MALFORMED_LINES + 1)
        .collect(engine="streaming")
    )
    if suspicious.height > MAX_MALFORMED_LINES:
        first = suspicious.row(0, named=True)
        advice = _malformed_advice(suspicious[TEXT].head(MALFORMED_SAMPLE).to_list(), delimiter, width)
        named = advice.startswith(SETTING_PREFIX)
        raise export_error(
            path,
            f"more than {MAX_MALFORMED_LINES:,} lines do not have the header's {width} fields under "
            f"delimiter {delimiter!r}: the file is read with the wrong delimiter or quoting"
            + ("" if named else f"; {advice}"),
            line=first[LINE],
            seen=first[TEXT],
            setting=advice if named else None,
        )
    return {
        line: SuspectLine(value, q, None if o is None else o + 1)
        for line, value, q, o in suspicious.iter_rows()
    }


MALFORMED_SAMPLE = 20  # malformed lines looked at to name the setting that reads them
DIALECT_DELIMITERS = (",", ";", "\t", "|")


def _malformed_advice(texts: list[str | None], delimiter: str, width: int) -> str:
    """The setting that reads a file whose lines break under `delimiter` and RFC 4180 quoting:
    QUOTE_ESCAPE=backslash when they hold backslash-escaped quotes (`\\"`, met past the part of the file
    the escape is detected on); the header's delimiter to write the lines in when another splits each into
    the header's `width` fields; else both settings named."""
    from sales_serving.contract.export.encoding import BACKSLASH_QUOTE, _unescaped

    sample = [t for t in texts if t]
    escaped = sample and BACKSLASH_QUOTE.search(sample[0])
    if escaped and all(len(parse_record(_unescaped(t), delimiter) or ()) == width for t in sample):
        return f'{SETTING_PREFIX}QUOTE_ESCAPE=backslash (the lines escape quotes as \\")'
    fits = [
        d
        for d in DIALECT_DELIMITERS
        if d != delimiter and all(len(parse_record(t, d) or ()) == width for t in sample)
    ]
    if sample and fits:
        # The header names the columns under `delimiter` (that is how it was chosen), the rows split
        # under another: no setting reads both, the file needs one delimiter.
        shown = "tab" if fits[0] == "\t" else repr(fits[0])
        return (
            f"no setting reads it: the header is written with {delimiter!r} and the lines split into its "
            f"fields under {shown}, so write the header with {shown} too"
        )
    return f"{SETTING_PREFIX}DELIMITER or {SETTING_PREFIX}QUOTE_ESCAPE to how the lines are written"


def _nul_reason(text: str, delimiter: str, names: tuple[str, ...]) -> str:
    fields = parse_record(text, delimiter) or text.split(delimiter)
    at = next((i for i, value in enumerate(fields) if NUL_MARK in value), 0)
    column = names[at] if at < len(names) else f"field {at + 1}"
    return f"holds a NUL byte (\\x00) in field {at + 1} ({column}): a damaged line, not text"


def check_lines(
    path: Path, text_path: Path, delimiter: str, names: tuple[str, ...], line_count: int, header_line: int = 1
) -> LineCheck:
    """Check every line below the header (at `header_line`): a NUL byte, field count against the header's
    `names` (outside quotes), quotes that never close (a quoted field spanning lines is joined when it
    then parses), blank lines. Lines above the header (report titles) are skipped too."""
    width = len(names)
    bad = _suspect_lines(path, text_path, delimiter, width, header_line)
    malformed: list[MalformedLine] = []
    blank: list[int] = []
    continuation: set[int] = set()
    for line in sorted(bad):
        if line in continuation:
            continue
        suspect = bad[line]
        value = suspect.text
        if value is None or not value.strip():
            blank.append(line)
            continue
        if NUL_MARK in value:
            malformed.append(MalformedLine(line, value, _nul_reason(value, delimiter, names)))
            continue
        if suspect.quotes % 2 == 1:
            joined, end = value, line
            while joined.count('"') % 2 == 1 and (end + 1) in bad and bad[end + 1].text is not None:
                end += 1
                joined += "\n" + bad[end].text
            record = parse_record(joined, delimiter) if joined.count('"') % 2 == 0 and end > line else None
            if record is not None and len(record) == width:
                continuation.update(range(line + 1, end + 1))
                continue
            malformed.append(
                MalformedLine(line, value, "broken quote: a quoted field never closes on this line")
            )
            continue
        record = parse_record(value, delimiter)
        fields = len(record) if record is not None else suspect.fields
        if fields == width:
            continue
        malformed.append(
            MalformedLine(
                line, value, f"has {fields} field(s) where the header has {width} (delimiter {delimiter!r})"
            )
        )
    frame = pl.DataFrame(
        malformed, schema={LINE: pl.UInt32, "text": pl.String, "reason": pl.String}, orient="row"
    )
    records = line_count - header_line - len(blank) - len(continuation)
    structure = Structure(records, frame, len(blank), len(continuation))
    skipped = frozenset({m.line for m in malformed} | set(blank) | set(range(1, header_line)))
    return LineCheck(structure, skipped, frozenset(continuation))


def write_repaired(text_path: Path, target: Path, delimiter: str, check: LineCheck) -> Path:
    """A copy without the skipped lines whose records start with their line number (first field)."""
    line, text = pl.col(LINE), pl.col(TEXT)
    kept = (
        read_lines(text_path)
        .filter(~line.is_in(pl.Series(sorted(check.skipped), dtype=pl.UInt32).implode()))
        .select(
            pl.when(line.is_in(pl.Series(sorted(check.continuation), dtype=pl.UInt32).implode()))
            .then(text)
            .otherwise(pl.format(f"{{}}{delimiter}{{}}", line, text))
        )
    )
    kept.sink_csv(target, include_header=False, quote_style="never")
    return target
