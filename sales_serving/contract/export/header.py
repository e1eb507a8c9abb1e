"""The header row: the delimiter under which it names the expected columns, and its fields mapped onto the
layout (canonical names, extra and unnamed columns)."""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sales_serving.contract.export.encoding import NUL_MARK
from sales_serving.contract.export.errors import SETTING_PREFIX, MissingColumnsError, export_error
from sales_serving.contract.export.settings import ExportLayout

DELIMITERS = (",", ";", "\t", "|")
# Report titles and notes a spreadsheet puts above the header: the header is looked for this far down.
MAX_LINES_ABOVE_HEADER = 10
SEP_LINE = re.compile(r'"?sep=(.)"?[,;\t|]*', re.IGNORECASE)  # Excel's first line naming the delimiter


def head_lines(text_path: Path, limit_bytes: int = 1 << 16) -> list[str]:
    """The first lines of a UTF-8 file (up to `limit_bytes`), without a last line that may be cut."""
    with open(text_path, encoding="utf-8", newline="") as handle:
        head = handle.read(limit_bytes)
    lines = head.splitlines()
    if len(head) == limit_bytes and len(lines) > 1:
        lines = lines[:-1]
    return lines


def split_fields(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def canonical_key(name: str) -> str:
    """Header names match ignoring case, surrounding spaces (NBSP too), format characters (a stray BOM,
    a zero-width space) and Unicode composition."""
    return clean_name(name).upper()


def clean_name(name: str) -> str:
    """A header name in NFC without format characters (category Cf), trimmed."""
    visible = "".join(c for c in name if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFC", visible).strip()


def _named(line: str, delimiter: str, known: set[str]) -> int:
    return sum(canonical_key(n) in known for n in split_fields(line, delimiter))


def detect_delimiter(path: Path, header_line: str, layout: ExportLayout, line: int = 1) -> str:
    """The delimiter under which the header (at `line`) names the most expected columns."""
    known = {canonical_key(c) for c in layout.columns}
    scores = {d: _named(header_line, d, known) for d in DELIMITERS}
    best = max(scores.values())
    winners = [d for d, score in scores.items() if score == best]
    if best == 0:
        # No delimiter setting settles this: the line is no header of the expected columns.
        raise export_error(
            path,
            f"the header names none of the expected columns ({', '.join(layout.required or layout.columns)}) "
            f"under any of , ; tab | (nor does any of the {MAX_LINES_ABOVE_HEADER} lines below it): name "
            "the columns as the layout does",
            line=line,
            seen=header_line,
            kind=MissingColumnsError,
        )
    if len(winners) > 1:
        raise export_error(
            path,
            f"cannot tell the delimiter: the header names {best} expected column(s) under each of "
            + " and ".join(repr(d) for d in winners),
            line=line,
            seen=header_line,
            setting=f"{SETTING_PREFIX}DELIMITER="
            + " or =".join("a tab character" if d == "\t" else d for d in winners)
            + ", the one the rows are written with (a header mixing delimiters is written again with that one)",
        )
    return winners[0]


class HeaderPlace(NamedTuple):
    """Where the header is: its index in the head lines, the lines above it, and a delimiter the file
    names itself (Excel's `sep=;` first line), if any."""

    index: int
    title_lines: int  # lines above the header besides a `sep=` line
    delimiter: str | None


def find_header(
    path: Path, lines: list[str], layout: ExportLayout, delimiter: str | None, header_line: int | None = None
) -> HeaderPlace:
    """The header among the first MAX_LINES_ABOVE_HEADER + 1 lines (after a `sep=X` line): the first line
    that names the most expected columns, so report titles above it are skipped; the line `header_line`
    (1-based, from settings) when given. `delimiter` (from settings) beats the file's `sep=` line. A header
    found only further down stops naming its line and the HEADER_LINE setting that reads it."""
    start, named = 0, None
    if lines and (found := SEP_LINE.fullmatch(lines[0].strip())):
        start, named = 1, found.group(1)
        if named not in DELIMITERS and delimiter is None:
            raise export_error(
                path,
                f"the first line names the delimiter {named!r}, which the reader does not know (, ; tab |)",
                line=1,
                seen=lines[0],
                setting=f"{SETTING_PREFIX}DELIMITER to the one the lines are written with",
            )
    if header_line is not None:
        if not start < header_line <= len(lines):
            raise export_error(
                path,
                f"the header line from settings ({header_line}) is not among lines {start + 1} to "
                f"{len(lines)} of the file's head",
                setting=f"{SETTING_PREFIX}HEADER_LINE to the line the header is on",
            )
        return HeaderPlace(header_line - 1, header_line - 1 - start, named)
    given = delimiter or named
    known = {canonical_key(c) for c in layout.columns}
    window = lines[start : start + MAX_LINES_ABOVE_HEADER + 1]
    scores = [max(_named(text, d, known) for d in ([given] if given else DELIMITERS)) for text in window]
    best = max(scores, default=0)
    if not best:
        below = start + len(window)
        later = [
            (max(_named(text, d, known) for d in ([given] if given else DELIMITERS)), at)
            for at, text in enumerate(lines[below:], below)
        ]
        count, at = max(later, key=lambda c: (c[0], -c[1]), default=(0, 0))
        if count:
            raise export_error(
                path,
                f"the header is not among the first {below} lines: line {at + 1} is the first that names "
                f"{count} expected column(s)",
                line=at + 1,
                seen=lines[at],
                setting=f"{SETTING_PREFIX}HEADER_LINE={at + 1}",
            )
    index = start + (scores.index(best) if best else 0)
    return HeaderPlace(index, index - start, named)


def ends_in_empty_field(records: list[str], delimiter: str, width: int) -> bool:
    """Whether every record of the sample has one field more than the header and that last field empty:
    rows written with a trailing delimiter, which is an unnamed empty column, not a malformed line."""
    fields = [split_fields(text, delimiter) for text in records if text.strip()]
    return bool(fields) and all(len(f) == width + 1 and not f[-1].strip() for f in fields)


@dataclass(frozen=True)
class Header:
    """The file's header mapped onto the layout: one internal name per field, in file order."""

    names: tuple[str, ...]  # canonical name, an extra column's own (trimmed) name, or UNNAMED_<n>
    unnamed: tuple[str, ...]  # fields without a name; dropped (they must be empty)
    extra: tuple[str, ...]
    absent: tuple[str, ...]  # layout columns the file lacks

    @property
    def width(self) -> int:
        return len(self.names)


def read_header(path: Path, fields: list[str], layout: ExportLayout, line: int = 1) -> Header:
    """Map header fields onto the layout; raise MissingColumnsError naming every missing required column."""
    canonical = {canonical_key(c): c for c in layout.columns}
    names: list[str] = []
    unnamed: list[str] = []
    extra: list[str] = []
    for position, raw in enumerate(fields, start=1):
        key = canonical_key(raw)
        if not key:
            names.append(f"UNNAMED_{position}")
            unnamed.append(names[-1])
        elif key in canonical:
            names.append(canonical[key])
        else:
            names.append(clean_name(raw))
            extra.append(names[-1])
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise export_error(
                path,
                "the header names this column twice: rename or remove one of the two",
                line=line,
                column=name,
                seen=",".join(fields),
            )
        seen.add(name)
    missing = [c for c in layout.required if c not in seen]
    if missing:
        raise export_error(
            path,
            f"missing required column(s) {', '.join(missing)}; the header has {', '.join(fields)}"
            + (
                f"; a NUL byte (\\x00, shown {NUL_MARK}) sits in the header: remove it"
                if any(NUL_MARK in f for f in fields)
                else ": add them, or name them as the layout does"
            ),
            kind=MissingColumnsError,
        )
    absent = tuple(c for c in layout.columns if c not in seen)
    return Header(tuple(names), tuple(unnamed), tuple(extra), absent)
