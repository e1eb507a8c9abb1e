"""The header row: the delimiter under which it names the expected columns, and its fields mapped onto the
layout (canonical names, extra and unnamed columns)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sales_serving.contract.export.errors import SETTING_PREFIX, MissingColumnsError, export_error
from sales_serving.contract.export.settings import ExportLayout

DELIMITERS = (",", ";", "\t", "|")


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
    """Header names match ignoring case and surrounding spaces (NBSP and a stray BOM included)."""
    return name.replace("\ufeff", "").strip().upper()


def detect_delimiter(path: Path, header_line: str, layout: ExportLayout) -> str:
    """The delimiter under which the header names the most expected columns."""
    known = {canonical_key(c) for c in layout.columns}
    scores = {d: sum(canonical_key(n) in known for n in split_fields(header_line, d)) for d in DELIMITERS}
    best = max(scores.values())
    winners = [d for d, score in scores.items() if score == best]
    if best == 0 or len(winners) > 1:
        raise export_error(
            path,
            "cannot tell the delimiter: the header names no expected column under any of , ; tab |",
            line=1,
            seen=header_line,
            setting=f"{SETTING_PREFIX}DELIMITER",
        )
    return winners[0]


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


def read_header(path: Path, fields: list[str], layout: ExportLayout) -> Header:
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
            names.append(raw.replace("\ufeff", "").strip())
            extra.append(names[-1])
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise export_error(
                path, "the header names this column twice", line=1, column=name, seen=",".join(fields)
            )
        seen.add(name)
    missing = [c for c in layout.required if c not in seen]
    if missing:
        raise export_error(
            path,
            f"missing required column(s) {', '.join(missing)}; the header has {', '.join(fields)}",
            kind=MissingColumnsError,
        )
    absent = tuple(c for c in layout.columns if c not in seen)
    return Header(tuple(names), tuple(unnamed), tuple(extra), absent)
