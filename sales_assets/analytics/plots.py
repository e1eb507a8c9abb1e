"""The seed's EDA figures of the sales table (histograms, scatter plots, box plots), each drawn from
what DuckDB computes over the table: histogram counts, a bounded sample of points, box statistics. So a
plot costs the same memory on twenty million rows as on the sample; matplotlib (Agg) is imported on the
first draw."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from sales_assets.metadata import pyplot, thousands_formatter
from sales_assets.sql import quote_identifier

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Scatter plots draw at most this many points (a reproducible sample) so they stay readable at scale.
MAX_SCATTER_POINTS = 20_000
# A box plot draws at most this many distinct outlier values per box (a reproducible sample beyond).
MAX_FLIERS_PER_BOX = 2_000
HISTOGRAM_BINS = 40
LABELS = {
    "SALES": "Sales (order-line revenue, USD)",
    "QUANTITYORDERED": "Quantity ordered (units)",
    "PRICEEACH": "Price each (USD, capped at 100)",
    "PRODUCTLINE": "Product line",
    "DEALSIZE": "Deal size",
}


def _label(column: str) -> str:
    return LABELS.get(column, column)


def _thousands(axis: Axes, *, x: bool = False, y: bool = False) -> None:
    if x:
        axis.xaxis.set_major_formatter(thousands_formatter())
    if y:
        axis.yaxis.set_major_formatter(thousands_formatter())


def _value(column: str) -> str:
    return f"CAST({quote_identifier(column)} AS DOUBLE)"


def histogram_counts(
    conn: duckdb.DuckDBPyConnection, table: str, column: str, bins: int = HISTOGRAM_BINS
) -> tuple[list[float], list[int]]:
    """(edges, counts) of `bins` equal-width bins from the column's minimum to its maximum, nulls left
    out, exactly as numpy's `histogram` (and so matplotlib's `hist`) bins them: the last bin is closed,
    the others half-open, and a value that rounding puts beside its bin is moved into it. A constant
    column gets the range value +- 0.5 as numpy does. No values: no edges, no counts."""
    [(low, high)] = conn.execute(
        f"SELECT min({_value(column)}), max({_value(column)}) FROM {quote_identifier(table)}"
    ).fetchall()
    if low is None:
        return [], []
    if low == high:
        low, high = low - 0.5, high + 0.5
    # numpy's own edges (linspace) and index rule, so the counts are its counts.
    step = (high - low) / bins
    edges = [low + index * step for index in range(bins)] + [high]
    scale = bins / (high - low)
    rough = f"least(CAST(floor(({_value(column)} - ?) * ?) AS BIGINT), {bins - 1})"
    # DuckDB lists are 1-based: edge i (0-based) is edges[i + 1].
    fixed = (
        f"CASE WHEN value < list_extract(?::DOUBLE[], rough + 1) THEN rough - 1 "
        f"WHEN value >= list_extract(?::DOUBLE[], rough + 2) AND rough != {bins - 1} THEN rough + 1 "
        "ELSE rough END"
    )
    rows = conn.execute(
        f"""SELECT {fixed} AS bin, count(*) FROM (
                SELECT {_value(column)} AS value, {rough} AS rough FROM {quote_identifier(table)}
                WHERE {quote_identifier(column)} IS NOT NULL)
            GROUP BY bin""",
        [edges, edges, low, scale],
    ).fetchall()
    per_bin = dict(rows)
    return edges, [int(per_bin.get(index, 0)) for index in range(bins)]


def histogram_figure(
    conn: duckdb.DuckDBPyConnection, table: str, column: str, bins: int = HISTOGRAM_BINS
) -> Figure:
    edges, counts = histogram_counts(conn, table, column, bins)
    fig, axis = pyplot().subplots(figsize=(8, 5))
    # Precomputed counts drawn as matplotlib's own histogram: one weighted value per bin.
    axis.hist(edges[:-1], bins=edges, weights=counts, color="#4C72B0", edgecolor="white")
    axis.set_title(f"Distribution of {column} ({sum(counts):,} order lines)")
    axis.set_xlabel(_label(column))
    axis.set_ylabel("Order lines")
    _thousands(axis, x=True, y=True)
    fig.tight_layout()
    return fig


def scatter_sample(
    conn: duckdb.DuckDBPyConnection, table: str, x: str, y: str, max_points: int = MAX_SCATTER_POINTS
) -> tuple[list[tuple[float, float]], int]:
    """(points, rows with both values): every point when there are at most `max_points`, otherwise a
    reproducible sample of `max_points` (the rows with the smallest hash of their values: a top-N
    that holds `max_points` rows, and equal points are interchangeable on a plot)."""
    both = f"{quote_identifier(x)} IS NOT NULL AND {quote_identifier(y)} IS NOT NULL"
    [(total,)] = conn.execute(f"SELECT count(*) FROM {quote_identifier(table)} WHERE {both}").fetchall()
    points = conn.execute(
        f"""SELECT {_value(x)}, {_value(y)} FROM {quote_identifier(table)} WHERE {both}
            ORDER BY hash({quote_identifier(x)}, {quote_identifier(y)}), 1, 2 LIMIT {int(max_points)}"""
    ).fetchall()
    return points, int(total)


def scatter_figure(
    conn: duckdb.DuckDBPyConnection, table: str, x: str, y: str, max_points: int = MAX_SCATTER_POINTS
) -> Figure:
    points, total = scatter_sample(conn, table, x, y, max_points)
    fig, axis = pyplot().subplots(figsize=(8, 5))
    axis.scatter([p[0] for p in points], [p[1] for p in points], s=8, alpha=0.4, color="#4C72B0")
    sampled = f", {len(points):,} of {total:,} shown" if len(points) < total else ""
    axis.set_title(f"{y} against {x}{sampled}")
    axis.set_xlabel(_label(x))
    axis.set_ylabel(_label(y))
    _thousands(axis, y=True)
    fig.tight_layout()
    return fig


def box_statistics(
    conn: duckdb.DuckDBPyConnection, table: str, value: str, by: str, max_fliers: int = MAX_FLIERS_PER_BOX
) -> list[dict[str, Any]]:
    """One dict per group of `by`, ordered by the group's median then its name, in the form
    matplotlib's `Axes.bxp` draws (`label`, `med`, `q1`, `q3`, `whislo`, `whishi`, `fliers`, and `n`):
    the quartiles linear-interpolated and the whiskers at the furthest values within 1.5 IQR of the
    box (never inside the box), as `Axes.boxplot` computes them; the fliers are the distinct values beyond the whiskers (at
    most `max_fliers` per group, a reproducible sample beyond that)."""
    source = f"""SELECT {quote_identifier(by)} AS grp, {_value(value)} AS v FROM {quote_identifier(table)}
                 WHERE {quote_identifier(by)} IS NOT NULL AND {quote_identifier(value)} IS NOT NULL"""
    # NOT MATERIALIZED: DuckDB would materialise a CTE read twice, a copy of the column and the groups
    # that spilled past memory_limit at 20 million rows; each read scans the table instead.
    boxes = conn.execute(
        f"""WITH source AS NOT MATERIALIZED ({source}),
            quartiles AS (SELECT grp, quantile_cont(v, [0.25, 0.5, 0.75]) AS q, count(*) AS n
                          FROM source GROUP BY grp),
            bounds AS (SELECT grp, q[1] AS q1, q[2] AS med, q[3] AS q3, n,
                              q[1] - 1.5 * (q[3] - q[1]) AS low, q[3] + 1.5 * (q[3] - q[1]) AS high FROM quartiles)
            SELECT b.grp, b.med, b.q1, b.q3, b.n,
                   least(coalesce(min(s.v) FILTER (WHERE s.v >= b.low), b.q1), b.q1) AS whislo,
                   greatest(coalesce(max(s.v) FILTER (WHERE s.v <= b.high), b.q3), b.q3) AS whishi
            FROM bounds b JOIN source s USING (grp)
            GROUP BY b.grp, b.med, b.q1, b.q3, b.n ORDER BY b.med, b.grp"""
    ).fetchall()
    stats = [
        {"label": str(grp), "med": med, "q1": q1, "q3": q3, "n": n, "whislo": lo, "whishi": hi, "fliers": []}
        for grp, med, q1, q3, n, lo, hi in boxes
    ]
    if not stats:
        return stats
    by_label = {box["label"]: box for box in stats}
    whiskers = [(box["label"], box["whislo"], box["whishi"]) for box in stats]
    fliers = conn.execute(
        f"""WITH source AS ({source}),
            whiskers AS (SELECT * FROM (VALUES {", ".join("(?, ?, ?)" for _ in whiskers)}) w(grp, lo, hi))
            SELECT grp, v FROM (SELECT DISTINCT s.grp, s.v FROM source s JOIN whiskers w
                                ON CAST(s.grp AS VARCHAR) = w.grp WHERE s.v < w.lo OR s.v > w.hi)
            QUALIFY row_number() OVER (PARTITION BY grp ORDER BY hash(v), v) <= {int(max_fliers)}
            ORDER BY grp, v""",
        [item for whisker in whiskers for item in whisker],
    ).fetchall()
    for grp, flier in fliers:
        by_label[str(grp)]["fliers"].append(flier)
    return stats


def boxplot_figure(conn: duckdb.DuckDBPyConnection, table: str, value: str, by: str) -> Figure:
    """One box per group, ordered by the group's median so the ranking reads left to right."""
    stats = box_statistics(conn, table, value, by)
    fig, axis = pyplot().subplots(figsize=(max(8, 1.3 * len(stats)), 5))
    axis.bxp(stats)
    axis.set_title(f"{value} by {by}")
    axis.set_xlabel(f"{_label(by)} (by median {value})")
    axis.set_ylabel(_label(value))
    axis.tick_params(axis="x", labelrotation=30)
    _thousands(axis, y=True)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class EdaPlot:
    """A figure of the sales table and the one line that says what it shows (its UI caption)."""

    draw: Callable[[duckdb.DuckDBPyConnection, str], Figure]
    caption: str


# File stem -> plot: the seed's six figures.
EDA_PLOTS: dict[str, EdaPlot] = {
    "hist_sales": EdaPlot(
        lambda conn, table: histogram_figure(conn, table, "SALES"),
        "How order-line revenue (SALES, USD) is distributed: order lines per 40 equal-width bins.",
    ),
    "hist_quantityordered": EdaPlot(
        lambda conn, table: histogram_figure(conn, table, "QUANTITYORDERED"),
        "How many units an order line orders: order lines per 40 equal-width bins.",
    ),
    "scatter_quantityordered_sales": EdaPlot(
        lambda conn, table: scatter_figure(conn, table, "QUANTITYORDERED", "SALES"),
        "SALES (USD) against QUANTITYORDERED (units), one dot per order line (sampled beyond 20,000).",
    ),
    "scatter_priceeach_sales": EdaPlot(
        lambda conn, table: scatter_figure(conn, table, "PRICEEACH", "SALES"),
        "SALES (USD) against PRICEEACH (USD, capped at 100): the cap shows as a vertical band at 100.",
    ),
    "box_sales_by_productline": EdaPlot(
        lambda conn, table: boxplot_figure(conn, table, "SALES", "PRODUCTLINE"),
        "SALES (USD) per product line: quartiles, whiskers at 1.5 IQR and outliers, by median.",
    ),
    "box_quantityordered_by_dealsize": EdaPlot(
        lambda conn, table: boxplot_figure(conn, table, "QUANTITYORDERED", "DEALSIZE"),
        "QUANTITYORDERED (units) per deal size: quartiles, whiskers at 1.5 IQR and outliers, by median.",
    ),
}
