"""Cleaning rules for the sales export, as Polars expressions, and the streaming run that applies them.

Every rule comes from `IngestSettings`. Rows that cannot be used get a reason and go to a rejects file;
exact duplicates are removed and counted; everything else is typed and written as Parquet partitioned by
YEAR. The CSV is scanned lazily and sunk in streaming passes, so memory stays bounded on large files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sales_assets.settings import SOURCE_COLUMNS, IngestSettings

ROW = "__row"  # 1-based data row number in the source file (the header is row 0)
HASH = "__hash"
REASON = "reason"
POSITIVE_COLUMNS = ("QUANTITYORDERED", "PRICEEACH")


class MissingColumnsError(ValueError):
    """The header lacks columns the pipeline requires."""


class EmptyInputError(ValueError):
    """The file has a header but no data rows."""


@dataclass
class CleanStats:
    rows_in: int = 0
    duplicates_removed: int = 0
    rows_rejected: int = 0
    rows_clean: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    rows_by_year: dict[int, int] = field(default_factory=dict)
    absent_optional_columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def check_header(columns: list[str], settings: IngestSettings, path: Path) -> None:
    """Raise one error naming the file and every required column that is missing."""
    missing = [c for c in settings.required_columns if c not in columns]
    if missing:
        raise MissingColumnsError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header has {', '.join(columns)}"
        )


def parse_order_date(column: str, settings: IngestSettings) -> pl.Expr:
    """The first of the configured formats that parses each value (configured format first)."""
    text = pl.col(column).str.strip_chars()
    formats = [settings.date_format, *settings.date_fallback_formats]
    return pl.coalesce([text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in formats])


def _number(column: str, dtype: pl.DataType) -> pl.Expr:
    as_float = pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
    if dtype == pl.Int64:
        # "30" and "30.0" are whole numbers; "30.5" is not a valid count.
        return pl.when(as_float == as_float.round(0)).then(as_float).cast(pl.Int64)
    return as_float


def rejection_reasons(columns: list[str], settings: IngestSettings) -> pl.Expr:
    """A `; `-joined list of why a row cannot be used; empty for a usable row."""
    checks: list[pl.Expr] = []
    typed = {c: pl.Int64 for c in settings.integer_columns} | {c: pl.Float64 for c in settings.float_columns}
    for column, dtype in typed.items():
        if column not in columns:
            continue
        raw = pl.col(column)
        checks.append(pl.when(raw.is_null()).then(pl.lit(f"{column} is blank")))
        kind = "whole number" if dtype == pl.Int64 else "number"
        checks.append(
            pl.when(raw.is_not_null() & _number(column, dtype).is_null()).then(
                pl.format(f"{column} '{{}}' is not a {kind}", raw)
            )
        )
        if column in POSITIVE_COLUMNS:
            checks.append(
                pl.when(_number(column, dtype) <= 0).then(pl.format(f"{column} {{}} is not positive", raw))
            )
    if "ORDERDATE" in columns:
        checks.append(
            pl.when(
                pl.col("ORDERDATE").is_not_null() & parse_order_date("ORDERDATE", settings).is_null()
            ).then(pl.format("ORDERDATE '{}' matches no configured date format", pl.col("ORDERDATE")))
        )
    for column in settings.required_columns:
        if column not in typed and column not in settings.fill_unknown_columns:
            checks.append(pl.when(pl.col(column).is_null()).then(pl.lit(f"{column} is blank")))
    return pl.concat_list(checks).list.drop_nulls().list.join("; ")


def typed_columns(columns: list[str], settings: IngestSettings) -> list[pl.Expr]:
    """Cast, fill and derive: the clean layer's columns for usable rows."""
    exprs: list[pl.Expr] = []
    for column in columns:
        if column in (ROW, HASH) or column in settings.drop_columns:
            continue
        if column in settings.integer_columns:
            exprs.append(_number(column, pl.Int64).alias(column))
        elif column in settings.float_columns:
            exprs.append(_number(column, pl.Float64).alias(column))
        elif column == "ORDERDATE":
            exprs.append(parse_order_date(column, settings).alias(column))
        elif column in settings.fill_unknown_columns:
            exprs.append(pl.col(column).fill_null(settings.fill_value))
        else:
            exprs.append(pl.col(column))
    date = parse_order_date("ORDERDATE", settings)
    exprs += [date.dt.year().cast(pl.Int64).alias("YEAR"), date.dt.month().cast(pl.Int64).alias("MONTH")]
    return exprs


def scan_source(csv_path: Path, settings: IngestSettings) -> tuple[pl.LazyFrame, CleanStats]:
    """Every column as a string, with the row number and a hash of the row's raw values."""
    columns = pl.scan_csv(csv_path, infer_schema=False, n_rows=0).collect_schema().names()
    columns = [c.strip() for c in columns]
    check_header(columns, settings, csv_path)
    stats = CleanStats()
    stats.extra_columns = [c for c in columns if c not in SOURCE_COLUMNS]
    frame = pl.scan_csv(
        csv_path,
        infer_schema=False,
        new_columns=columns,
        row_index_name=ROW,
        row_index_offset=1,
    )
    if not settings.keep_extra_columns and stats.extra_columns:
        frame = frame.drop(stats.extra_columns)
    stats.absent_optional_columns = [c for c in SOURCE_COLUMNS if c not in columns]
    frame = frame.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in stats.absent_optional_columns]
    )
    values = [c for c in frame.collect_schema().names() if c != ROW]
    return frame.with_columns(pl.struct(values).hash(seed=0).alias(HASH)), stats


def duplicate_rows(staged: Path) -> pl.Series:
    """Row numbers of exact repeats of an earlier row (hash match, then confirmed on every value)."""
    hashes = pl.scan_parquet(staged).select(ROW, HASH).collect()
    repeats = hashes.filter(~pl.col(HASH).is_first_distinct())
    if repeats.is_empty():
        return pl.Series(ROW, [], dtype=pl.UInt32)
    firsts = hashes.filter(pl.col(HASH).is_first_distinct() & pl.col(HASH).is_in(repeats[HASH].implode()))
    suspects = pl.concat([repeats, firsts])[ROW]
    rows = pl.scan_parquet(staged).filter(pl.col(ROW).is_in(suspects.implode())).collect()
    values = [c for c in rows.columns if c not in (ROW, HASH)]
    # A hash collision between different rows is not a duplicate: compare the values themselves.
    confirmed = rows.sort(ROW).filter(
        pl.struct(values).is_duplicated() & ~pl.struct(values).is_first_distinct()
    )
    return confirmed[ROW]


def clean_to_parquet(
    csv_path: Path, parquet_dir: Path, rejects_path: Path, work_dir: Path, settings: IngestSettings
) -> CleanStats:
    """Clean `csv_path` (UTF-8) into hive-partitioned Parquet in `parquet_dir` and a rejects file.

    Both outputs are written to the paths given, which the caller stages and swaps into place.
    """
    started = time.perf_counter()
    source, stats = scan_source(csv_path, settings)
    staged = work_dir / "staged.parquet"
    source.sink_parquet(staged, engine="streaming")
    stats.seconds["scan"] = round(time.perf_counter() - started, 3)
    stats.rows_in = pl.scan_parquet(staged).select(pl.len()).collect().item()
    if stats.rows_in == 0:
        raise EmptyInputError(f"{csv_path}: has a header but no data rows")

    repeats = duplicate_rows(staged)
    stats.duplicates_removed = repeats.len()
    stats.seconds["duplicates"] = round(time.perf_counter() - started - stats.seconds["scan"], 3)

    frame = pl.scan_parquet(staged).filter(~pl.col(ROW).is_in(repeats.implode()))
    columns = [c for c in frame.collect_schema().names() if c not in (ROW, HASH)]
    judged = frame.with_columns(rejection_reasons(columns, settings).alias(REASON))
    usable = judged.filter(pl.col(REASON) == "").select(typed_columns(columns, settings))
    rejected = judged.filter(pl.col(REASON) != "").select(
        pl.col(ROW).alias("source_row"), *[pl.col(c) for c in columns], REASON
    )
    parquet_dir.mkdir(parents=True, exist_ok=True)
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    pl.collect_all(
        [
            usable.sink_parquet(
                pl.PartitionBy(parquet_dir, key="YEAR", include_key=False), lazy=True, mkdir=True
            ),
            rejected.sink_parquet(rejects_path, lazy=True),
        ],
        engine="streaming",
    )
    stats.seconds["clean"] = round(time.perf_counter() - started - sum(stats.seconds.values()), 3)

    rejects = pl.scan_parquet(rejects_path)
    stats.rows_rejected = rejects.select(pl.len()).collect().item()
    stats.rejects_by_reason = dict(
        rejects.group_by(REASON).len().sort("len", descending=True).head(20).collect().iter_rows()
    )
    by_year = pl.scan_parquet(parquet_dir, hive_partitioning=True).group_by("YEAR").len().sort("YEAR")
    stats.rows_by_year = {int(y): int(n) for y, n in by_year.collect().iter_rows()}
    stats.rows_clean = sum(stats.rows_by_year.values())
    return stats
