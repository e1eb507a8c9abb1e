"""Which text encoding an export is written in, decided from its bytes, and its UTF-8 copy.

UTF-16 with a BOM and UTF-8 (with or without BOM) are recognised by their bytes; otherwise each candidate
single-byte code page is scored by how naturally its characters sit in the file's own non-ASCII text.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sales_serving.contract.export.code_page import EvidenceLine, decide_code_page, encoding_advice
from sales_serving.contract.export.errors import SETTING_PREFIX, NotCsvTextError, export_error

CHUNK_BYTES = 8 << 20
MAX_EVIDENCE_LINES = 500
NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Byte order marks that name their encoding; UTF-32's first, since UTF-32 LE's starts with UTF-16 LE's.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


class FoundEncoding(NamedTuple):
    """What the encoding scan decided and counted."""

    encoding: str  # a Python codec name
    has_bom: bool
    non_ascii_bytes: int
    lines: int | None  # lines in the file when the scan counted them, else None
    line_ends: str = "not counted"  # LF, CRLF, CR or mixed (see `ByteScan.line_ends`)
    cr_line_ends: int = 0  # line ends that are a CR alone
    nul_lines: int = 0  # lines holding a NUL byte: each is rejected, the rest of the file loads
    evidence: str = "from settings"
    # Whether the decoded text can hold a format character (Cf) or a combining mark, judged from the
    # high bytes present (`_may_need_unicode_tidy`); True when not scanned.
    unicode_tidy_possible: bool = True
    utf8_lines: bool = False  # some lines are UTF-8, read as such; the others are in `encoding`

    @property
    def needs_copy(self) -> bool:
        """Whether Polars cannot read the file as it is (it reads plain UTF-8 with LF or CR LF line ends
        and no NUL byte)."""
        return (
            self.encoding != "utf-8"
            or self.has_bom
            or bool(self.cr_line_ends or self.nul_lines or self.utf8_lines)
        )


@dataclass
class ByteScan:
    utf8_ok: bool = True
    first_bad_utf8_line: int = 0  # line of the first byte strict UTF-8 refuses (0 when none)
    non_ascii: int = 0
    high_bytes: set[int] = field(default_factory=set)  # the distinct bytes above 0x7F in the file
    evidence: list[EvidenceLine] = field(default_factory=list)
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
    """One pass: strict-UTF-8 validity, the non-ASCII byte count, the first lines holding non-ASCII bytes
    (the evidence for the encoding), NUL bytes and the
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
    evidence = scan.evidence
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
        lines_before_chunk = lines_before
        lines_before += len(ends)
        scan.non_ascii += non_ascii_here
        if non_ascii_here and len(scan.high_bytes) < 128:
            scan.high_bytes.update(np.unique(codes[high]).tolist())
        # Only the first MAX_EVIDENCE_LINES lines with non-ASCII bytes are looked at in Python.
        if not non_ascii_here or len(evidence) >= MAX_EVIDENCE_LINES:
            continue
        taken_to = -1
        for match in NON_ASCII_RUN.finditer(chunk):
            if len(evidence) >= MAX_EVIDENCE_LINES:
                break
            if match.start() < taken_to:
                continue  # this line is taken already
            start = max(chunk.rfind(b"\n", 0, match.start()), chunk.rfind(b"\r", 0, match.start())) + 1
            end = len(chunk)
            for sep in (b"\n", b"\r"):
                found = chunk.find(sep, match.end())
                end = found if 0 <= found < end else end
            taken_to = end
            line = lines_before_chunk + int(np.searchsorted(ends, match.start())) + 1
            evidence.append(EvidenceLine(line, chunk[start:end]))
    if scan.utf8_ok:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            scan.utf8_ok = False
            scan.first_bad_utf8_line = lines_before
    scan.lf = lines_before - scan.cr - scan.crlf
    scan.lines = lines_before + (last not in (b"\n", b"\r"))
    return scan


def _is_utf8(text: bytes) -> bool:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# UTF-8 lead bytes of the format characters and combining marks exports carry: U+0300-036F (CC, CD),
# U+1AB0-1DFF (E1), U+200B-206F and U+20D0-20FF (E2), U+FE20-FEFF (EF), tags (F3). Their absence
# spares the Unicode pass; their presence only sends the text to it.
UTF8_TIDY_LEADS = frozenset({0xCC, 0xCD, 0xE1, 0xE2, 0xEF, 0xF3})


def _may_need_unicode_tidy(high_bytes: set[int], encoding: str) -> bool:
    """Whether text of these high bytes in `encoding` can hold a Cf character or a combining mark."""
    name = codecs.lookup(encoding).name
    if name in ("utf-8", "utf-8-sig"):
        return bool(high_bytes & UTF8_TIDY_LEADS)
    if len(bytes(range(256)).decode(name, errors="replace")) != 256:
        return True  # a multi-byte encoding: anything may be in it
    decoded = bytes(sorted(high_bytes)).decode(name, errors="ignore")
    return any(unicodedata.category(c) in ("Cf", "Mn", "Mc", "Me") for c in decoded)


# Share of code units that must carry the NUL high byte(s) at one position for BOM-less UTF-16/32: an
# export's delimiters, digits and line ends are ASCII, so even a file of CJK names has most of its units
# so; a NUL at the other positions is what UTF-16/32 never has around ASCII text.
MIN_WIDE_ASCII_UNITS = 0.05
MAX_WIDE_STRAY_NULS = 0.01


def _wide_without_bom(path: Path, limit_bytes: int = 1 << 16) -> str | None:
    """`utf-32-le/-be` or `utf-16-le/-be` when the file's first `limit_bytes` have the NUL pattern such
    text has (at least MIN_WIDE_ASCII_UNITS of the code units an ASCII character: NUL high bytes, a
    non-NUL low byte; the low bytes' position almost never NUL) and decode strictly to text holding a
    line end; else None. CJK text puts no NUL in its units, so the share, not all units, is the test."""
    import numpy as np  # only here, as in `_scan_bytes`

    with open(path, "rb") as handle:
        head = handle.read(limit_bytes)
    for width, name in ((4, "utf-32"), (2, "utf-16")):
        usable = len(head) - len(head) % width
        if usable < 4 * width:
            continue
        units = np.frombuffer(head[:usable], dtype=np.uint8).reshape(-1, width)
        for order, low in (("le", 0), ("be", width - 1)):
            high_nul = (np.delete(units, low, axis=1) == 0).all(axis=1)
            low_nul = units[:, low] == 0
            ascii_units = high_nul & ~low_nul
            if ascii_units.mean() < MIN_WIDE_ASCII_UNITS or low_nul.mean() > MAX_WIDE_STRAY_NULS:
                continue
            try:
                text = head[:usable].decode(f"{name}-{order}")
            except UnicodeDecodeError:
                continue
            if "\n" in text or "\r" in text:
                return f"{name}-{order}"
    return None


def _utf16_by_nul_position(path: Path, limit_bytes: int = 1 << 16) -> str:
    """`utf-16-le` when the NUL bytes of the file's head sit at odd positions only (where UTF-16 LE puts
    the high byte of an ASCII character), `utf-16-be` when at even ones only, else both named."""
    with open(path, "rb") as handle:
        head = handle.read(limit_bytes)
    odd, even = head[1::2].count(0), head[0::2].count(0)
    if odd and not even:
        return "utf-16-le"
    if even and not odd:
        return "utf-16-be"
    return "utf-16-le (or =utf-16-be)"


def detect_encoding(path: Path, candidates: Sequence[str], utf8_lines: bool = False) -> FoundEncoding:
    """The encoding of `path`, whether it has a BOM, its non-ASCII byte count and line count.

    UTF-16/32 with a BOM and UTF-8 (with or without BOM) are recognised by their bytes; otherwise the
    code page is decided on the file's own lines with non-ASCII bytes (`decide_code_page`). A file whose
    lines are partly UTF-8 and partly not stops naming lines of each kind, unless `utf8_lines` says to
    read the UTF-8 ones as UTF-8 and the rest in the code page decided on them. Raises NotCsvTextError for
    an empty or binary file, ExportError for what the bytes cannot settle.
    """
    if path.stat().st_size == 0:
        raise export_error(
            path, "the file is empty; expected a CSV with a header row and data rows", kind=NotCsvTextError
        )
    with open(path, "rb") as handle:
        head = handle.read(4)
    for bom, name in BOMS:
        if head.startswith(bom):
            return FoundEncoding(name, True, 0, None, evidence="its byte order mark")
    has_bom = head.startswith(codecs.BOM_UTF8)
    wide = _wide_without_bom(path)
    if wide is not None:
        return FoundEncoding(
            wide, False, 0, None, evidence=f"NUL bytes where {wide} puts them around ASCII text"
        )
    scan = _scan_bytes(path)
    # A NUL byte in a field of a text export rejects that line; NULs all over are a binary file (or
    # UTF-16 without its BOM, which puts a NUL beside every ASCII character).
    if scan.nul_bytes * 100 > path.stat().st_size or scan.nul_lines > max(10, scan.lines // 100):
        raise export_error(
            path,
            f"holds {scan.nul_bytes:,} NUL bytes on {scan.nul_lines:,} of {scan.lines:,} lines, so it is a "
            "binary file, not CSV text",
            line=scan.first_nul_line,
            setting=f"{SETTING_PREFIX}ENCODING={_utf16_by_nul_position(path)} if it is UTF-16 text without a "
            "byte order mark",
            kind=NotCsvTextError,
        )
    found = {"line_ends": scan.line_ends, "cr_line_ends": scan.cr, "nul_lines": scan.nul_lines}
    if scan.utf8_ok:
        name = "utf-8-sig" if has_bom else "utf-8"
        return FoundEncoding(
            name,
            has_bom,
            scan.non_ascii,
            scan.lines,
            **found,
            evidence="valid UTF-8",
            unicode_tidy_possible=_may_need_unicode_tidy(scan.high_bytes, "utf-8"),
        )
    as_utf8 = [e for e in scan.evidence if _is_utf8(e.text)]
    others = [e for e in scan.evidence if not _is_utf8(e.text)] or scan.evidence
    code_page, why = decide_code_page(path, others, candidates)
    if as_utf8 and not utf8_lines:
        # Two exports pasted together, or one edited in another program: any single encoding turns one
        # part into mojibake (`MÃ¼ller`).
        raise export_error(
            path,
            f"lines are in two encodings: {len(as_utf8)} of the first {len(scan.evidence)} with non-ASCII "
            f"text are UTF-8 (line {', '.join(str(e.line) for e in as_utf8[:5])}), the others {code_page} "
            f"(line {', '.join(str(e.line) for e in others[:5])})",
            line=others[0].line,
            setting=f"{SETTING_PREFIX}UTF8_LINES=true to read each UTF-8 line as UTF-8 and the rest as "
            f"{code_page}",
        )
    if as_utf8:
        why += f"; {len(as_utf8)} UTF-8 line(s) read as UTF-8 (UTF8_LINES)"
    # A single-byte code page maps the newline byte to the newline, so the UTF-8 copy has as many lines.
    # No candidate uses the LF or CR byte inside a character (multi-byte trail bytes start at 0x30), so
    # the UTF-8 copy has as many lines.
    return FoundEncoding(
        code_page,
        has_bom,
        scan.non_ascii,
        scan.lines,
        **found,
        evidence=why,
        utf8_lines=bool(as_utf8),
        unicode_tidy_possible=bool(as_utf8) or _may_need_unicode_tidy(scan.high_bytes, code_page),
    )


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


def _line_by_line(data: bytes, encoding: str) -> str:
    """`data` (whole lines) decoded line by line: as UTF-8 where a line is valid UTF-8, else in
    `encoding` (strict)."""
    out = []
    for line in data.splitlines(keepends=True):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode(encoding))
    return "".join(out)


def transcode_to_utf8(
    source: Path, target: Path, encoding: str, backslash_quotes: bool = False, utf8_lines: bool = False
) -> Transcoded:
    """Write `source` as UTF-8 without a BOM to `target`, chunk by chunk (bounded memory), every line end
    as LF and a NUL byte as NUL_MARK (Polars reads lines at LF, and a NUL would end its line reader's
    cells); with `utf8_lines`, each line valid as UTF-8 is read as UTF-8, the others in `encoding`.

    A byte the codec cannot decode raises ExportError naming its line and the encoding setting.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    pending = b""  # with `utf8_lines`: the last, unfinished line of the chunks read so far

    def decode(chunk: bytes, final: bool = False) -> str:
        nonlocal pending
        if not utf8_lines:
            return decoder.decode(chunk, final)
        data = pending + chunk
        cut_at = len(data) if final else data.rfind(b"\n") + 1
        pending = data[cut_at:]
        return _line_by_line(data[:cut_at], encoding)

    lines_before = 0
    held = ""
    nul_bytes = 0
    with open(target, "wb") as out:
        first = True
        for chunk in _chunks(source):
            try:
                text = held + decode(chunk)
            except UnicodeDecodeError as error:
                line = lines_before + chunk.count(b"\n", 0, error.start) + 1
                start = chunk.rfind(b"\n", 0, error.start) + 1
                end = chunk.find(b"\n", error.start)
                text = chunk[start : end if end >= 0 else len(chunk)]
                raise export_error(
                    source,
                    f"byte {chunk[error.start : error.start + 1]!r} is not {encoding} text",
                    line=line,
                    seen=chunk[max(0, error.start - 20) : error.start + 20].decode(encoding, "replace"),
                    setting=encoding_advice([EvidenceLine(line, text)]),
                ) from error
            lines_before += chunk.count(b"\n")
            if first:
                text = text.removeprefix("\ufeff")
                first = False
            # A CR or a backslash at a chunk's end waits for the next chunk's first character.
            held = text[len(text.rstrip("\\")) :] or ("\r" if text.endswith("\r") else "")
            nul_bytes += text.count("\x00")
            out.write(_normalised_text(text[: len(text) - len(held)], backslash_quotes).encode("utf-8"))
        out.write(_normalised_text(held + decode(b"", final=True), backslash_quotes).encode("utf-8"))
    return Transcoded(target, nul_bytes)
