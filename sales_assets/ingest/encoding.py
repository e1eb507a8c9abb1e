"""Which text encoding a CSV export is in, and a UTF-8 copy of it for readers that only speak UTF-8.

Strict UTF-8 is tried first (a BOM is noted and stripped). Otherwise each single-byte code page in the
settings is scored by how many of the file's non-ASCII characters it reads as letters inside words
(`Berguvsvägen` under cp850 versus `Berguvsv„gen` under cp1252), and the best one wins.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 8 << 20
UTF8_BOM = codecs.BOM_UTF8
# Bytes around a non-ASCII run that decide whether it sits inside a word.
CONTEXT_BYTES = 3
MAX_SAMPLES = 2000
NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
ASCII_BYTES = bytes(range(128))


class NotCsvTextError(ValueError):
    """The file is empty or holds bytes that no text encoding explains (a binary file)."""


@dataclass(frozen=True)
class EncodingReport:
    encoding: str  # a Python codec name: "utf-8", "cp850", ...
    has_bom: bool
    non_ascii_bytes: int
    letter_share: float  # share of sampled non-ASCII characters that read as letters inside words


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


Sample = tuple[bytes, bytes, bytes]  # ASCII context before, the non-ASCII run, context after


def _scan(path: Path) -> tuple[bool, int, list[Sample], bool]:
    """One pass: strict-UTF-8 validity, the non-ASCII byte count, samples in context, any NUL byte."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    utf8_ok, non_ascii, samples, has_nul = True, 0, [], False
    for chunk in _chunks(path):
        has_nul = has_nul or b"\x00" in chunk
        if utf8_ok:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8_ok = False
        # Counting is one C call per chunk; only the first MAX_SAMPLES runs are looked at in Python.
        non_ascii_here = len(chunk.translate(None, ASCII_BYTES))
        non_ascii += non_ascii_here
        if not non_ascii_here or len(samples) >= MAX_SAMPLES:
            continue
        for match in NON_ASCII_RUN.finditer(chunk):
            if len(samples) >= MAX_SAMPLES:
                break
            before = chunk[max(0, match.start() - CONTEXT_BYTES) : match.start()]
            after = chunk[match.end() : match.end() + CONTEXT_BYTES]
            samples.append((before, match.group(), after))
    if utf8_ok:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    return utf8_ok, non_ascii, samples, has_nul


def letter_share(samples: list[Sample], encoding: str) -> float:
    """How well `encoding` explains the non-ASCII runs in `samples`, from 0 to 1.

    A character scores 1 when it decodes to a letter next to a letter of the same case (`ä` in
    `vägen`), 0.5 when it is a letter next to letters of the other case only (`Ú` in `cafÚ`), else 0.
    """
    score = total = 0.0
    for before, run, after in samples:
        prefix, text = before.decode("ascii", "replace"), run.decode(encoding, errors="replace")
        line = prefix + text + after.decode("ascii", "replace")
        for i in range(len(prefix), len(prefix) + len(text)):
            char = line[i]
            total += 1
            neighbours = [c for c in line[i - 1 : i] + line[i + 1 : i + 2] if c.isalpha()]
            if char.isalpha() and neighbours:
                same_case = any(c.islower() == char.islower() for c in neighbours)
                score += 1.0 if same_case else 0.5
    return score / total if total else 1.0


def detect_encoding(
    path: Path | str, candidates: list[str] | tuple[str, ...] = ("cp850", "cp1252", "latin-1")
) -> EncodingReport:
    path = Path(path)
    if path.stat().st_size == 0:
        raise NotCsvTextError(f"{path}: the file is empty; expected a CSV with a header row and data rows")
    with open(path, "rb") as handle:
        has_bom = handle.read(len(UTF8_BOM)) == UTF8_BOM
    utf8_ok, non_ascii, samples, has_nul = _scan(path)
    if has_nul:
        raise NotCsvTextError(f"{path}: holds NUL bytes, so it is a binary file, not CSV text")
    if utf8_ok:
        return EncodingReport("utf-8", has_bom, non_ascii, letter_share(samples, "utf-8"))
    scored = [(letter_share(samples, name), -rank, name) for rank, name in enumerate(candidates)]
    share, _, best = max(scored)
    return EncodingReport(codecs.lookup(best).name, has_bom, non_ascii, share)


def count_records(path: Path | str) -> int:
    """Data records in a CSV file (header excluded), in bounded memory and in any ASCII-compatible
    encoding: a line break inside a quoted field does not end a record."""
    records, quotes = 0, 0
    with open(path, "rb") as handle:
        for line in handle:
            quotes += line.count(b'"')
            if quotes % 2 == 0 and line.strip():
                records += 1
    return max(records - 1, 0)


def transcode_to_utf8(source: Path, target: Path, encoding: str) -> Path:
    """Write `source` as UTF-8 without a BOM to `target`, chunk by chunk (bounded memory)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with open(target, "wb") as out:
        first = True
        for chunk in _chunks(source):
            text = decoder.decode(chunk)
            if first:
                text = text.removeprefix("\ufeff")
                first = False
            out.write(text.encode("utf-8"))
        out.write(decoder.decode(b"", final=True).encode("utf-8"))
    return target
