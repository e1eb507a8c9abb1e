"""Cleaning rules for the sales export, as Polars expressions, the streaming run that applies them, and the
gates that stop a run whose export was evidently read wrong.

The export is read by the one reader (`sales_serving.contract.export`): dialect detected once, cells
trimmed, null tokens missing, numbers and dates parsed strictly. Every rule comes from `IngestSettings`.
Rows that cannot be used get a reason and go to a rejects file with their line number, malformed lines
too; exact duplicates are removed and counted; everything else is typed and written as Parquet partitioned
by YEAR. The CSV is scanned lazily and sunk in streaming passes, so memory stays bounded on large files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sales_assets.settings import IngestSettings
from sales_serving.contract.export import (
    LINE,
    Dialect,
    Export,
    finite,
    integer_value,
    number_reason,
    open_export,
    parse_dates,
    parsed_number,
)
from sales_serving.contract.publish import aside_prefix

HASH = "__hash"
RULE_KEY_CONFLICT = "order-line key repeated with other values"
REASON = "reason"
RULE = "rule"
SOURCE_LINE = "source_line"  # line of the file the rejected record starts on (the header is line 1)
RAW_LINE = "raw_line"  # the text of a malformed line
POSITIVE_COLUMNS = ("QUANTITYORDERED", "PRICEEACH")
PARQUET_ROW_GROUP_ROWS = 122_880  # DuckDB's own row-group size
DATE = "ORDERDATE"
RULE_MALFORMED = "malformed line"
RULE_DATE_RANGE = "ORDERDATE outside the configured range"
RULE_PERIOD = "ORDERDATE disagrees with YEAR_ID/MONTH_ID/QTR_ID"
RULE_NOT_A_DATE = "ORDERDATE not a date"
# What settles a rule that rejects most rows of a file: dates in a form the reader does not know.
RULE_ADVICE = {
    RULE_NOT_A_DATE: "set SALES_INGEST__EXTRA_DATE_FORMATS to the strptime format(s) the dates are written "
    "in (e.g. '[\"%Y%m%d\"]')",
}
# Rules whose every hit stops the run: such rows mean the dates are read wrong, not that one row is bad.
BLOCKING_RULES = (RULE_DATE_RANGE, RULE_PERIOD)
EXAMPLE_LINES = 3
DATE_PARTS = {"year": "YEAR_ID", "month": "MONTH_ID", "quarter": "QTR_ID"}  # ORDERDATE part -> its column
OUT_OF_RANGE = "__date_out_of_range"
# Distinct rows held at once when duplicate suspects are compared cell by cell (about 0.5 KiB each).
CONFIRM_GROUPS = 250_000
# The cells the record pass hashes to find duplicate suspects when the file has no order-line key
# (`IngestSettings.order_line_key`; with one, its cells are hashed: unique per row in a sales export, and
# the same hash finds key conflicts), with the date and the last column, which it reads anyway: nearly
# unique per row, and short, so far cheaper to parse and hash than every cell. Rows equal in every cell
# are equal in these, so no duplicate escapes; rows that only share these are told apart by the
# cell-by-cell comparison (see `duplicate_lines`).
KEY_COLUMNS = ("ORDERNUMBER", "ORDERLINENUMBER", "PRODUCTCODE")


class EmptyInputError(ValueError):
    """The file has a header but no data rows, or no usable row."""


@dataclass
class RuleCount:
    rows: int
    example_lines: list[int]


@dataclass
class CleanStats:
    rows_in: int = 0
    duplicates_removed: int = 0
    rows_rejected: int = 0  # malformed lines and key conflicts included
    key_conflicts: int = 0  # rows superseded by a later row with the same order-line key
    rows_malformed: int = 0
    rows_clean: int = 0
    rejects_by_rule: dict[str, RuleCount] = field(default_factory=dict)
    rows_by_year: dict[int, int] = field(default_factory=dict)
    absent_optional_columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    dialect: Dialect | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def balance(self) -> str:
        """`rows in = clean + rejected + duplicates`, with the numbers (it holds exactly)."""
        return (
            f"{self.rows_in:,} rows in = {self.rows_clean:,} clean + {self.rows_rejected:,} rejected "
            f"+ {self.duplicates_removed:,} duplicates"
        )


def open_source(path: Path, settings: IngestSettings, work_dir: Path) -> Export:
    """The export at `path` opened by the one reader with the ingest layout and reading rules."""
    return open_export(path, settings.layout(), settings.reading, work_dir)


def _typed_name(column: str) -> str:
    return f"__typed_{column}"


def with_typed_values(
    frame: pl.LazyFrame, columns: list[str], settings: IngestSettings, dialect: Dialect
) -> pl.LazyFrame:
    """`frame` with each numeric column parsed once, beside its text (null where the text is not a strict
    number): a number's finiteness is checked on its parsed column, as a streaming query would parse an
    expression used twice twice."""
    numbers = [c for c in settings.float_columns if c in columns]
    return frame.with_columns(
        *[integer_value(c, dialect).alias(_typed_name(c)) for c in settings.integer_columns if c in columns],
        *[parsed_number(c, dialect).alias(_typed_name(c)) for c in numbers],
    ).with_columns(finite(pl.col(_typed_name(c))).alias(_typed_name(c)) for c in numbers)


def date_lookup(pairs: pl.DataFrame, settings: IngestSettings, dialect: Dialect) -> pl.DataFrame:
    """Parsed value of each distinct ORDERDATE text with its year, month, quarter and whether it lies in
    the configured range: an export has few distinct dates and many rows, so every date rule runs once
    per distinct text instead of once per row."""
    frame = pairs.select(pl.col("text").alias(DATE)).unique()
    date = parse_dates(pl.col(DATE), dialect, settings.extra_date_formats)
    low = pl.lit(settings.min_order_date).str.to_datetime(time_unit="us")
    end = pl.lit(settings.max_order_date).str.to_datetime(time_unit="us") + pl.duration(days=1)
    return frame.with_columns(date.alias(_typed_name(DATE))).with_columns(
        *[
            getattr(pl.col(_typed_name(DATE)).dt, part)().cast(pl.Int64).alias(_typed_name(part))
            for part in DATE_PARTS
        ],
        ((pl.col(_typed_name(DATE)) < low) | (pl.col(_typed_name(DATE)) >= end)).alias(OUT_OF_RANGE),
    )


Problem = tuple[pl.Expr, str, pl.Expr]  # condition, rule (a stable name to count by), reason (with the value)


def problems(columns: list[str], settings: IngestSettings, dialect: Dialect) -> list[Problem]:
    """(condition, rule, reason) triples: a row meeting any condition cannot be used."""
    found: list[Problem] = []
    typed = {c: "whole number" for c in settings.integer_columns} | {
        c: "number" for c in settings.float_columns
    }
    for column, kind in typed.items():
        if column not in columns:
            continue
        raw, value = pl.col(column), pl.col(_typed_name(column))
        found.append((raw.is_null(), f"{column} blank", pl.lit(f"{column} is blank")))
        found.append(
            (
                raw.is_not_null() & value.is_null(),
                f"{column} not a {kind}",
                number_reason(column, dialect, kind),
            )
        )
        if column in POSITIVE_COLUMNS:
            found.append(
                (value <= 0, f"{column} not positive", pl.format(f"{column} {{}} is not positive", raw))
            )
        if column in settings.integer_ranges:
            low, high = settings.integer_ranges[column]
            found.append(
                (
                    (value < low) | (value > high),
                    f"{column} out of range",
                    pl.format(f"{column} {{}} is outside {low}..{high}", value),
                )
            )
    date = pl.col(_typed_name(DATE))
    found.append(
        (
            pl.col(DATE).is_not_null() & date.is_null(),
            RULE_NOT_A_DATE,
            pl.format(
                f"ORDERDATE '{{}}' is not a {dialect.date_order.replace('_', '-')} date"
                if dialect.date_order
                else "ORDERDATE '{}' is not a date",
                pl.col(DATE).str.slice(0, 40),
            ),
        )
    )
    found.append(
        (
            pl.col(OUT_OF_RANGE),
            RULE_DATE_RANGE,
            pl.format(
                f"ORDERDATE {{}} is outside {settings.min_order_date}..{settings.max_order_date} "
                "(SALES_INGEST__MIN_ORDER_DATE / MAX_ORDER_DATE)",
                date.dt.date(),
            ),
        )
    )
    periods = [(part, column) for part, column in DATE_PARTS.items() if column in columns]
    if periods:
        disagree = pl.any_horizontal(
            [pl.col(_typed_name(part)) != pl.col(_typed_name(column)) for part, column in periods]
        )
        found.append(
            (
                disagree,
                RULE_PERIOD,
                pl.format(
                    "ORDERDATE {} disagrees with " + ", ".join(f"{column} {{}}" for _, column in periods),
                    date.dt.date(),
                    *[pl.col(column) for _, column in periods],
                ),
            )
        )
    for column in settings.required_columns:
        if column not in typed and column not in settings.fill_unknown_columns:
            found.append((pl.col(column).is_null(), f"{column} blank", pl.lit(f"{column} is blank")))
    return found


def clean_columns(columns: list[str], settings: IngestSettings) -> list[pl.Expr]:
    """The clean layer's columns for usable rows: typed values, fills, YEAR and MONTH."""
    exprs: list[pl.Expr] = []
    typed = {*settings.integer_columns, *settings.float_columns, DATE}
    for column in columns:
        if column in settings.drop_columns:
            continue
        if column in typed:
            exprs.append(pl.col(_typed_name(column)).alias(column))
        elif column in settings.fill_unknown_columns:
            exprs.append(pl.col(column).fill_null(settings.fill_value))
        else:
            exprs.append(pl.col(column))
    exprs += [pl.col(_typed_name("year")).alias("YEAR"), pl.col(_typed_name("month")).alias("MONTH")]
    return exprs


def value_columns(frame: pl.LazyFrame) -> list[str]:
    return [c for c in frame.collect_schema().names() if c != LINE]


@dataclass
class RecordPass:
    """What one streaming pass over the records as written finds (see `record_pass`)."""

    rows: int
    last_nulls: int  # rows whose last column is empty: a sign of short lines (`Export.looks_well_formed`)
    date_pairs: pl.DataFrame  # distinct (date, month, year texts; first line), as `Export.date_pairs`
    # LINE and a 64-bit hash (HASH) of each row's order-line key cells as written, or of its
    # `key_columns` when the file has no order-line key: equal rows hash equal, and so do rows that
    # repeat an order-line key as written.
    hashes: pl.DataFrame | None
    repeated: bool = True  # whether some hash occurs twice (False: no duplicates and no key conflicts)


def row_hash(columns: list[str]) -> pl.Expr:
    """A 64-bit hash of the cells of `columns`: each cell hashed with its own seed, the hashes added
    (wrapping). Rows equal in those cells hash equal; about half the CPU of hashing them as a struct."""
    return pl.sum_horizontal([pl.col(c).hash(seed=i) for i, c in enumerate(columns)]).alias(HASH)


def key_columns(values: list[str], date: str | None, order_key: Sequence[str] = ()) -> list[str]:
    """The cells the record pass hashes for duplicate and key-conflict suspects: the cells of the
    order-line key `order_key` the file has, if any, else `KEY_COLUMNS`, the date and the last column when the file has them
    (every column when it has none of `KEY_COLUMNS`)."""
    present = [c for c in order_key if c in values]
    if present:
        return present
    keys = [c for c in KEY_COLUMNS if c in values]
    if not keys:
        return values
    return list(dict.fromkeys([*keys, *(c for c in (date, values[-1]) if c in values)]))


def record_pass(export: Export, with_hashes: bool = True, order_key: Sequence[str] = ()) -> RecordPass:
    """One streaming pass over the records as written: row count, short-line sign, the distinct
    (date, month, year) texts and, `with_hashes`, a hash per row of its key cells (`key_columns`: the
    order-line key `order_key` when the file has it) for the exact-duplicate check (`duplicate_lines`
    confirms suspects on every cell) and the key-conflict check (`key_conflicts`).

    Held in memory per row: the line, the hash and three dictionary codes (the date, month and year texts
    as Polars categoricals), about 25 bytes; the texts themselves only once per distinct value. The date is
    trimmed and its null tokens applied on the distinct pairs, not on every row. Raises PolarsError when
    the file does not parse with the header's width (the caller then runs `Export.structure`).
    """
    frame = export.scan(normalise=False)
    values = value_columns(frame)
    date, month, year = export.layout.date_column, export.layout.month_column, export.layout.year_column
    month_expr = pl.col(month) if month in values else pl.lit(None, pl.String)
    year_expr = pl.col(year) if year in values else pl.lit(None, pl.String)
    selected = [
        pl.col(LINE),
        pl.col(values[-1]).is_null().alias("__last_null"),
        pl.col(date).cast(pl.Categorical).alias("text"),
        month_expr.cast(pl.Categorical).alias("month"),
        year_expr.cast(pl.Categorical).alias("year"),
    ]
    if with_hashes:
        # One hash finds both kinds of suspects: an exact repeat repeats its order-line key too.
        selected.append(row_hash(key_columns(values, date, order_key)))
    rows = frame.select(selected).collect(engine="streaming")
    # Grouped by the streaming engine: Polars' in-memory group_by on three categorical keys row-encodes
    # every row (measured at 5M rows: +400 MiB peak and 20x the time of the streaming group_by).
    distinct = (
        rows.lazy()
        .group_by("text", "month", "year")
        .agg(pl.col(LINE).min())
        .select(
            pl.col(LINE),
            pl.col("text").cast(pl.String).alias(date),
            pl.col("month").cast(pl.String).alias(month or "__month"),
            pl.col("year").cast(pl.String).alias(year or "__year"),
        )
        .collect(engine="streaming")
    )
    return RecordPass(
        rows=rows.height,
        last_nulls=int(rows["__last_null"].sum()),
        date_pairs=export.date_pairs(distinct.lazy().with_columns(export.normalised(date))),
        hashes=rows.select(LINE, HASH) if with_hashes else None,
        repeated=with_hashes and rows.height > 1 and _any_repeat(rows[HASH]),
    )


def _any_repeat(hashes: pl.Series) -> bool:
    """Whether some value of `hashes` occurs twice (a sort, several times cheaper than `is_duplicated`
    on millions of rows; most exports have no repeat at all)."""
    import numpy as np  # only here: loading the reader (or the analytics group) imports no numeric stack

    ordered = np.sort(hashes.to_numpy())
    return bool((ordered[1:] == ordered[:-1]).any())


def duplicate_lines(
    source: pl.LazyFrame, hashes: pl.DataFrame, max_groups: int = CONFIRM_GROUPS
) -> pl.Series:
    """Line numbers of exact repeats of an earlier row of `source` (its cells as written), given every
    row's hash from `record_pass` (of some of its cells or all: rows equal in every cell hash equal).

    Rows whose hash repeats are compared on every value, so a hash collision between different rows is
    never taken for a duplicate. The comparison groups those rows by all their cells in a streaming pass,
    in as many slices of the hash space as it takes to hold at most `max_groups` distinct rows at a time:
    memory stays bounded whatever the share of duplicates (a file appended to itself included). When more
    than `max_groups` rows repeat a hash, they are first hashed again on every cell (one more pass) so
    that a slice of the hash space holds as many distinct rows as distinct hashes.
    """
    if hashes.height < 2 or not _any_repeat(hashes[HASH]):
        return pl.Series(LINE, [], dtype=pl.UInt32)
    suspects = hashes.filter(pl.col(HASH).is_duplicated())
    values = value_columns(source)
    if suspects.height > max_groups:
        suspects = (
            source.filter(pl.col(LINE).is_in(suspects[LINE].implode()))
            .select(LINE, row_hash(values))
            .collect(engine="streaming")
        )
        suspects = suspects.filter(pl.col(HASH).is_duplicated())
        if suspects.is_empty():
            return pl.Series(LINE, [], dtype=pl.UInt32)
    slices = -(-suspects[HASH].n_unique() // max_groups)
    repeats: list[pl.Series] = []
    for part in range(slices):
        lines = suspects.filter(pl.col(HASH) % slices == part)[LINE]
        firsts = (
            source.filter(pl.col(LINE).is_in(lines.implode()))
            .group_by(values)
            .agg(pl.col(LINE).min())
            .select(LINE)
            .collect(engine="streaming")[LINE]
        )
        repeats.append(lines.filter(~lines.is_in(firsts.implode())))
    return pl.concat(repeats).sort()


def checked_record_pass(
    export: Export, with_hashes: bool = True, order_key: Sequence[str] = ()
) -> RecordPass:
    """`record_pass` over the well-formed records: the line-by-line check (`Export.structure`) runs only
    when the fast parse shows doubt (a parser error, fewer records than lines, short lines)."""
    try:
        found = record_pass(export, with_hashes, order_key)
        if export.looks_well_formed(found.rows, found.last_nulls):
            return found
    except pl.exceptions.PolarsError:
        pass  # too many or too few fields, a broken quote: the line check below finds which lines
    export.structure()
    return record_pass(export, with_hashes, order_key)


def _read_records(
    export: Export, order_key: Sequence[str], found: RecordPass | None = None
) -> tuple[pl.LazyFrame, RecordPass, pl.Series]:
    """The records frame (cells as written), the record pass (`found` when given) and the lines of exact
    duplicates."""
    # Duplicates are exact: judged on the cells as written, which also spares that pass the trimming.
    if found is None or found.hashes is None:
        found = checked_record_pass(export, order_key=order_key)
    source = export.scan(normalise=False)
    if not found.repeated:  # no hash occurs twice: no duplicate (nor key conflict) to look for
        return source, found, pl.Series(LINE, [], dtype=pl.UInt32)
    return source, found, duplicate_lines(source, found.hashes)


CONFLICTS_SCHEMA = {LINE: pl.UInt32, "key": pl.String, "winner": pl.UInt32}  # see `key_conflicts`


class KeyConflictError(ValueError):
    """Rows share an order-line key but differ, and `ingest.key_conflicts` is `stop`."""


def key_conflicts(
    source: pl.LazyFrame, hashes: pl.DataFrame, repeats: pl.Series, settings: IngestSettings, path: Path
) -> pl.DataFrame:
    """Rows superseded by a later row with the same order-line key (`settings.order_line_key`, trimmed)
    but other values: LINE, the key as text and the line that wins (the last in file order). Exact
    repeats (`repeats`) are duplicates, not conflicts. Raises KeyConflictError under the `stop` policy.

    Suspects come from the record pass's hashes of the order-line key cells as written (`hashes`, from
    `record_pass` with `order_key`); only their rows are read again, so a file without a repeated key
    costs one in-memory check."""
    empty = pl.DataFrame(schema=CONFLICTS_SCHEMA)
    present = [c for c in settings.order_line_key if c in source.collect_schema().names()]
    if not present or hashes.height < 2:
        return empty
    kept = hashes.filter(~pl.col(LINE).is_in(repeats.implode()))
    if not _any_repeat(kept[HASH]):
        return empty
    suspects = kept.filter(pl.col(HASH).is_duplicated())[LINE]
    key_text = pl.concat_str([pl.col(c).str.strip_chars() for c in present], separator="/")
    groups = (
        source.filter(pl.col(LINE).is_in(suspects.implode()))
        .select(LINE, key_text.alias("key"))
        .collect()
        .with_columns(pl.col(LINE).max().over("key").alias("winner"))
        .filter(pl.col(LINE) != pl.col("winner"))
        .sort(LINE)
    )
    if groups.height and settings.key_conflicts == "stop":
        first = groups.row(0, named=True)
        raise KeyConflictError(
            f"{path}: line {first[LINE]}: {'/'.join(present)} {first['key']} is repeated on line "
            f"{first['winner']} with other values ({groups.height:,} such row(s)); set "
            "SALES_INGEST__KEY_CONFLICTS=last_wins to keep the last line of each key"
        )
    return groups


@dataclass
class Inspected:
    """An export opened and passed over once (`open_source`, `checked_record_pass` with the order-line
    key), which `clean_to_parquet` takes instead of opening and parsing the file again. `work` holds the
    export's temp copies (a UTF-8 copy, a repaired copy) and is removed by `close`."""

    export: Export
    records: RecordPass
    work: tempfile.TemporaryDirectory

    def close(self) -> None:
        self.work.cleanup()


def inspect_export(path: Path, settings: IngestSettings, work_root: Path) -> Inspected:
    """Open the export at `path` and run the record pass `clean_to_parquet` needs (row count, distinct
    dates, the hashes for duplicates and key conflicts), the line check only on doubt; the date order is
    resolved. Temp copies go to a folder under `work_root`, removed by `Inspected.close` (and on error).
    Raises what `open_source` and `checked_record_pass` raise."""
    # An owned name (host, boot, pid): the copies may outlive the run that made them (`raw_csv` hands them to
    # `clean_parquet` of the next run in the same process), and the sweep removes an unowned temp older
    # than every live run.
    work = tempfile.TemporaryDirectory(dir=work_root, prefix=aside_prefix(work_root / "inspected", "tmp"))
    try:
        export = open_source(path, settings, Path(work.name))
        records = checked_record_pass(export, order_key=settings.order_line_key)
        export.resolve_date_order(records.date_pairs)
    except BaseException:
        work.cleanup()
        raise
    return Inspected(export, records, work)


def clean_to_parquet(
    csv_path: Path,
    parquet_dir: Path,
    rejects_path: Path,
    settings: IngestSettings,
    work_dir: Path | None = None,
    inspected: Inspected | None = None,
) -> CleanStats:
    """Clean the export at `csv_path` (any dialect the reader knows) into hive-partitioned Parquet in
    `parquet_dir` and a rejects file (one row per rejected record or malformed line, with its line).

    Both outputs are written to the paths given, which the caller stages and swaps into place; temp copies
    go to `work_dir` (default: beside `parquet_dir`). The CSV is read in streaming passes: one for the
    distinct dates and a hash of each row's key cells, one comparing rows whose hash repeats (only when
    some do), one that writes the clean rows, and one for the rejected rows (only when there are some).
    With `inspected` (`inspect_export` of the same file with the same settings), its opened export and
    record pass are used: the file is not opened or passed over again for them.
    Raises MissingColumnsError, EmptyInputError, ExportError, KeyConflictError.
    """
    started = time.perf_counter()
    # Polars reads this knob from the environment only; it has no scan_csv parameter.
    os.environ["POLARS_CSV_CHUNK_SIZE"] = str(settings.csv_chunk_bytes)
    parquet_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir or parquet_dir.parent) as work:
        if inspected is not None:
            export, records = inspected.export, inspected.records
        else:
            export, records = open_source(Path(csv_path), settings, Path(work)), None
        try:
            stats = _clean_records(export, parquet_dir, rejects_path, settings, started, records)
        except pl.exceptions.PolarsError:
            if export.checked:
                raise
            # Only a parse of every column refuses a line with too many fields, and the record pass
            # parses a few: the writing pass met one. The line check sets such lines aside; start again.
            export.structure()
            shutil.rmtree(parquet_dir)
            parquet_dir.mkdir(parents=True)
            stats = _clean_records(export, parquet_dir, rejects_path, settings, started)
    stats.seconds["clean_and_write"] = round(time.perf_counter() - started - sum(stats.seconds.values()), 3)

    rejects = pl.scan_parquet(rejects_path)
    stats.rows_rejected = rejects.select(pl.len()).collect().item()
    stats.rejects_by_rule = rejects_by_rule(rejects)
    if stats.rows_rejected == stats.rows_in - stats.duplicates_removed:
        raise EmptyInputError(
            f"{csv_path}: none of its {stats.rows_in:,} rows is usable; first reasons: "
            + summarise_rules(stats.rejects_by_rule, 3)
        )
    return stats


def _clean_records(
    export: Export,
    parquet_dir: Path,
    rejects_path: Path,
    settings: IngestSettings,
    started: float,
    records: RecordPass | None = None,
) -> CleanStats:
    """The passes of `clean_to_parquet` over an opened export (and its record pass, when already run).
    Raises PolarsError when a line does not parse with the header's width and `Export.structure` has not
    run yet (the caller runs it)."""
    csv_path = export.path
    stats = CleanStats(dialect=export.dialect)
    stats.extra_columns = list(export.header.extra)
    stats.absent_optional_columns = list(export.header.absent)
    source, records, repeats = _read_records(export, settings.order_line_key, records)
    malformed = export.structure().malformed if export.checked else None
    stats.rows_malformed = malformed.height if malformed is not None else 0
    stats.rows_in = records.rows + stats.rows_malformed
    if stats.rows_in == 0:
        raise EmptyInputError(f"{csv_path}: has a header but no data rows")
    stats.duplicates_removed = repeats.len()
    conflicts = (
        key_conflicts(source, records.hashes, repeats, settings, csv_path)
        if records.repeated
        else pl.DataFrame(schema=CONFLICTS_SCHEMA)
    )
    stats.key_conflicts = conflicts.height
    if not settings.keep_extra_columns and stats.extra_columns:
        source = source.drop(stats.extra_columns)
    source = source.with_columns(
        pl.lit(None, dtype=pl.String).alias(c) for c in stats.absent_optional_columns
    )
    export.resolve_date_order(records.date_pairs)
    dates = date_lookup(records.date_pairs, settings, export.dialect)
    stats.seconds["read_duplicates_and_dates"] = round(time.perf_counter() - started, 3)

    # Text cells trimmed and null tokens applied (`Export.normalised`) where they are written or checked;
    # a dropped column's only for the rejected rows that show it.
    text = [c for c in value_columns(source) if c not in export.layout.numeric]
    later = [c for c in text if c in settings.drop_columns and c not in settings.required_columns]
    source = export.with_normalised(source, [c for c in text if c not in later])
    columns = value_columns(source)
    found = problems(columns, settings, export.dialect)
    every_row = source
    if not repeats.is_empty() or conflicts.height:
        left_out = pl.concat([repeats, conflicts[LINE]])
        source = source.filter(~pl.col(LINE).is_in(left_out.implode()))
    judged = with_typed_values(
        source.join(dates.lazy(), on=DATE, how="left", maintain_order="left"),
        columns,
        settings,
        export.dialect,
    ).with_columns(pl.any_horizontal([condition for condition, _, _ in found]).fill_null(True).alias("__bad"))
    # Selected before filtered: the filter then moves only the columns written.
    usable = judged.select(*clean_columns(columns, settings), "__bad").filter(~pl.col("__bad")).drop("__bad")
    # Reasons are spelled out only for the (few) rejected rows.
    reasons = pl.concat_list([pl.when(condition).then(reason) for condition, _, reason in found])
    rules = pl.concat_list([pl.when(condition).then(pl.lit(rule)) for condition, rule, _ in found])
    rejected = judged.filter(pl.col("__bad")).select(
        pl.col(LINE).alias(SOURCE_LINE),
        *[export.normalised(c) if c in later else pl.col(c) for c in columns],
        reasons.list.drop_nulls().list.join("; ").alias(REASON),
        rules.list.drop_nulls().list.join("; ").alias(RULE),
        pl.lit(None, dtype=pl.String).alias(RAW_LINE),
    )
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    usable.sink_parquet(
        pl.PartitionBy(parquet_dir, key="YEAR", include_key=False),
        # Bounded row groups keep every later reader's memory bounded too.
        row_group_size=PARQUET_ROW_GROUP_ROWS,
        mkdir=True,
        engine="streaming",
        # Every column is parsed, dropped ones too, so that a line with too many fields is refused here
        # (the record pass parses only the few it needs). Columns without a name are left out, as the
        # record pass always did.
        optimizations=pl.QueryOptFlags(projection_pushdown=bool(export.header.unnamed) or export.checked),
    )
    stats.rows_by_year = rows_by_year(parquet_dir)
    stats.rows_clean = sum(stats.rows_by_year.values())
    # Most exports reject few rows or none: the file is read again for them only when some are (one
    # streaming plan with two sinks would still parse the CSV twice).
    judged_rejects = records.rows - stats.duplicates_removed - stats.key_conflicts - stats.rows_clean
    parts = [rejected if judged_rejects else rejected.head(0)]
    if conflicts.height:
        key_names = "/".join(c for c in settings.order_line_key if c in columns)
        parts.append(
            every_row.join(conflicts.lazy(), on=LINE, how="inner").select(
                pl.col(LINE).alias(SOURCE_LINE),
                *[export.normalised(c) if c in later else pl.col(c) for c in columns],
                pl.format(
                    f"{key_names} {{}} is repeated with other values on line {{}}, which wins "
                    "(SALES_INGEST__KEY_CONFLICTS=last_wins)",
                    "key",
                    "winner",
                ).alias(REASON),
                pl.lit(RULE_KEY_CONFLICT).alias(RULE),
                pl.lit(None, dtype=pl.String).alias(RAW_LINE),
            )
        )
    if malformed is not None and malformed.height:
        parts.append(
            malformed.lazy().select(
                pl.col(LINE).alias(SOURCE_LINE),
                *[pl.lit(None, dtype=pl.String).alias(c) for c in columns],
                pl.col("reason").alias(REASON),
                pl.lit(RULE_MALFORMED).alias(RULE),
                pl.col("text").alias(RAW_LINE),
            )
        )
    pl.concat(parts).sink_parquet(rejects_path, engine="streaming")
    return stats


def rows_by_year(parquet_dir: Path) -> dict[int, int]:
    """Rows per YEAR partition of the clean layer at `parquet_dir` (empty when nothing was written)."""
    if not any(parquet_dir.rglob("*.parquet")):
        return {}
    by_year = pl.scan_parquet(parquet_dir, hive_partitioning=True).group_by("YEAR").len().sort("YEAR")
    return {int(y): int(n) for y, n in by_year.collect().iter_rows()}


def rejects_by_rule(rejects: pl.LazyFrame) -> dict[str, RuleCount]:
    """Rejected rows per rule (a row may break several), most frequent first, with example lines."""
    counted = (
        rejects.select(SOURCE_LINE, pl.col(RULE).str.split("; "))
        .explode(RULE)
        .group_by(RULE)
        .agg(pl.len().alias("rows"), pl.col(SOURCE_LINE).sort().head(EXAMPLE_LINES).alias("lines"))
        .sort(["rows", RULE], descending=[True, False])
        .collect()
    )
    return {rule: RuleCount(int(n), [int(x) for x in lines]) for rule, n, lines in counted.iter_rows()}


def summarise_rules(by_rule: dict[str, RuleCount], top: int = 5) -> str:
    """`rule: N rows (lines a, b, c)` for the most frequent rules, with the setting that settles a rule
    where RULE_ADVICE has one."""
    return "; ".join(
        f"{rule}: {count.rows:,} row(s) (line {', '.join(map(str, count.example_lines))})"
        + (f" ({RULE_ADVICE[rule]})" if rule in RULE_ADVICE else "")
        for rule, count in list(by_rule.items())[:top]
    )


def blocking_problems(stats: CleanStats, settings: IngestSettings) -> list[str]:
    """Why the run must stop before it replaces the last good outputs (empty when it may go on)."""
    found = []
    share = stats.rows_rejected / stats.rows_in if stats.rows_in else 0.0
    if share > settings.max_reject_share:
        found.append(
            f"{stats.rows_rejected:,} of {stats.rows_in:,} rows rejected ({share:.1%}), above "
            f"SALES_INGEST__MAX_REJECT_SHARE={settings.max_reject_share:g}; top reasons: "
            + summarise_rules(stats.rejects_by_rule)
        )
    advice = {
        # A date outside the window is a mistyped row (fix it) or a real date (widen the window); a
        # wrong date order or pivot shows up as a period disagreement on many rows, which the settings fix.
        RULE_DATE_RANGE: "fix those rows in the export, or set SALES_INGEST__MIN_ORDER_DATE / "
        f"SALES_INGEST__MAX_ORDER_DATE (now {settings.min_order_date}..{settings.max_order_date}) to "
        "include them if they are real",
        RULE_PERIOD: "the dates are read wrong or the export is: set "
        "SALES_INGEST__READING__DIALECT__DATE_ORDER (day_first or month_first) or "
        "SALES_INGEST__READING__DIALECT__TWO_DIGIT_YEAR_PIVOT, or fix those rows",
    }
    for rule in BLOCKING_RULES:
        if rule in stats.rejects_by_rule:
            count = stats.rejects_by_rule[rule]
            found.append(
                f"{rule} on {count.rows:,} row(s) (line {', '.join(map(str, count.example_lines))}): "
                + advice[rule]
            )
    return found
