"""The seed's IQR outlier filter, shared by analytics and ml: rows outside Q1 - k*IQR .. Q3 + k*IQR are
dropped column by column, each column's quartiles taken on the rows the previous columns kept."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class IqrFilterResult:
    kept: pl.DataFrame
    # One row per column in filter order: column, q1, q3, lower, upper, rows_before, rows_dropped.
    steps: pl.DataFrame


def iqr_filter(frame: pl.DataFrame, columns: list[str], factor: float) -> IqrFilterResult:
    """Drop outliers column by column in the order given. Quartiles are linearly interpolated (as
    pandas' `quantile`) and recomputed after each column; bounds are inclusive; nulls are dropped."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"IQR filter: column(s) {missing} not in the frame; it has {frame.columns}")
    if factor < 0:
        raise ValueError(f"IQR filter: factor must be non-negative, got {factor}")
    kept = frame
    steps = []
    for column in columns:
        q1 = kept[column].quantile(0.25, interpolation="linear")
        q3 = kept[column].quantile(0.75, interpolation="linear")
        if q1 is None or q3 is None:
            raise ValueError(f"IQR filter: column {column!r} has no values left to take quartiles of")
        spread = q3 - q1
        lower, upper = q1 - factor * spread, q3 + factor * spread
        before = kept.height
        kept = kept.filter(pl.col(column).is_between(lower, upper, closed="both"))
        steps.append(
            {
                "column": column,
                "q1": float(q1),
                "q3": float(q3),
                "lower": float(lower),
                "upper": float(upper),
                "rows_before": before,
                "rows_dropped": before - kept.height,
            }
        )
    schema = {
        "column": pl.String,
        "q1": pl.Float64,
        "q3": pl.Float64,
        "lower": pl.Float64,
        "upper": pl.Float64,
        "rows_before": pl.Int64,
        "rows_dropped": pl.Int64,
    }
    return IqrFilterResult(kept=kept, steps=pl.DataFrame(steps, schema=schema))
