"""Cleaning rules for the sales export, as Polars expressions, and the streaming run that applies them.

Every rule comes from `IngestSettings`. Rows that cannot be used get a reason and go to a rejects file;
exact duplicates are removed and counted; everything else is typed and written as Parquet partitioned by
YEAR. The CSV is scanned lazily and sunk in streaming passes, so memory stays bounded on large files.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sales_assets.settings import SOURCE_COLUMNS, IngestSettings

ROW = "__row"  # 1-based data row number in the source file (the header is row 0)
HASH = "__hash"
REASON = "reason"
POSITIVE_COLUMNS = ("QUANTITYORDERED", "PRICEEACH")
PARQUET_ROW_GROUP_ROWS = 122_880  # DuckDB's own row-group size


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


def _typed_name(column: str) -> str:
    return f"__typed_{column}"


def typed_values(columns: list[str], settings: IngestSettings) -> list[pl.Expr]:
    """Each numeric column parsed once, beside its raw text (null where the text is not a number)."""
    exprs = [_number(c, pl.Int64).alias(_typed_name(c)) for c in settings.integer_columns if c in columns]
    exprs += [_number(c, pl.Float64).alias(_typed_name(c)) for c in settings.float_columns if c in columns]
    return exprs


def date_lookup(distinct_dates: pl.Series, settings: IngestSettings) -> pl.DataFrame:
    """Parsed value of each distinct ORDERDATE text: an export has few distinct dates and many rows,
    so every format is tried once per distinct text instead of once per row."""
    frame = pl.DataFrame({"ORDERDATE": distinct_dates.drop_nulls()})
    return frame.with_columns(parse_order_date("ORDERDATE", settings).alias(_typed_name("ORDERDATE")))


def problems(columns: list[str], settings: IngestSettings) -> list[tuple[pl.Expr, pl.Expr]]:
    """(condition, reason) pairs: a row meeting any condition cannot be used."""
    found: list[tuple[pl.Expr, pl.Expr]] = []
    typed = {c: "whole number" for c in settings.integer_columns} | {
        c: "number" for c in settings.float_columns
    }
    for column, kind in typed.items():
        if column not in columns:
            continue
        raw, value = pl.col(column), pl.col(_typed_name(column))
        found.append((raw.is_null(), pl.lit(f"{column} is blank")))
        found.append(
            (raw.is_not_null() & value.is_null(), pl.format(f"{column} '{{}}' is not a {kind}", raw))
        )
        if column in POSITIVE_COLUMNS:
            found.append((value <= 0, pl.format(f"{column} {{}} is not positive", raw)))
    date = pl.col(_typed_name("ORDERDATE"))
    found.append(
        (
            pl.col("ORDERDATE").is_not_null() & date.is_null(),
            pl.format("ORDERDATE '{}' matches no configured date format", pl.col("ORDERDATE")),
        )
    )
    for column in settings.required_columns:
        if column not in typed and column not in settings.fill_unknown_columns:
            found.append((pl.col(column).is_null(), pl.lit(f"{column} is blank")))
    return found


def clean_columns(columns: list[str], settings: IngestSettings) -> list[pl.Expr]:
    """The clean layer's columns for usable rows: typed values, fills, YEAR and MONTH."""
    exprs: list[pl.Expr] = []
    typed = {*settings.integer_columns, *settings.float_columns, "ORDERDATE"}
    for column in columns:
        if column in settings.drop_columns:
            continue
        if column in typed:
            exprs.append(pl.col(_typed_name(column)).alias(column))
        elif column in settings.fill_unknown_columns:
            exprs.append(pl.col(column).fill_null(settings.fill_value))
        else:
            exprs.append(pl.col(column))
    date = pl.col(_typed_name("ORDERDATE"))
    exprs += [date.dt.year().cast(pl.Int64).alias("YEAR"), date.dt.month().cast(pl.Int64).alias("MONTH")]
    return exprs


def scan_source(csv_path: Path, settings: IngestSettings) -> tuple[pl.LazyFrame, CleanStats]:
    """Every column as a string, with the 1-based row number; absent optional columns added empty."""
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
    return frame, stats


def value_columns(frame: pl.LazyFrame) -> list[str]:
    return [c for c in frame.collect_schema().names() if c != ROW]


def duplicate_rows(source: pl.LazyFrame) -> tuple[int, pl.Series]:
    """The row count and the row numbers of exact repeats of an earlier row.

    Only a 64-bit hash per row is held in memory; rows whose hash repeats are then compared on every
    value, so a hash collision between different rows is never taken for a duplicate.
    """
    values = value_columns(source)
    hashes = source.select(ROW, pl.struct(values).hash(seed=0).alias(HASH)).collect(engine="streaming")
    repeats = hashes.filter(~pl.col(HASH).is_first_distinct())
    if repeats.is_empty():
        return hashes.height, pl.Series(ROW, [], dtype=pl.UInt32)
    suspects = hashes.filter(pl.col(HASH).is_in(repeats[HASH].implode()))[ROW]
    rows = source.filter(pl.col(ROW).is_in(suspects.implode())).collect().sort(ROW)
    confirmed = rows.filter(~pl.struct(values).is_first_distinct())
    return hashes.height, confirmed[ROW]


def clean_to_parquet(
    csv_path: Path, parquet_dir: Path, rejects_path: Path, settings: IngestSettings
) -> CleanStats:
    """Clean `csv_path` (UTF-8) into hive-partitioned Parquet in `parquet_dir` and a rejects file.

    Both outputs are written to the paths given, which the caller stages and swaps into place. The CSV
    is read in two streaming passes: one for row hashes and distinct dates, one that writes.
    """
    started = time.perf_counter()
    # Polars reads this knob from the environment only; it has no scan_csv parameter.
    os.environ["POLARS_CSV_CHUNK_SIZE"] = str(settings.csv_chunk_bytes)
    source, stats = scan_source(csv_path, settings)
    stats.rows_in, repeats = duplicate_rows(source)
    if stats.rows_in == 0:
        raise EmptyInputError(f"{csv_path}: has a header but no data rows")
    stats.duplicates_removed = repeats.len()
    dates = date_lookup(
        source.select(pl.col("ORDERDATE").unique()).collect(engine="streaming")["ORDERDATE"], settings
    )
    stats.seconds["duplicates_and_dates"] = round(time.perf_counter() - started, 3)

    columns = value_columns(source)
    found = problems(columns, settings)
    judged = (
        source.filter(~pl.col(ROW).is_in(repeats.implode()))
        .join(dates.lazy(), on="ORDERDATE", how="left", maintain_order="left")
        .with_columns(typed_values(columns, settings))
        .with_columns(pl.any_horizontal([condition for condition, _ in found]).fill_null(True).alias("__bad"))
    )
    usable = judged.filter(~pl.col("__bad")).select(clean_columns(columns, settings))
    # Reasons are spelled out only for the (few) rejected rows.
    reasons = pl.concat_list([pl.when(condition).then(reason) for condition, reason in found])
    rejected = judged.filter(pl.col("__bad")).select(
        pl.col(ROW).alias("source_row"),
        *[pl.col(c) for c in columns],
        reasons.list.drop_nulls().list.join("; ").alias(REASON),
    )
    parquet_dir.mkdir(parents=True, exist_ok=True)
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    pl.collect_all(
        [
            usable.sink_parquet(
                pl.PartitionBy(parquet_dir, key="YEAR", include_key=False),
                # Bounded row groups keep every later reader's memory bounded too.
                row_group_size=PARQUET_ROW_GROUP_ROWS,
                lazy=True,
                mkdir=True,
            ),
            rejected.sink_parquet(rejects_path, lazy=True),
        ],
        engine="streaming",
    )
    stats.seconds["clean_and_write"] = round(time.perf_counter() - started - sum(stats.seconds.values()), 3)

    rejects = pl.scan_parquet(rejects_path)
    stats.rows_rejected = rejects.select(pl.len()).collect().item()
    stats.rejects_by_reason = dict(
        rejects.group_by(REASON).len().sort("len", descending=True).head(20).collect().iter_rows()
    )
    if stats.rows_rejected == stats.rows_in - stats.duplicates_removed:
        raise EmptyInputError(
            f"{csv_path}: none of its {stats.rows_in:,} rows is usable; first reasons: "
            + "; ".join(list(stats.rejects_by_reason)[:3])
        )
    by_year = pl.scan_parquet(parquet_dir, hive_partitioning=True).group_by("YEAR").len().sort("YEAR")
    stats.rows_by_year = {int(y): int(n) for y, n in by_year.collect().iter_rows()}
    stats.rows_clean = sum(stats.rows_by_year.values())
    return stats
