"""The `Export` object: one opened file, its resolved dialect and header, and its records as a lazy frame
of text; `open_export` detects the dialect and opens it."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from sales_serving.contract.export.dates import (
    DATE_PARTS,
    EXCEL_SERIAL,
    decide_date_order,
    decide_excel_system,
)
from sales_serving.contract.export.dialect import Dialect, tidy_text, unicode_tidy_needed
from sales_serving.contract.export.encoding import (
    BOMS,
    FoundEncoding,
    detect_encoding,
    detect_quote_escape,
    transcode_to_utf8,
)
from sales_serving.contract.export.errors import NotCsvTextError, cut, export_error
from sales_serving.contract.export.header import (
    Header,
    detect_delimiter,
    ends_in_empty_field,
    find_header,
    head_lines,
    read_header,
    split_fields,
)
from sales_serving.contract.export.lines import LINE, TEXT, Structure, check_lines, read_lines, write_repaired
from sales_serving.contract.export.numbers import detect_number_format
from sales_serving.contract.export.settings import ExportLayout, ExportReading


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
        header_line: int = 1,
        nul_lines: int = 0,
    ) -> None:
        self.path, self.text_path, self.dialect, self.header = path, text_path, dialect, header
        self.layout, self.reading, self.work_dir = layout, reading, work_dir
        self.header_line = header_line  # 1-based line of the header; report titles may sit above it
        self._nul_lines = nul_lines
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
            self._line_count = int(
                read_lines(self.text_path).select(pl.len()).collect(engine="streaming").item()
            )
        return self._line_count

    def looks_well_formed(self, rows_parsed: int, last_column_nulls: int) -> bool:
        """True when a full parse with the header's width met one record per line and never a short one:
        then no line is malformed and `structure()` need not run. Any doubt returns False."""
        return (
            rows_parsed == self.line_count() - self.header_line
            and last_column_nulls == 0
            and not self._nul_lines
        )

    def structure(self) -> Structure:
        """Check every line (`check_lines`). Malformed and blank lines are set aside and `scan()` then
        reads the rest from a repaired copy."""
        if self._structure is None:
            check = check_lines(
                self.path,
                self.text_path,
                self.dialect.delimiter,
                self.header.names,
                self.line_count(),
                self.header_line,
            )
            self._structure = check.structure
            if check.skipped or check.continuation:
                target = self.work_dir / "export_repaired.csv"
                self._repaired = write_repaired(self.text_path, target, self.dialect.delimiter, check)
        return self._structure

    # -- records ------------------------------------------------------------------------------------------

    def scan(self, normalise: bool = True) -> pl.LazyFrame:
        """Records as text: LINE (UInt32) and the header's columns under their canonical names, unnamed
        columns dropped; with `normalise`, text cells trimmed and missing when empty or a null token
        (number cells are left to their parsers).

        Before `structure()` has run this assumes the file is well formed (check with
        `looks_well_formed`); after it, malformed and blank lines are left out.
        """
        names = list(self.header.names)
        if self.line_count() <= self.header_line:  # Polars finds no columns in a header-only file
            frame = pl.LazyFrame(schema={LINE: pl.UInt32, **dict.fromkeys(names, pl.String)})
            return frame.drop(list(self.header.unnamed))
        common = {
            "separator": self.dialect.delimiter,
            "infer_schema": False,
            "has_header": False,
            "skip_lines": 1,
            "raise_if_empty": False,  # a header-only file has no records; callers say so
            "glob": False,  # the export's name may hold `[`, `*` or `?`
        }
        if self._repaired is not None:
            frame = pl.scan_csv(self._repaired, new_columns=[LINE, *names], **common).with_columns(
                pl.col(LINE).cast(pl.UInt32)
            )
        else:
            common["skip_lines"] = self.header_line
            frame = pl.scan_csv(
                self.text_path,
                new_columns=names,
                row_index_name=LINE,
                row_index_offset=self.header_line + 1,
                **common,
            )
        if self.header.unnamed:
            frame = frame.drop(list(self.header.unnamed))
        if normalise:
            # Number columns are trimmed by their parsers (`number_value`, `integer_value`).
            text_columns = [c for c in names if c not in self.header.unnamed and c not in self.layout.numeric]
            frame = self.with_normalised(frame, text_columns)
        return frame

    def normalised(self, column: str) -> pl.Expr:
        """A cell trimmed (NBSP too) and, when the file has non-ASCII text, in Unicode NFC with invisible
        format characters removed; in a text column, empty or a null token is missing."""
        trimmed = tidy_text(pl.col(column), self.dialect)
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
        trimmed = frame.with_columns(tidy_text(pl.col(c), self.dialect) for c in columns)
        text = [c for c in columns if c not in self.layout.numeric]
        return trimmed.with_columns(self._tokens_missing(c, pl.col(c)) for c in text)

    def sample(self) -> pl.DataFrame:
        """The first `reading.sample_rows` well-formed records (normalised), read with Python's csv module
        so a malformed line among them is skipped, not fatal."""
        rows: list[list[str]] = []
        lines: list[int] = []
        width = self.header.width
        with open(self.text_path, encoding="utf-8", newline="") as handle:
            for _ in range(self.header_line):
                handle.readline()
            reader = csv.reader(handle, delimiter=self.dialect.delimiter)
            line = self.header_line + 1
            try:
                for record in reader:
                    if len(record) == width:
                        rows.append(record)
                        lines.append(line)
                    line = self.header_line + reader.line_num + 1
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
        decision = decide_date_order(self.path, pairs, self.layout, self.reading.dialect.date_order)
        self.dialect.date_order = decision.value
        self.dialect.evidence["date_order"] = decision.evidence
        system = decide_excel_system(pairs, self.reading.dialect.excel_date_system)
        self.dialect.excel_date_system = int(system.value)
        self.dialect.evidence["excel_date_system"] = system.evidence
        text = pl.col("text").str.strip_chars()
        kinds = pairs.select(
            text.str.extract(DATE_PARTS.pattern, 3).str.len_chars().eq(2).sum().alias("two_digit_years"),
            text.str.contains(EXCEL_SERIAL).sum().alias("excel_day_numbers"),
        ).row(0, named=True)
        self.dialect.evidence["date_kinds"] = (
            f"{kinds['two_digit_years'] or 0} distinct date(s) with a two-digit year, "
            f"{kinds['excel_day_numbers'] or 0} as Excel day numbers"
        )
        return decision.value

    def date_pairs(self, frame: pl.LazyFrame) -> pl.DataFrame:
        """Distinct (date text, month text) pairs of `frame` with the first line each occurs on."""
        date, names = self.layout.date_column, frame.collect_schema().names()
        month, year = (
            pl.col(c) if c and c in names else pl.lit(None, pl.String)
            for c in (self.layout.month_column, self.layout.year_column)
        )
        return (
            frame.group_by(pl.col(date).alias("text"), month.alias("month"), year.alias("year"))
            .agg(pl.col(LINE).min().alias("line"))
            .filter(pl.col("text").is_not_null())
            .collect(engine="streaming")
        )


def _find_encoding(path: Path, reading: ExportReading) -> FoundEncoding:
    """The encoding detected from the bytes, or the one settings name (then nothing is counted here)."""
    name = reading.dialect.encoding
    if not name:
        return detect_encoding(path, reading.candidate_encodings, bool(reading.dialect.utf8_lines))
    with open(path, "rb") as handle:
        head = handle.read(4)
    has_bom = head.startswith((codecs.BOM_UTF8, *(bom for bom, _ in BOMS)))
    return FoundEncoding(
        codecs.lookup(name).name, has_bom, 0, None, utf8_lines=bool(reading.dialect.utf8_lines)
    )


def open_export(path: Path, layout: ExportLayout, reading: ExportReading, work_dir: Path) -> Export:
    """Detect the dialect of the export at `path` (encoding, line ends, where the header is, delimiter,
    header, number format) and return the opened `Export`. A UTF-8 copy is written to `work_dir` when
    Polars cannot read the file as it is (not plain UTF-8, a CR alone as line end, a NUL byte).

    Raises NotCsvTextError (empty or binary), MissingColumnsError, or ExportError for anything the file
    cannot settle; every message is one line naming the file and the setting to change.
    """
    path = Path(path)
    override = reading.dialect
    found = _find_encoding(path, reading)
    text_path, nul_lines = path, found.nul_lines
    escape, escape_line = detect_quote_escape(path, found.encoding)
    escape = override.quote_escape or escape
    # A file read with an encoding from settings goes through the strict decoder too, which names the
    # first line the encoding cannot read.
    if found.needs_copy or override.encoding or escape == "backslash":
        copy = transcode_to_utf8(
            path, work_dir / "export_utf8.csv", found.encoding, escape == "backslash", found.utf8_lines
        )
        text_path, nul_lines = copy.path, max(nul_lines, copy.nul_bytes)
    lines = head_lines(text_path)
    place = find_header(path, lines, layout, override.delimiter, override.header_line)
    header_text = lines[place.index] if lines else ""
    if not header_text.strip():
        raise export_error(
            path,
            "the first line is empty; expected the header row",
            line=place.index + 1,
            kind=NotCsvTextError,
        )
    line = place.index + 1
    delimiter = override.delimiter or place.delimiter or detect_delimiter(path, header_text, layout, line)
    fields = split_fields(header_text, delimiter)
    if fields[-1].strip() and ends_in_empty_field(lines[line : line + 200], delimiter, len(fields)):
        fields.append("")
    header = read_header(path, fields, layout, line)
    dialect = Dialect(
        encoding=found.encoding,
        has_bom=found.has_bom,
        delimiter=delimiter,
        two_digit_year_pivot=override.two_digit_year_pivot,
        non_ascii_bytes=found.non_ascii_bytes,
        date_order=override.date_order,
        line_ends=found.line_ends,
        lines_above_header=place.index,
        unicode_tidy=found.unicode_tidy_possible and unicode_tidy_needed(read_lines(text_path), TEXT),
        quote_escape=escape,
    )
    dialect.evidence["quote_escape"] = (
        "from settings"
        if override.quote_escape
        else f"a backslash-escaped quote on line {escape_line}"
        if escape_line
        else "no backslash-escaped quote in the first 64 KiB"
    )
    dialect.evidence["encoding"] = found.evidence
    dialect.evidence["delimiter"] = (
        "from settings"
        if override.delimiter
        else "the file's sep= line"
        if place.delimiter
        else "the header's names"
    )
    if place.index:
        dialect.evidence["header"] = f"line {line}: {place.title_lines} title line(s) above it skipped" + (
            ", after the sep= line" if place.delimiter else ""
        )
    export = Export(path, text_path, dialect, header, layout, reading, work_dir, found.lines, line, nul_lines)
    sample = export.sample()
    # Each distinct text once, at its first line: a repeat adds no vote (the first one was counted).
    numbers = {
        c: list(sample.select(LINE, c).drop_nulls().unique(c, keep="first", maintain_order=True).iter_rows())
        for c in (*layout.number_columns, *layout.integer_columns)
        if c in sample.columns
    }
    number_format = detect_number_format(path, numbers, reading)
    # Integers spelled as floats (`30.0`, `3E+01`) are looked for in the sample: parsing every integer
    # cell twice costs a third of the cleaning pass, so only a file that shows them pays it.
    floats = [t for c in layout.integer_columns for _, t in numbers.get(c, []) if re.search(r"[.,eE]", t)]
    dialect.integral_floats = bool(floats)
    if floats:
        dialect.evidence["integral_floats"] = f"integers written as floats, e.g. {cut(floats[0])}"
    dialect.decimal_mark = number_format.decimal_mark
    dialect.thousands_separator = number_format.thousands_separator
    dialect.currency_signs = number_format.currency_signs
    dialect.evidence["numbers"] = number_format.evidence
    return export
