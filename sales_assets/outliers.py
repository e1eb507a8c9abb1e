"""The seed's IQR outlier filter, shared by analytics and ml: rows outside Q1 - k*IQR .. Q3 + k*IQR are
dropped column by column, each column's quartiles taken on the rows the previous columns kept.

The quartiles are computed in DuckDB (`quantile_cont`, linear interpolation between the two nearest
ranks, as pandas' and Polars' default `quantile` and numpy's `percentile`), one column at a time, so the
filter holds one column's values and never the table: `iqr_steps` runs it over any table or view,
`iqr_filter` over a frame in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from sales_assets.sql import quote_identifier

STEPS_SCHEMA = {
    "column": pl.String,
    "q1": pl.Float64,
    "q3": pl.Float64,
    "lower": pl.Float64,
    "upper": pl.Float64,
    "rows_before": pl.Int64,
    "rows_dropped": pl.Int64,
}


@dataclass(frozen=True)
class IqrFilterResult:
    kept: pl.DataFrame
    # One row per column in filter order: column, q1, q3, lower, upper, rows_before, rows_dropped.
    steps: pl.DataFrame


def _within(column: str) -> str:
    return f"CAST({quote_identifier(column)} AS DOUBLE) BETWEEN ? AND ?"


def iqr_keep_condition(steps: pl.DataFrame) -> tuple[str, list[float]]:
    """(SQL condition, parameters) that keeps the rows every step kept: each column within its bounds
    (inclusive; a null is outside). `TRUE` when there are no steps."""
    conditions, parameters = ["TRUE"], []
    for step in steps.iter_rows(named=True):
        conditions.append(_within(step["column"]))
        parameters += [step["lower"], step["upper"]]
    return " AND ".join(conditions), parameters


def iqr_steps(
    conn: duckdb.DuckDBPyConnection, relation: str, columns: list[str], factor: float
) -> pl.DataFrame:
    """The filter's steps over the table or view `relation` (a quoted name), as `IqrFilterResult.steps`.

    Raises KeyError naming the columns `relation` lacks (settings `analytics.iqr_columns`), ValueError
    for a negative `factor` or a column with no value left to take quartiles of.
    """
    if factor < 0:
        raise ValueError(f"IQR filter: factor must be non-negative (analytics.iqr_factor), got {factor}")
    present = [name for name, *_ in conn.execute(f"DESCRIBE {relation}").fetchall()]
    missing = [c for c in columns if c not in present]
    if missing:
        raise KeyError(
            f"IQR filter: column(s) {missing} (analytics.iqr_columns) not in {relation}; it has {present}"
        )
    steps = pl.DataFrame(schema=STEPS_SCHEMA)
    for column in columns:
        kept, parameters = iqr_keep_condition(steps)
        [(quartiles, before)] = conn.execute(
            f"SELECT quantile_cont(CAST({quote_identifier(column)} AS DOUBLE), [0.25, 0.75]), count(*) "
            f"FROM {relation} WHERE {kept}",
            parameters,
        ).fetchall()
        if quartiles is None:
            raise ValueError(f"IQR filter: column {column!r} has no values left to take quartiles of")
        q1, q3 = quartiles
        lower, upper = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
        [(after,)] = conn.execute(
            f"SELECT count(*) FROM {relation} WHERE {kept} AND {_within(column)}", [*parameters, lower, upper]
        ).fetchall()
        step = {"column": column, "q1": q1, "q3": q3, "lower": lower, "upper": upper}
        step |= {"rows_before": before, "rows_dropped": before - after}
        steps = pl.concat([steps, pl.DataFrame([step], schema=STEPS_SCHEMA)])
    return steps


def iqr_filter(frame: pl.DataFrame, columns: list[str], factor: float) -> IqrFilterResult:
    """Drop outliers of a frame in memory column by column in the order given (`iqr_steps` on it).
    Bounds are inclusive; nulls are dropped; the kept rows keep their order."""
    with duckdb.connect() as conn:
        conn.register("frame", frame)
        steps = iqr_steps(conn, "frame", columns, factor)
    within = [pl.col(s["column"]).is_between(s["lower"], s["upper"]) for s in steps.iter_rows(named=True)]
    return IqrFilterResult(kept=frame.filter(*within) if within else frame, steps=steps)
