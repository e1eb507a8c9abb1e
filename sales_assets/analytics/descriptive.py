"""Descriptive statistics of the numeric columns, one row per column, as pandas' `describe` gives them."""

from __future__ import annotations

import polars as pl

STATISTICS = ("count", "missing", "mean", "std", "min", "q25", "median", "q75", "max")


def numeric_descriptive_stats(frame: pl.DataFrame) -> pl.DataFrame:
    """count, missing, mean, sample std, min, linear-interpolated quartiles and max of every numeric
    column, in the frame's column order."""
    numeric = [name for name, dtype in frame.schema.items() if dtype.is_numeric()]
    if not numeric:
        raise ValueError(f"descriptive statistics: no numeric column among {frame.columns}")
    rows = []
    for name in numeric:
        column = frame[name].cast(pl.Float64)
        rows.append(
            {
                "column": name,
                "count": column.count(),
                "missing": column.null_count(),
                "mean": column.mean(),
                "std": column.std(),
                "min": column.min(),
                "q25": column.quantile(0.25, interpolation="linear"),
                "median": column.median(),
                "q75": column.quantile(0.75, interpolation="linear"),
                "max": column.max(),
            }
        )
    schema = {"column": pl.String, "count": pl.Int64, "missing": pl.Int64}
    schema |= {statistic: pl.Float64 for statistic in STATISTICS[2:]}
    return pl.DataFrame(rows, schema=schema)
