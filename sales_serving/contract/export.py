"""The one reader of sales CSV exports: the file's dialect, detected once, and strict value parsing.

`open_export` finds the dialect of a file (text encoding, delimiter, header, decimal mark, thousands
separator, currency signs; date order on request), makes a UTF-8 copy when the file is not plain UTF-8 (Polars
reads only UTF-8), and hands back an `Export` whose `scan()` is a lazy frame of every record as trimmed text
under the canonical column names, with the record's line number in the file. Malformed lines (too many or
too few fields, a broken quote) are set aside with their line number and text by `structure()`; the rest
of the file still loads. The `*_value` expressions and `parse_dates` turn that text into numbers and dates
the strict way: a value that is not plainly a finite number or a date of the file's date order is null,
never a guess.

Every field of the dialect can be fixed in `ExportDialect` (settings); whatever the file cannot settle stops
with an `ExportError` naming the file, line, column, what was seen and the setting that settles it.

Used by the ingest group (`raw_csv`, `clean_parquet`, the EDA raw counts) and by `sales-predict`; imports
neither dagster nor `sales_assets`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel

LINE = "__line"  # 1-based line number in the file of the line a record starts on (the header is line 1)
TEXT = "__text"
SETTING_PREFIX = "SALES_INGEST__DIALECT__"
MAX_SEEN = 40  # characters of an offending value quoted in a message
# Malformed lines held in memory at most; past this the file is read wrong, not a few lines bad.
MAX_MALFORMED_LINES = 100_000
DELIMITERS = (",", ";", "\t", "|")
CHUNK_BYTES = 8 << 20
CONTEXT_BYTES = 3  # bytes around a non-ASCII run that tell whether it sits inside a word
MAX_SAMPLES = 2000
NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
EXCEL_EPOCH = "1899-12-30"  # day 0 of Excel's 1900 date system (its day 60 is the phantom 1900-02-29)
DATE_PARTS = re.compile(
    r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{1,4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([AaPp][Mm])?)?$"
)
EXCEL_SERIAL = r"^\d{1,7}(?:\.\d+)?$"
DateOrder = Literal["month_first", "day_first", "year_first"]
# Typographic punctuation of Windows-1252 (0x80-0x9F) and where each sits in real text.
OPENING_QUOTES = "‘“„‚«‹"
CLOSING_QUOTES = "’”»›"
DASHES = "–—"
CURRENCY_CHARS = "€£¥$"


class ExportError(ValueError):
    """A file the reader cannot read right; the message names the file, line, column, what was seen and
    the setting that settles it, on one line."""


class NotCsvTextError(ExportError):
    """The file is empty or holds bytes no text encoding explains (a binary file)."""


class MissingColumnsError(ExportError):
    """The header lacks columns the caller requires."""


def cut(text: object) -> str:
    """`text` as a quoted snippet of at most MAX_SEEN characters."""
    value = str(text)
    return repr(value if len(value) <= MAX_SEEN else value[: MAX_SEEN - 3] + "...")


def export_error(
    path: Path,
    what: str,
    *,
    line: int | None = None,
    column: str | None = None,
    seen: object = None,
    setting: str | None = None,
    kind: type[ExportError] = ExportError,
) -> ExportError:
    """One-line error: `file: line N, column C: what (seen 'x'); set SETTING`."""
    where = ", ".join(p for p in (f"line {line}" if line else "", f"column {column}" if column else "") if p)
    text = f"{path}: {where + ': ' if where else ''}{what}"
    if seen is not None:
        text += f" (seen {cut(seen)})"
    if setting:
        text += f"; set {setting}"
    return kind(text)


class ExportDialect(BaseModel):
    """How an export is written. Every field left None is detected from the file; set one to settle it."""

    # A Python codec name: "utf-8", "utf-8-sig", "utf-16", "cp850", "cp1252", ...
    encoding: str | None = None
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    decimal_mark: Literal[".", ","] | None = None
    # "" means numbers carry no thousands separator.
    thousands_separator: Literal[",", ".", "'", " ", "\u00a0", "\u202f", ""] | None = None
    # Signs stripped from money columns ([] means none is allowed).
    currency_signs: list[str] | None = None
    date_order: DateOrder | None = None
    # Two-digit years: 00..pivot-1 are 20xx, pivot..99 are 19xx (POSIX strptime's rule with pivot 69).
    two_digit_year_pivot: int = 69


class ExportReading(BaseModel):
    """Rules of reading every export, beside the dialect."""

    dialect: ExportDialect = ExportDialect()
    # Single-byte code pages tried (in this order, which breaks exact ties) when the file is not UTF-8.
    candidate_encodings: list[str] = ["cp850", "cp437", "cp1252", "latin-1"]
    # Spreadsheet spellings of a missing value: a cell holding one of these (after trimming) is missing.
    null_tokens: list[str] = ["NULL", "null", "None", "#N/A", "N/A", "n/a", "-"]
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

    @property
    def numeric(self) -> frozenset[str]:
        return frozenset((*self.integer_columns, *self.number_columns))


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
    non_ascii_bytes: int = 0
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
        }


# ---- encoding -------------------------------------------------------------------------------------------
# Our own detector on purpose: charset-normalizer (and chardet) read the real Kaggle file, whose only
# non-ASCII bytes are DOS code page 850 letters, as another code page and turn `Berguvsvägen` into
# `Berguvsv„gen`. Scoring each candidate by whether its characters sit where such characters sit in words
# gets both DOS letters and Windows-1252 punctuation right.


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


Sample = tuple[bytes, bytes, bytes]  # ASCII context before, the non-ASCII run, context after


@dataclass
class ByteScan:
    utf8_ok: bool = True
    first_bad_utf8_line: int = 0  # line of the first byte strict UTF-8 refuses (0 when none)
    non_ascii: int = 0
    samples: list[Sample] = field(default_factory=list)
    has_nul: bool = False
    lines: int = 0  # lines as `_lines` counts them (newlines, plus a last line without one)


def _scan_bytes(path: Path) -> ByteScan:
    """One pass: strict-UTF-8 validity, the non-ASCII byte count, samples in context, any NUL byte and the
    line count (so the records are counted from the same read as the encoding is detected).

    Vectorised per 8 MiB chunk with numpy. Only the non-ASCII bytes are decoded, each run of them
    followed by the ASCII byte after it: an ASCII byte is valid UTF-8 wherever no sequence is open, and
    ends an open one as an error, so this decodes (and fails) exactly as the whole text would, at a
    fraction of the cost on mostly-ASCII exports.
    """
    import numpy as np  # only here: loading the reader (or the analytics group) imports no numeric stack

    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    scan = ByteScan()
    samples = scan.samples
    lines_before = 0
    last = b"\n"
    after_run = False  # the previous chunk ended inside a run of non-ASCII bytes
    for chunk in _chunks(path):
        scan.has_nul = scan.has_nul or b"\x00" in chunk
        last = chunk[-1:]
        codes = np.frombuffer(chunk, dtype=np.uint8)
        high = np.flatnonzero(codes >= 0x80)  # where the non-ASCII bytes are
        non_ascii_here = len(high)
        if scan.utf8_ok and (non_ascii_here or after_run):
            # The non-ASCII runs, each with the byte after it (ASCII; or the next chunk's first byte).
            ends = high[np.flatnonzero(np.diff(high) != 1)] + 1
            parts = [high, ends, high[-1:] + 1]
            if after_run and not (non_ascii_here and high[0] == 0):
                parts.append(np.zeros(1, dtype=high.dtype))
            positions = np.sort(np.concatenate(parts))
            positions = positions[positions < len(chunk)]
            held = len(decoder.getstate()[0])  # bytes of a sequence cut at the previous chunk's end
            try:
                decoder.decode(codes[positions].tobytes())
            except UnicodeDecodeError as error:
                scan.utf8_ok = False
                at = error.start - held
                newlines = chunk.count(b"\n", 0, int(positions[at])) if at >= 0 else 0
                scan.first_bad_utf8_line = lines_before + newlines + 1
        after_run = bool(non_ascii_here and high[-1] == len(chunk) - 1)
        lines_before += int(np.count_nonzero(codes == 0x0A))
        scan.non_ascii += non_ascii_here
        # Only the first MAX_SAMPLES runs are looked at in Python.
        if not non_ascii_here or len(samples) >= MAX_SAMPLES:
            continue
        for match in NON_ASCII_RUN.finditer(chunk):
            if len(samples) >= MAX_SAMPLES:
                break
            before = chunk[max(0, match.start() - CONTEXT_BYTES) : match.start()]
            after = chunk[match.end() : match.end() + CONTEXT_BYTES]
            samples.append((before, match.group(), after))
    if scan.utf8_ok:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            scan.utf8_ok = False
            scan.first_bad_utf8_line = lines_before
    scan.lines = lines_before + (last != b"\n")
    return scan


def _is_utf8(run: bytes) -> bool:
    try:
        run.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _plausibility(char: str, before: str, after: str) -> float:
    """How natural `char` is between `before` and `after` (single characters; space at the edges).

    A letter scores 1 next to a letter of the same case (`ä` in `vägen`), 0.5 next to letters of the
    other case only (`Ú` in `cafÚ`). Typographic punctuation scores 1 where it sits in text: an opening
    quote before a word, a closing quote after one (not before another), an apostrophe after a letter, a dash between spaces or digits, an
    ellipsis after a word, a currency sign by a number. Anything else scores 0.
    """
    if char.isalpha():
        neighbours = [c for c in (before, after) if c.isalpha()]
        if not neighbours:
            return 0.0
        return 1.0 if any(c.islower() == char.islower() for c in neighbours) else 0.5
    if char in OPENING_QUOTES:
        return float(not before.isalnum() and after.isalnum())
    if char == "’":  # a closing single quote or an apostrophe (`Children’s`)
        return float(before.isalnum() or before in ".!?")
    if char in CLOSING_QUOTES:  # never followed by a letter: `k”p` is `köp` in another code page
        return float((before.isalnum() or before in ".!?") and not after.isalnum())
    if char in DASHES:
        return float((before.isspace() or before.isdigit()) and (after.isspace() or after.isdigit()))
    if char == "…":
        return float(before.isalnum() and not after.isalnum())
    if char in CURRENCY_CHARS:
        return float(before.isdigit() or after.isdigit() or (before.isspace() and after.isspace()))
    return 0.0


def _decode_sample(sample: Sample, encoding: str) -> tuple[str, str, str]:
    before, run, after = sample
    return (
        before.decode("ascii", "replace"),
        run.decode(encoding, errors="replace"),
        after.decode("ascii", "replace"),
    )


def letter_share(samples: list[Sample], encoding: str) -> float:
    """How well `encoding` explains the non-ASCII runs in `samples`, from 0 to 1 (mean plausibility)."""
    score = total = 0.0
    for sample in samples:
        prefix, text, suffix = _decode_sample(sample, encoding)
        line = prefix + text + suffix
        for i in range(len(prefix), len(prefix) + len(text)):
            total += 1
            before = line[i - 1] if i else " "
            after = line[i + 1] if i + 1 < len(line) else " "
            score += _plausibility(line[i], before, after)
    return score / total if total else 1.0


def detect_encoding(path: Path, candidates: Sequence[str]) -> tuple[str, bool, int]:
    """(codec name, has a BOM, non-ASCII byte count) of `path`; see `_detect_encoding`."""
    return _detect_encoding(path, candidates)[:3]


def _detect_encoding(path: Path, candidates: Sequence[str]) -> tuple[str, bool, int, int | None]:
    """(codec name, has a BOM, non-ASCII byte count, line count or None when not counted) of `path`.

    UTF-16 with a BOM (Excel's "Unicode Text") and UTF-8 (with or without BOM) are recognised by their
    bytes; otherwise each single-byte code page in `candidates` is scored by `letter_share` and the best
    wins. Raises NotCsvTextError for an empty or binary file, ExportError when two code pages explain the
    file equally well but read it differently.
    """
    if path.stat().st_size == 0:
        raise export_error(
            path, "the file is empty; expected a CSV with a header row and data rows", kind=NotCsvTextError
        )
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(UTF16_BOMS):
        return "utf-16", True, 0, None
    has_bom = head.startswith(codecs.BOM_UTF8)
    scan = _scan_bytes(path)
    samples, non_ascii = scan.samples, scan.non_ascii
    if scan.has_nul:
        raise export_error(
            path, "holds NUL bytes, so it is a binary file, not CSV text", kind=NotCsvTextError
        )
    if scan.utf8_ok:
        return ("utf-8-sig" if has_bom else "utf-8"), has_bom, non_ascii, scan.lines
    utf8_runs = sum(_is_utf8(run) for _, run, _ in samples)
    if utf8_runs * 2 >= len(samples):
        # Most non-ASCII text is valid UTF-8 but some is not: two exports pasted together, or one edited
        # in another program. Any single code page would turn the UTF-8 part into mojibake.
        raise export_error(
            path,
            f"{utf8_runs} of {len(samples)} non-ASCII runs are UTF-8, but this line holds bytes that are "
            "not: the file mixes encodings",
            line=scan.first_bad_utf8_line,
            setting=f"{SETTING_PREFIX}ENCODING to read it one way (lines that do not fit are then named)",
        )
    scored = sorted(
        (
            (letter_share(samples, name), -rank, codecs.lookup(name).name)
            for rank, name in enumerate(candidates)
        ),
        reverse=True,
    )
    best_share, _, best = scored[0]
    for share, _, name in scored[1:]:
        if share < best_share:
            break
        for sample in samples:
            mine, theirs = _decode_sample(sample, best)[1], _decode_sample(sample, name)[1]
            if mine != theirs:
                raise export_error(
                    path,
                    f"the text reads equally well as {best} ({''.join(_decode_sample(sample, best))!r}) and as "
                    f"{name} ({''.join(_decode_sample(sample, name))!r})",
                    setting=f"{SETTING_PREFIX}ENCODING to the one the export was written in",
                )
    # A single-byte code page maps the newline byte to the newline, so the UTF-8 copy has as many lines.
    return best, has_bom, non_ascii, scan.lines


def transcode_to_utf8(source: Path, target: Path, encoding: str) -> Path:
    """Write `source` as UTF-8 without a BOM to `target`, chunk by chunk (bounded memory).

    A byte the codec cannot decode raises ExportError naming its line and the encoding setting.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lines_before = 0
    with open(target, "wb") as out:
        first = True
        for chunk in _chunks(source):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as error:
                line = lines_before + chunk.count(b"\n", 0, error.start) + 1
                raise export_error(
                    source,
                    f"byte {chunk[error.start : error.start + 1]!r} is not {encoding} text",
                    line=line,
                    seen=chunk[max(0, error.start - 20) : error.start + 20].decode(encoding, "replace"),
                    setting=f"{SETTING_PREFIX}ENCODING",
                ) from error
            lines_before += chunk.count(b"\n")
            if first:
                text = text.removeprefix("\ufeff")
                first = False
            out.write(text.encode("utf-8"))
        out.write(decoder.decode(b"", final=True).encode("utf-8"))
    return target


# ---- header and delimiter --------------------------------------------------------------------------------


def _head_lines(text_path: Path, limit_bytes: int = 1 << 16) -> list[str]:
    with open(text_path, encoding="utf-8", newline="") as handle:
        head = handle.read(limit_bytes)
    lines = head.splitlines()
    if len(head) == limit_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return lines


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def canonical_key(name: str) -> str:
    """Header names match ignoring case and surrounding spaces (NBSP and a stray BOM included)."""
    return name.replace("\ufeff", "").strip().upper()


def detect_delimiter(path: Path, header_line: str, layout: ExportLayout) -> str:
    """The delimiter under which the header names the most expected columns."""
    known = {canonical_key(c) for c in layout.columns}
    scores = {d: sum(canonical_key(n) in known for n in _split(header_line, d)) for d in DELIMITERS}
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


# ---- numbers ---------------------------------------------------------------------------------------------


def _currency_pattern(signs: Sequence[str]) -> str:
    return "|".join(re.escape(s) for s in sorted(signs, key=len, reverse=True))


@dataclass
class NumberFormat:
    decimal_mark: str = "."
    thousands_separator: str = ""
    currency_signs: tuple[str, ...] = ()
    evidence: str = "no separators seen"


def detect_number_format(
    path: Path, values: dict[str, list[tuple[int, str]]], reading: ExportReading
) -> NumberFormat:
    """Decimal mark, thousands separator and currency signs of the number columns, decided for the file.

    `values` maps a column to (line, text) samples. `2,871.00` and `2.871,00` settle both marks; `95,7`
    settles a decimal comma; `1,234` alone could be either and, with nothing else to go by, stops the run.
    Groups of digits split by an apostrophe or a (no-break) space are thousands.
    """
    override = reading.dialect
    signs_pattern = re.compile(_currency_pattern(reading.known_currency_signs))
    found_signs: set[str] = set()
    decimal_votes: dict[str, tuple[str, int, str]] = {}
    thousands_votes: dict[str, tuple[str, int, str]] = {}
    ambiguous: list[tuple[str, int, str, str]] = []  # column, line, text, the one separator
    for column, samples in values.items():
        for line, text in samples:
            signs = signs_pattern.findall(text)
            found_signs.update(signs)
            bare = signs_pattern.sub("", text).strip().lstrip("+-").strip()
            if not bare or not re.fullmatch(r"[\d.,' \u00a0\u202f]+", bare) or not bare[0].isdigit():
                continue  # not a number in any format: rejected later with its reason
            marks = [c for c in bare if not c.isdigit()]
            if not marks:
                continue
            kinds = list(dict.fromkeys(marks))
            where = (column, line, text)
            if len(kinds) == 2:
                decimal_votes.setdefault(marks[-1], where)
                thousands_votes.setdefault(kinds[0] if kinds[0] != marks[-1] else kinds[1], where)
            elif kinds[0] in "' \u00a0\u202f" or len(marks) > 1:
                thousands_votes.setdefault(kinds[0], where)
            elif len(bare) - bare.index(kinds[0]) - 1 != 3:
                decimal_votes.setdefault(kinds[0], where)
            else:
                ambiguous.append((*where, kinds[0]))
    if len(decimal_votes) > 1 and override.decimal_mark is None:
        (a, wa), (b, wb) = list(decimal_votes.items())[:2]
        raise export_error(
            path,
            f"numbers use both {a!r} (line {wa[1]}: {cut(wa[2])}) and {b!r} as the decimal mark",
            line=wb[1],
            column=wb[0],
            seen=wb[2],
            setting=f"{SETTING_PREFIX}DECIMAL_MARK",
        )
    decimal = override.decimal_mark or next(iter(decimal_votes), None)
    thousands_from_votes = [t for t in thousands_votes if t != decimal]
    if decimal is None and thousands_from_votes and thousands_from_votes[0] in ".,":
        decimal = "," if thousands_from_votes[0] == "." else "."
    if decimal is None and ambiguous:
        column, line, text, _ = ambiguous[0]
        raise export_error(
            path,
            "cannot tell whether the separator in numbers like this is a decimal mark or a thousands "
            "separator, and no other number settles it",
            line=line,
            column=column,
            seen=text,
            setting=f"{SETTING_PREFIX}DECIMAL_MARK (and THOUSANDS_SEPARATOR)",
        )
    decimal = decimal or "."
    if override.thousands_separator is not None:
        thousands = override.thousands_separator
    else:
        candidates = thousands_from_votes + [t[3] for t in ambiguous if t[3] != decimal][:1]
        thousands = candidates[0] if candidates else ""
        if len(set(candidates)) > 1:
            raise export_error(
                path,
                f"numbers use more than one thousands separator ({', '.join(map(repr, set(candidates)))})",
                setting=f"{SETTING_PREFIX}THOUSANDS_SEPARATOR",
            )
    if thousands == decimal:
        raise export_error(
            path,
            f"the decimal mark and the thousands separator are both {decimal!r}",
            setting=f"{SETTING_PREFIX}DECIMAL_MARK and THOUSANDS_SEPARATOR",
        )
    signs = (
        tuple(override.currency_signs) if override.currency_signs is not None else tuple(sorted(found_signs))
    )
    evidence = ", ".join(
        f"{kind} {mark!r} from {cut(where[2])} (line {where[1]}, {where[0]})"
        for kind, votes in (("decimal", decimal_votes), ("thousands", thousands_votes))
        for mark, where in votes.items()
    )
    return NumberFormat(decimal, thousands, signs, evidence or "no separators seen")


def _plain_number_text(text: pl.Expr, dialect: Dialect) -> pl.Expr:
    """Trimmed text of a number with the file's currency signs and thousands separators removed and a
    decimal point; null where the thousands grouping is malformed (`1,2,3`)."""
    if dialect.currency_signs:
        text = text.str.replace_all(_currency_pattern(dialect.currency_signs), "").str.strip_chars()
    if dialect.thousands_separator:
        sep, dec = re.escape(dialect.thousands_separator), re.escape(dialect.decimal_mark)
        grouped = rf"^[+-]?(?:\d{{1,3}}(?:{sep}\d{{3}})+|\d+)(?:{dec}\d*)?$"
        text = pl.when(text.str.contains(grouped)).then(
            text.str.replace_all(dialect.thousands_separator, "", literal=True)
        )
    if dialect.decimal_mark != ".":
        text = text.str.replace(dialect.decimal_mark, ".", literal=True)
    return text


def number_value(column: str, dialect: Dialect) -> pl.Expr:
    """Float64 of a number column's text; null unless the text is a finite number in the file's format
    (`NaN`, `inf`, `Infinity` and values that overflow are null)."""
    return finite(parsed_number(column, dialect))


def parsed_number(column: str, dialect: Dialect) -> pl.Expr:
    """Float64 of a number column's text in the file's format, `NaN` and infinities included (`finite`
    then makes them null): `number_value` in two steps, for a streaming query, which evaluates an
    expression used twice twice."""
    return _plain_number_text(pl.col(column).str.strip_chars(), dialect).cast(pl.Float64, strict=False)


def finite(value: pl.Expr) -> pl.Expr:
    """`value` where it is a finite number, else null."""
    return pl.when(value.is_finite()).then(value)


def integer_value(column: str, dialect: Dialect) -> pl.Expr:
    """Int64 of an integer column's text, parsed as an integer (never through a float, so a 17-digit
    ORDERNUMBER stays exact); null when the text is not a whole number or does not fit 64 bits."""
    return _plain_number_text(pl.col(column).str.strip_chars(), dialect).cast(pl.Int64, strict=False)


def number_reason(column: str, dialect: Dialect, kind: str) -> pl.Expr:
    """Why a number column's text has no value (only evaluated for rejected rows)."""
    raw = pl.col(column).str.strip_chars()
    plain = _plain_number_text(raw, dialect)
    if kind == "whole number":
        in_range = plain.str.contains(r"^[+-]?\d+$")
        detail = pl.when(in_range).then(pl.lit("is out of range for a 64-bit integer"))
    else:
        finite_text = plain.str.contains(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
        detail = pl.when(finite_text).then(pl.lit("is out of range (overflows)"))
    seen = raw.str.slice(0, MAX_SEEN)
    return pl.format(f"{column} '{{}}' {{}}", seen, detail.otherwise(pl.lit(f"is not a {kind}")))


# ---- dates -----------------------------------------------------------------------------------------------


def _date_parts(text: pl.Expr) -> list[pl.Expr]:
    return [text.str.extract(DATE_PARTS.pattern, i) for i in range(1, 8)]


def decide_date_order(
    path: Path, pairs: pl.DataFrame, layout: ExportLayout, override: DateOrder | None
) -> tuple[str, str]:
    """(date order, evidence) for the file from its distinct (date text, month number text) pairs.

    Day-first evidence: a first number above 12, or a second number equal to the row's month while the
    first is not. Month-first evidence: the mirror image. Evidence both ways (a file that mixes orders, or
    dates that disagree with the month column) or none at all where the order matters stops the run.
    """
    column = layout.date_column or "date"
    if override:
        return override, "from settings"
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
        return "year_first", "no day/month dates (ISO year-first or Excel day numbers only)"
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
        return (
            "day_first",
            f"{day.height} distinct date(s) only day-first reads right, e.g. {cut(example['text'])}",
        )
    if month_first.height:
        example = month_first.row(0, named=True)
        return (
            "month_first",
            f"{month_first.height} distinct date(s) only month-first reads right, e.g. {cut(example['text'])}",
        )
    unsettled = parts.filter(differ)
    if unsettled.is_empty():
        return "month_first", "day and month are equal in every date: the order makes no difference"
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


# ---- the export ------------------------------------------------------------------------------------------


@dataclass
class Structure:
    """What the line-by-line pass found: records, malformed lines (line, text, reason), blank lines."""

    records: int
    malformed: pl.DataFrame
    blank_lines: int
    continuation_lines: int


def _lines(text_path: Path) -> pl.LazyFrame:
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


class Export:
    """One opened export: its dialect, header, and records as a lazy frame of text.

    Build it with `open_export`. Temp files go to the `work_dir` the caller owns.
    """

    def __init__(
        self,
        path: Path,
        text_path: Path,
        dialect: Dialect,
        header: Header,
        layout: ExportLayout,
        reading: ExportReading,
        work_dir: Path,
        line_count: int | None = None,
    ) -> None:
        self.path, self.text_path, self.dialect, self.header = path, text_path, dialect, header
        self.layout, self.reading, self.work_dir = layout, reading, work_dir
        self._structure: Structure | None = None
        self._repaired: Path | None = None
        self._line_count = line_count  # from the encoding scan when it ran: no second read to count

    # -- structure ----------------------------------------------------------------------------------------

    @property
    def checked(self) -> bool:
        """Whether `structure()` has run (so malformed lines are known and left out of `scan()`)."""
        return self._structure is not None

    def line_count(self) -> int:
        """Lines in the file (counted by the encoding scan, else by a newline-counting pass; once)."""
        if self._line_count is None:
            self._line_count = int(_lines(self.text_path).select(pl.len()).collect(engine="streaming").item())
        return self._line_count

    def looks_well_formed(self, rows_parsed: int, last_column_nulls: int) -> bool:
        """True when a full parse with the header's width met one record per line and never a short one:
        then no line is malformed and `structure()` need not run. Any doubt returns False."""
        return rows_parsed == self.line_count() - 1 and last_column_nulls == 0

    def structure(self) -> Structure:
        """Check every line: field count against the header (outside quotes), quotes that never close,
        blank lines. Malformed lines are set aside and `scan()` then reads the rest from a repaired copy.

        One streaming pass counts delimiters per line; only lines with quotes or a wrong count are looked
        at closer, and only the bad ones reach Python.
        """
        if self._structure is not None:
            return self._structure
        delimiter, width = self.dialect.delimiter, self.header.width
        text = pl.col(TEXT)
        quotes = text.str.count_matches('"', literal=True)
        delimiters = text.str.count_matches(delimiter, literal=True)
        outside = text.str.replace_all(r'"[^"]*"', "").str.count_matches(delimiter, literal=True)
        suspicious = (
            _lines(self.text_path)
            .filter(pl.col(LINE) > 1)
            .with_columns(quotes.alias("quotes"), delimiters.alias("delimiters"))
            .filter((pl.col("quotes") > 0) | (pl.col("delimiters") != width - 1) | text.is_null())
            .with_columns(
                pl.when(pl.col("quotes") > 0).then(outside).otherwise(pl.col("delimiters")).alias("outside")
            )
            .filter((pl.col("quotes") % 2 == 1) | (pl.col("outside") != width - 1) | text.is_null())
            .select(LINE, TEXT, "quotes", "outside")
            .head(MAX_MALFORMED_LINES + 1)
            .collect(engine="streaming")
        )
        if suspicious.height > MAX_MALFORMED_LINES:
            first = suspicious.row(0, named=True)
            raise export_error(
                self.path,
                f"more than {MAX_MALFORMED_LINES:,} lines do not have the header's {width} fields under "
                f"delimiter {delimiter!r}: the file is read with the wrong delimiter or quoting",
                line=first[LINE],
                seen=first[TEXT],
                setting=f"{SETTING_PREFIX}DELIMITER",
            )
        lines = self.line_count()
        bad: dict[int, tuple[str, int, int]] = {
            line: (value, q, o) for line, value, q, o in suspicious.iter_rows()
        }
        malformed: list[tuple[int, str, str]] = []
        blank: list[int] = []
        continuation: list[int] = []
        for line in sorted(bad):
            if line in continuation:
                continue
            value, quote_count, fields_minus_one = bad[line]
            if value is None or not value.strip():
                blank.append(line)
                continue
            if quote_count % 2 == 1:
                joined, end = value, line
                while (joined.count('"') % 2 == 1) and (end + 1) in bad and bad[end + 1][0] is not None:
                    end += 1
                    joined += "\n" + bad[end][0]
                record = self._parse_record(joined) if joined.count('"') % 2 == 0 and end > line else None
                if record is not None and len(record) == width:
                    continuation.extend(range(line + 1, end + 1))
                    continue
                malformed.append((line, value, "broken quote: a quoted field never closes on this line"))
                continue
            fields = fields_minus_one + 1
            record = self._parse_record(value)
            fields = len(record) if record is not None else fields
            if fields == width:
                continue
            malformed.append(
                (
                    line,
                    value,
                    f"has {fields} field(s) where the header has {width} (delimiter {self.dialect.delimiter!r})",
                )
            )
        frame = pl.DataFrame(
            malformed, schema={LINE: pl.UInt32, "text": pl.String, "reason": pl.String}, orient="row"
        )
        records = lines - 1 - len(blank) - len(continuation)
        self._structure = Structure(records, frame, len(blank), len(continuation))
        if malformed or blank or continuation:
            self._repaired = self._write_repaired(
                {row[0] for row in malformed} | set(blank), set(continuation)
            )
        return self._structure

    def _parse_record(self, text: str) -> list[str] | None:
        try:
            rows = list(csv.reader(io.StringIO(text), delimiter=self.dialect.delimiter, strict=True))
        except csv.Error:
            return None
        return rows[0] if len(rows) == 1 else None

    def _write_repaired(self, skipped: set[int], continuation: set[int]) -> Path:
        """A copy without the skipped lines whose records start with their line number (first field)."""
        target = self.work_dir / "export_repaired.csv"
        delimiter = self.dialect.delimiter
        line, text = pl.col(LINE), pl.col(TEXT)
        kept = (
            _lines(self.text_path)
            .filter(~line.is_in(pl.Series(sorted(skipped), dtype=pl.UInt32).implode()))
            .select(
                pl.when(line.is_in(pl.Series(sorted(continuation), dtype=pl.UInt32).implode()))
                .then(text)
                .otherwise(pl.format(f"{{}}{delimiter}{{}}", line, text))
            )
        )
        kept.sink_csv(target, include_header=False, quote_style="never")
        return target

    # -- records ------------------------------------------------------------------------------------------

    def scan(self, normalise: bool = True) -> pl.LazyFrame:
        """Records as text: LINE (UInt32) and the header's columns under their canonical names, unnamed
        columns dropped; with `normalise`, text cells trimmed and missing when empty or a null token
        (number cells are left to their parsers).

        Before `structure()` has run this assumes the file is well formed (check with
        `looks_well_formed`); after it, malformed and blank lines are left out.
        """
        names = list(self.header.names)
        if self.line_count() <= 1:  # Polars finds no columns in a header-only file
            frame = pl.LazyFrame(schema={LINE: pl.UInt32, **dict.fromkeys(names, pl.String)})
            return frame.drop(list(self.header.unnamed))
        common = {
            "separator": self.dialect.delimiter,
            "infer_schema": False,
            "has_header": False,
            "skip_rows": 1,
            "raise_if_empty": False,  # a header-only file has no records; callers say so
            "glob": False,  # the export's name may hold `[`, `*` or `?`
        }
        if self._repaired is not None:
            frame = pl.scan_csv(self._repaired, new_columns=[LINE, *names], **common).with_columns(
                pl.col(LINE).cast(pl.UInt32)
            )
        else:
            frame = pl.scan_csv(
                self.text_path, new_columns=names, row_index_name=LINE, row_index_offset=2, **common
            )
        if self.header.unnamed:
            frame = frame.drop(list(self.header.unnamed))
        if normalise:
            # Number columns are trimmed by their parsers (`number_value`, `integer_value`).
            text_columns = [c for c in names if c not in self.header.unnamed and c not in self.layout.numeric]
            frame = self.with_normalised(frame, text_columns)
        return frame

    def normalised(self, column: str) -> pl.Expr:
        """A cell trimmed (NBSP too); in a text column, empty or a null token is missing."""
        # Polars trims Unicode White_Space, which includes the no-break spaces (U+00A0, U+202F) that
        # spreadsheets put around numbers and names.
        trimmed = pl.col(column).str.strip_chars()
        if column in self.layout.numeric:
            return trimmed
        return self._tokens_missing(column, trimmed)

    def _tokens_missing(self, column: str, trimmed: pl.Expr) -> pl.Expr:
        kept = self.reading.kept_tokens.get(column, [])
        # One set lookup for the tokens and the empty cell: the cheapest form on millions of cells.
        missing = [*(t for t in self.reading.null_tokens if t not in kept), ""]
        return pl.when(~trimmed.is_in(missing)).then(trimmed).alias(column)

    def with_normalised(self, frame: pl.LazyFrame, columns: Sequence[str]) -> pl.LazyFrame:
        """`frame` with `columns` normalised (as `normalised`) in two steps, trimmed then tokens missing:
        a streaming query evaluates an expression used twice twice, and the trimming is the dear part."""
        trimmed = frame.with_columns(pl.col(c).str.strip_chars() for c in columns)
        text = [c for c in columns if c not in self.layout.numeric]
        return trimmed.with_columns(self._tokens_missing(c, pl.col(c)) for c in text)

    def sample(self) -> pl.DataFrame:
        """The first `reading.sample_rows` well-formed records (normalised), read with Python's csv module
        so a malformed line among them is skipped, not fatal."""
        rows: list[list[str]] = []
        lines: list[int] = []
        width = self.header.width
        with open(self.text_path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=self.dialect.delimiter)
            next(reader, None)
            line = reader.line_num + 1
            try:
                for record in reader:
                    if len(record) == width:
                        rows.append(record)
                        lines.append(line)
                    line = reader.line_num + 1
                    if len(rows) >= self.reading.sample_rows:
                        break
            except csv.Error:
                pass  # a broken quote: the records before it are the sample
        frame = (
            pl.DataFrame(rows, schema=list(self.header.names), orient="row")
            if rows
            else pl.DataFrame(schema=dict.fromkeys(self.header.names, pl.String))
        )
        frame = frame.with_columns(pl.Series(LINE, lines, dtype=pl.UInt32))
        if self.header.unnamed:
            filled = frame.select(pl.col(list(self.header.unnamed)).str.strip_chars().ne("").sum())
            for name in self.header.unnamed:
                if filled[name].item():
                    example = frame.filter(pl.col(name).str.strip_chars() != "").row(0, named=True)
                    raise export_error(
                        self.path,
                        f"field {name.removeprefix('UNNAMED_')} has no name in the header but holds values; "
                        "name it in the header or remove it",
                        line=example[LINE],
                        seen=example[name],
                    )
            frame = frame.drop(list(self.header.unnamed))
        return frame.with_columns(self.normalised(c) for c in frame.columns if c != LINE)

    def resolve_date_order(self, pairs: pl.DataFrame | None = None) -> str:
        """Decide (and record) the date order from distinct (`text`, `month`, `line`) pairs of the date
        and month columns, read from the whole file when `pairs` is None."""
        if self.layout.date_column is None or self.layout.date_column not in self.header.names:
            return self.dialect.date_order or "not applicable"
        if pairs is None:
            pairs = self.date_pairs(self.scan())
        order, evidence = decide_date_order(self.path, pairs, self.layout, self.reading.dialect.date_order)
        self.dialect.date_order = order
        self.dialect.evidence["date_order"] = evidence
        text = pl.col("text").str.strip_chars()
        kinds = pairs.select(
            text.str.extract(DATE_PARTS.pattern, 3).str.len_chars().eq(2).sum().alias("two_digit_years"),
            text.str.contains(EXCEL_SERIAL).sum().alias("excel_day_numbers"),
        ).row(0, named=True)
        self.dialect.evidence["date_kinds"] = (
            f"{kinds['two_digit_years'] or 0} distinct date(s) with a two-digit year, "
            f"{kinds['excel_day_numbers'] or 0} as Excel day numbers"
        )
        return order

    def date_pairs(self, frame: pl.LazyFrame) -> pl.DataFrame:
        """Distinct (date text, month text) pairs of `frame` with the first line each occurs on."""
        date, month = self.layout.date_column, self.layout.month_column
        month_expr = (
            pl.col(month) if month and month in frame.collect_schema().names() else pl.lit(None, pl.String)
        )
        return (
            frame.group_by(pl.col(date).alias("text"), month_expr.alias("month"))
            .agg(pl.col(LINE).min().alias("line"))
            .filter(pl.col("text").is_not_null())
            .collect(engine="streaming")
        )


def open_export(path: Path, layout: ExportLayout, reading: ExportReading, work_dir: Path) -> Export:
    """Detect the dialect of the export at `path` (encoding, delimiter, header, number format) and return
    the opened `Export`. A UTF-8 copy is written to `work_dir` when the file is not plain UTF-8.

    Raises NotCsvTextError (empty or binary), MissingColumnsError, or ExportError for anything the file
    cannot settle; every message is one line naming the file and the setting to change.
    """
    path = Path(path)
    override = reading.dialect
    if override.encoding:
        encoding = codecs.lookup(override.encoding).name
        with open(path, "rb") as handle:
            head = handle.read(4)
        has_bom, non_ascii, lines_counted = head.startswith((codecs.BOM_UTF8, *UTF16_BOMS)), 0, None
    else:
        encoding, has_bom, non_ascii, lines_counted = _detect_encoding(path, reading.candidate_encodings)
    text_path = path
    # A file not plain UTF-8, or read with an encoding from settings, goes through the strict decoder,
    # which names the first line the encoding cannot read.
    if encoding != "utf-8" or has_bom or override.encoding:
        text_path = transcode_to_utf8(path, work_dir / "export_utf8.csv", encoding)
    lines = _head_lines(text_path)
    if not lines or not lines[0].strip():
        raise export_error(
            path, "the first line is empty; expected the header row", line=1, kind=NotCsvTextError
        )
    delimiter = override.delimiter or detect_delimiter(path, lines[0], layout)
    header = read_header(path, _split(lines[0], delimiter), layout)
    dialect = Dialect(
        encoding=encoding,
        has_bom=has_bom,
        delimiter=delimiter,
        two_digit_year_pivot=override.two_digit_year_pivot,
        non_ascii_bytes=non_ascii,
        date_order=override.date_order,
    )
    dialect.evidence["encoding"] = "from settings" if override.encoding else "detected from the bytes"
    dialect.evidence["delimiter"] = "from settings" if override.delimiter else "the header's names"
    export = Export(path, text_path, dialect, header, layout, reading, work_dir, lines_counted)
    sample = export.sample()
    # Each distinct text once, at its first line: a repeat adds no vote (the first one was counted).
    numbers = {
        c: list(sample.select(LINE, c).drop_nulls().unique(c, keep="first", maintain_order=True).iter_rows())
        for c in (*layout.number_columns, *layout.integer_columns)
        if c in sample.columns
    }
    number_format = detect_number_format(path, numbers, reading)
    dialect.decimal_mark = number_format.decimal_mark
    dialect.thousands_separator = number_format.thousands_separator
    dialect.currency_signs = number_format.currency_signs
    dialect.evidence["numbers"] = number_format.evidence
    return export
