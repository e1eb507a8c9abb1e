"""Which text encoding an export is written in, decided from its bytes, and its UTF-8 copy.

UTF-16 with a BOM and UTF-8 (with or without BOM) are recognised by their bytes; otherwise each candidate
single-byte code page is scored by how naturally its characters sit in the file's own non-ASCII text.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sales_serving.contract.export.errors import SETTING_PREFIX, NotCsvTextError, export_error

CHUNK_BYTES = 8 << 20
CONTEXT_BYTES = 3  # bytes around a non-ASCII run that tell whether it sits inside a word
MAX_SAMPLES = 2000
NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Typographic punctuation of Windows-1252 (0x80-0x9F) and where each sits in real text.
OPENING_QUOTES = "‘“„‚«‹"
CLOSING_QUOTES = "’”»›"
DASHES = "–—"
CURRENCY_CHARS = "€£¥$"

# Our own detector on purpose: charset-normalizer (and chardet) read the real Kaggle file, whose only
# non-ASCII bytes are DOS code page 850 letters, as another code page and turn `Berguvsvägen` into
# `Berguvsv„gen`. Scoring each candidate by whether its characters sit where such characters sit in words
# gets both DOS letters and Windows-1252 punctuation right.


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


class Sample(NamedTuple):
    """One non-ASCII run of the file with the ASCII bytes around it."""

    before: bytes
    run: bytes
    after: bytes


class Rendered(NamedTuple):
    """A sample decoded: the context as ASCII, the run in one candidate encoding."""

    before: str
    run: str
    after: str


class FoundEncoding(NamedTuple):
    """What the encoding scan decided and counted."""

    encoding: str  # a Python codec name
    has_bom: bool
    non_ascii_bytes: int
    lines: int | None  # lines in the file when the scan counted them, else None
    line_ends: str = "not counted"  # LF, CRLF, CR or mixed (see `ByteScan.line_ends`)
    cr_line_ends: int = 0  # line ends that are a CR alone
    nul_lines: int = 0  # lines holding a NUL byte: each is rejected, the rest of the file loads

    @property
    def needs_copy(self) -> bool:
        """Whether Polars cannot read the file as it is (it reads plain UTF-8 with LF or CR LF line ends
        and no NUL byte)."""
        return self.encoding != "utf-8" or self.has_bom or bool(self.cr_line_ends or self.nul_lines)


@dataclass
class ByteScan:
    utf8_ok: bool = True
    first_bad_utf8_line: int = 0  # line of the first byte strict UTF-8 refuses (0 when none)
    non_ascii: int = 0
    samples: list[Sample] = field(default_factory=list)
    nul_bytes: int = 0
    nul_lines: int = 0  # lines holding a NUL byte (a line cut by a chunk edge may count twice)
    first_nul_line: int = 0
    lf: int = 0  # line ends: LF alone, CR LF, CR alone (Excel for Mac)
    crlf: int = 0
    cr: int = 0
    lines: int = (
        0  # lines as `read_lines` counts them in the UTF-8 copy (line ends, plus a last line without one)
    )

    @property
    def line_ends(self) -> str:
        """`LF`, `CRLF`, `CR`, or `mixed (...)` with the count of each."""
        kinds = {"LF": self.lf, "CRLF": self.crlf, "CR": self.cr}
        seen = [k for k, n in kinds.items() if n]
        if len(seen) <= 1:
            return seen[0] if seen else "none"
        return "mixed (" + ", ".join(f"{n:,} {k}" for k, n in kinds.items() if n) + ")"


def _chunks_with_next(path: Path) -> Iterator[tuple[bytes, int]]:
    """Each chunk with the first byte of the one after it (-1 at the end), so a CR at a chunk's end is
    known to be a CR LF or a line end of its own."""
    previous = None
    for chunk in _chunks(path):
        if previous is not None:
            yield previous, chunk[0]
        previous = chunk
    if previous is not None:
        yield previous, -1


def _scan_bytes(path: Path) -> ByteScan:
    """One pass: strict-UTF-8 validity, the non-ASCII byte count, samples in context, NUL bytes and the
    lines holding them, the line ends (LF, CR LF, CR alone) and the line count (so the records are counted
    from the same read as the encoding is detected).

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
    for chunk, next_byte in _chunks_with_next(path):
        last = chunk[-1:]
        codes = np.frombuffer(chunk, dtype=np.uint8)
        line_end = codes == 0x0A
        carriage = codes == 0x0D
        if carriage.any():
            followed = np.empty_like(codes)
            followed[:-1] = codes[1:]
            followed[-1] = next_byte if next_byte >= 0 else 0
            alone = carriage & (followed != 0x0A)
            scan.cr += int(np.count_nonzero(alone))
            scan.crlf += int(np.count_nonzero(carriage)) - int(np.count_nonzero(alone))
            line_end = line_end | alone
        ends = np.flatnonzero(line_end)
        nul = np.flatnonzero(codes == 0)
        if len(nul):
            nul_line = np.searchsorted(ends, nul)
            if not scan.nul_bytes:
                scan.first_nul_line = lines_before + int(nul_line[0]) + 1
            scan.nul_bytes += len(nul)
            scan.nul_lines += len(np.unique(nul_line))
        high = np.flatnonzero(codes >= 0x80)  # where the non-ASCII bytes are
        non_ascii_here = len(high)
        if scan.utf8_ok and (non_ascii_here or after_run):
            # The non-ASCII runs, each with the byte after it (ASCII; or the next chunk's first byte).
            run_ends = high[np.flatnonzero(np.diff(high) != 1)] + 1
            parts = [high, run_ends, high[-1:] + 1]
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
                before = int(np.searchsorted(ends, positions[at])) if at >= 0 else 0
                scan.first_bad_utf8_line = lines_before + before + 1
        after_run = bool(non_ascii_here and high[-1] == len(chunk) - 1)
        lines_before += len(ends)
        scan.non_ascii += non_ascii_here
        # Only the first MAX_SAMPLES runs are looked at in Python.
        if not non_ascii_here or len(samples) >= MAX_SAMPLES:
            continue
        for match in NON_ASCII_RUN.finditer(chunk):
            if len(samples) >= MAX_SAMPLES:
                break
            before = chunk[max(0, match.start() - CONTEXT_BYTES) : match.start()]
            after = chunk[match.end() : match.end() + CONTEXT_BYTES]
            samples.append(Sample(before, match.group(), after))
    if scan.utf8_ok:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            scan.utf8_ok = False
            scan.first_bad_utf8_line = lines_before
    scan.lf = lines_before - scan.cr - scan.crlf
    scan.lines = lines_before + (last not in (b"\n", b"\r"))
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


def _decode_sample(sample: Sample, encoding: str) -> Rendered:
    return Rendered(
        sample.before.decode("ascii", "replace"),
        sample.run.decode(encoding, errors="replace"),
        sample.after.decode("ascii", "replace"),
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


def detect_encoding(path: Path, candidates: Sequence[str]) -> FoundEncoding:
    """The encoding of `path`, whether it has a BOM, its non-ASCII byte count and line count.

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
        return FoundEncoding("utf-16", True, 0, None)
    has_bom = head.startswith(codecs.BOM_UTF8)
    scan = _scan_bytes(path)
    samples, non_ascii = scan.samples, scan.non_ascii
    # A NUL byte in a field of a text export rejects that line; NULs all over are a binary file (or
    # UTF-16 without its BOM, which puts a NUL beside every ASCII character).
    if scan.nul_bytes * 100 > path.stat().st_size or scan.nul_lines > max(10, scan.lines // 100):
        raise export_error(
            path,
            f"holds {scan.nul_bytes:,} NUL bytes on {scan.nul_lines:,} of {scan.lines:,} lines, so it is a "
            "binary file, not CSV text",
            line=scan.first_nul_line,
            setting=f"{SETTING_PREFIX}ENCODING=utf-16 if it is UTF-16 text without a byte order mark",
            kind=NotCsvTextError,
        )
    found = {"line_ends": scan.line_ends, "cr_line_ends": scan.cr, "nul_lines": scan.nul_lines}
    if scan.utf8_ok:
        return FoundEncoding("utf-8-sig" if has_bom else "utf-8", has_bom, non_ascii, scan.lines, **found)
    utf8_runs = sum(_is_utf8(sample.run) for sample in samples)
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
    # Ties go to the candidate listed first (sorted is stable).
    scored = sorted(
        ((letter_share(samples, name), codecs.lookup(name).name) for name in candidates),
        key=lambda score: -score[0],
    )
    best_share, best = scored[0]
    for share, name in scored[1:]:
        if share < best_share:
            break
        for sample in samples:
            mine, theirs = _decode_sample(sample, best).run, _decode_sample(sample, name).run
            if mine != theirs:
                raise export_error(
                    path,
                    f"the text reads equally well as {best} ({''.join(_decode_sample(sample, best))!r}) and as "
                    f"{name} ({''.join(_decode_sample(sample, name))!r})",
                    setting=f"{SETTING_PREFIX}ENCODING to the one the export was written in",
                )
    # A single-byte code page maps the newline byte to the newline, so the UTF-8 copy has as many lines.
    return FoundEncoding(best, has_bom, non_ascii, scan.lines, **found)


NUL_MARK = "\u2400"  # SYMBOL FOR NULL: stands for a NUL byte in the UTF-8 copy, whose line is then rejected


# A backslash escape of a quote inside a quoted field (MySQL, PHP): `\"`, and `\\` for a backslash.
BACKSLASH_QUOTE = re.compile(r'\\"(?![,;\t|\r\n])')
_BACKSLASH_ESCAPES = re.compile(r'\\([\\"])')


def detect_quote_escape(path: Path, encoding: str, limit_bytes: int = 1 << 16) -> tuple[str, int]:
    """(`backslash` or `doubled`, the line of the first backslash-escaped quote or 0) from the file's
    first `limit_bytes`: a `\"` that does not end a field is an escaped quote, which RFC 4180 spells
    `""`."""
    with open(path, "rb") as handle:
        head = handle.read(limit_bytes).decode(encoding, errors="replace")
    found = BACKSLASH_QUOTE.search(head)
    if found is None:
        return "doubled", 0
    return "backslash", head.count("\n", 0, found.start()) + 1


def _unescaped(text: str) -> str:
    """Backslash escapes as RFC 4180 spells them: `\"` as `""`, `\\` as one backslash."""
    return _BACKSLASH_ESCAPES.sub(lambda m: '""' if m.group(1) == '"' else "\\", text)


def _normalised_text(text: str, backslash_quotes: bool = False) -> str:
    """Line ends as LF (CR LF and a CR alone, Excel for Mac's), a NUL byte as NUL_MARK and, with
    `backslash_quotes`, backslash escapes in RFC 4180's spelling."""
    if backslash_quotes and "\\" in text:
        text = _unescaped(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", NUL_MARK)
    return text


class Transcoded(NamedTuple):
    path: Path
    nul_bytes: int  # NUL bytes met (each now NUL_MARK)


def transcode_to_utf8(
    source: Path, target: Path, encoding: str, backslash_quotes: bool = False
) -> Transcoded:
    """Write `source` as UTF-8 without a BOM to `target`, chunk by chunk (bounded memory), every line end
    as LF and a NUL byte as NUL_MARK (Polars reads lines at LF, and a NUL would end its line reader's
    cells).

    A byte the codec cannot decode raises ExportError naming its line and the encoding setting.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lines_before = 0
    held = ""
    nul_bytes = 0
    with open(target, "wb") as out:
        first = True
        for chunk in _chunks(source):
            try:
                text = held + decoder.decode(chunk)
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
            # A CR or a backslash at a chunk's end waits for the next chunk's first character.
            held = text[len(text.rstrip("\\")) :] or ("\r" if text.endswith("\r") else "")
            nul_bytes += text.count("\x00")
            out.write(_normalised_text(text[: len(text) - len(held)], backslash_quotes).encode("utf-8"))
        out.write(_normalised_text(held + decoder.decode(b"", final=True), backslash_quotes).encode("utf-8"))
    return Transcoded(target, nul_bytes)
