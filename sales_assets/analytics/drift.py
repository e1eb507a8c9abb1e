"""Population stability index (PSI) between periods of the sales table: bins fixed on the reference
period, comparisons earliest-vs-latest year and quarter-to-quarter, and the verdict an asset check gives.

Bin edges and bin counts are DuckDB aggregates over the table (the reference's quantiles hold one
column of one period; the counts are a GROUP BY), so the comparison never loads the table. PSI as in
Siddiqi, "Credit Risk Scorecards" (2006): sum over bins of (current share - reference share) *
ln(current share / reference share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from sales_assets.analytics.warehouse_reader import require_columns
from sales_assets.metadata import format_thousands, pyplot
from sales_assets.sql import quote_identifier

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Replaces an empty bin's share so that log(current / reference) stays finite.
PSI_EPSILON = 1e-4
# The quarter (1-4) of each row, from MONTH, which the warehouse derives from ORDERDATE.
_WITH_QUARTER = "(SELECT *, (MONTH - 1) // 3 + 1 AS QUARTER FROM {table})"

TABLE_SCHEMA = {
    "column": pl.String,
    "comparison": pl.String,
    "reference": pl.String,
    "current": pl.String,
    "psi": pl.Float64,
    "status": pl.String,
    "reference_rows": pl.Int64,
    "current_rows": pl.Int64,
}


@dataclass(frozen=True)
class Period:
    """A period of the table: its label (`2004`, `2004-Q2`) and the SQL condition (with parameters)
    that selects its rows."""

    label: str
    condition: str
    parameters: tuple[int, ...]


@dataclass(frozen=True)
class Comparison:
    """One column of a reference and a current period on the reference's bins."""

    comparison: str  # "year" or "quarter"
    column: str
    reference: Period
    current: Period
    edges: tuple[float, ...]  # -inf, interior edges, +inf
    reference_counts: tuple[int, ...]  # finite values per bin
    current_counts: tuple[int, ...]
    reference_rows: int  # every row of the period, finite value or not
    current_rows: int

    @property
    def psi(self) -> float:
        return psi_from_counts(self.reference_counts, self.current_counts)


def quantile_levels(bins: int) -> list[float]:
    """The interior quantile levels of `bins` equal-frequency bins, computed as numpy's
    `linspace(0, 1, bins + 1)[1:-1]` does (i * (1 / bins)), so the edges match what it gave."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2 (analytics.drift_bins), got {bins}")
    step = 1.0 / bins
    return [index * step for index in range(1, bins)]


def bin_edges(interior: list[float]) -> tuple[float, ...]:
    """-inf, the distinct interior edges in order, +inf: the outer bins are open-ended so every current
    value lands in some bin; tied quantiles (discrete or capped values) collapse into one edge."""
    return (-math.inf, *sorted(set(interior)), math.inf)


def psi_from_counts(
    reference: tuple[int, ...], current: tuple[int, ...], epsilon: float = PSI_EPSILON
) -> float:
    """PSI of two count vectors over the same bins; an empty bin's share counts as `epsilon`.
    0 means the same distribution."""
    if len(reference) != len(current):
        raise ValueError(f"PSI needs counts over the same bins, got {len(reference)} and {len(current)}")
    total_reference, total_current = sum(reference), sum(current)
    value = 0.0
    for reference_count, current_count in zip(reference, current, strict=True):
        expected = max(reference_count / total_reference, epsilon)
        actual = max(current_count / total_current, epsilon)
        value += (actual - expected) * math.log(actual / expected)
    return value


def drift_status(value: float, warn: float, fail: float) -> str:
    """'ok' up to `warn`, 'warn' above it, 'fail' above `fail`."""
    if value > fail:
        return "fail"
    if value > warn:
        return "warn"
    return "ok"


def _finite(column: str) -> str:
    value = f"CAST({quote_identifier(column)} AS DOUBLE)"
    return f"({value} IS NOT NULL AND isfinite({value}))"


def reference_edges(
    conn: duckdb.DuckDBPyConnection, relation: str, column: str, period: Period, bins: int
) -> tuple[float, ...]:
    """Bin edges at the finite reference values' quantiles (`quantile_cont`: linear interpolation, as
    numpy's default `quantile`). Raises ValueError when the period has no finite value."""
    levels = quantile_levels(bins)
    [(quantiles,)] = conn.execute(
        f"SELECT quantile_cont(CAST({quote_identifier(column)} AS DOUBLE), ?::DOUBLE[]) FROM {relation} "
        f"WHERE {period.condition} AND {_finite(column)}",
        [levels, *period.parameters],
    ).fetchall()
    if quantiles is None:
        raise ValueError(
            f"PSI needs at least one finite reference value of {column} in {period.label}, got none"
        )
    return bin_edges(quantiles)


def bin_counts(
    conn: duckdb.DuckDBPyConnection, relation: str, column: str, period: Period, edges: tuple[float, ...]
) -> tuple[tuple[int, ...], int]:
    """(finite values per bin, rows of the period). Bins are left-open, right-closed: a value equal to
    an edge goes below it (numpy's `searchsorted(side='left')`)."""
    interior = edges[1:-1]
    value = f"CAST({quote_identifier(column)} AS DOUBLE)"
    cases = " ".join(f"WHEN {value} <= ? THEN {index}" for index in range(len(interior)))
    bin_of = f"CASE WHEN NOT {_finite(column)} THEN NULL {cases} ELSE {len(interior)} END"
    grouped = conn.execute(
        f"SELECT {bin_of} AS bin, count(*) FROM {relation} WHERE {period.condition} GROUP BY bin",
        [*interior, *period.parameters],
    ).fetchall()
    per_bin = dict(grouped)
    counts = tuple(int(per_bin.get(index, 0)) for index in range(len(edges) - 1))
    return counts, int(sum(per_bin.values()))


def compare(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    column: str,
    comparison: str,
    reference: Period,
    current: Period,
    bins: int,
) -> Comparison:
    """`column` of `current` against `reference` on `bins` quantile bins fixed on the reference.
    Raises ValueError when either period has no finite value of the column."""
    edges = reference_edges(conn, relation, column, reference, bins)
    reference_counts, reference_rows = bin_counts(conn, relation, column, reference, edges)
    current_counts, current_rows = bin_counts(conn, relation, column, current, edges)
    if not sum(current_counts):
        raise ValueError(
            f"PSI needs at least one finite current value of {column} in {current.label}, got none"
        )
    return Comparison(
        comparison,
        column,
        reference,
        current,
        edges,
        reference_counts,
        current_counts,
        reference_rows,
        current_rows,
    )


def period_pairs(conn: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, Period, Period]]:
    """(comparison, reference, current): the earliest against the latest year, then each quarter
    present against the next one present. Raises ValueError on a table without rows."""
    years = [
        year
        for (year,) in conn.execute(
            f"SELECT DISTINCT YEAR FROM {relation} WHERE YEAR IS NOT NULL ORDER BY YEAR"
        ).fetchall()
    ]
    if not years:
        raise ValueError("drift needs rows in the sales table, got none")
    pairs = []
    if len(years) > 1:
        first, last = (Period(str(year), "YEAR = ?", (year,)) for year in (years[0], years[-1]))
        pairs.append(("year", first, last))
    quarters = [
        Period(f"{year}-Q{quarter}", "YEAR = ? AND QUARTER = ?", (year, quarter))
        for year, quarter in conn.execute(
            f"SELECT DISTINCT YEAR, QUARTER FROM {relation} WHERE YEAR IS NOT NULL AND QUARTER IS NOT NULL "
            "ORDER BY YEAR, QUARTER"
        ).fetchall()
    ]
    pairs += [
        ("quarter", reference, current) for reference, current in zip(quarters, quarters[1:], strict=False)
    ]
    return pairs


def drift_comparisons(
    conn: duckdb.DuckDBPyConnection, table: str, columns: list[str], bins: int
) -> list[Comparison]:
    """Every (period pair, column) comparison of `table`, period pairs in `period_pairs` order.
    Raises KeyError naming the columns the table lacks (settings `analytics.drift_columns`)."""
    require_columns(conn, table, [*columns, "YEAR", "MONTH"], "drift (analytics.drift_columns)")
    relation = _WITH_QUARTER.format(table=quote_identifier(table))
    return [
        compare(conn, relation, column, comparison, reference, current, bins)
        for comparison, reference, current in period_pairs(conn, relation)
        for column in columns
    ]


def drift_table(comparisons: list[Comparison], warn: float, fail: float) -> pl.DataFrame:
    """One row per comparison (the frame `TABLE_SCHEMA`): PSI rounded to 6 decimals, its status and
    the row counts behind it."""
    rows = [
        {
            "column": c.column,
            "comparison": c.comparison,
            "reference": c.reference.label,
            "current": c.current.label,
            "psi": round(c.psi, 6),
            "status": drift_status(c.psi, warn, fail),
            "reference_rows": c.reference_rows,
            "current_rows": c.current_rows,
        }
        for c in comparisons
    ]
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)


def drift_figure(comparisons: list[Comparison], columns: list[str], warn: float, fail: float) -> Figure:
    """Top row: each column's bin shares in the earliest and the latest year, on the earliest year's
    bins (empty when the table holds one year). Bottom row: quarter-to-quarter PSI per column against
    the warn and fail lines."""
    fig, axes = pyplot().subplots(2, len(columns), figsize=(5 * len(columns), 8), squeeze=False)
    for index, column in enumerate(columns):
        top = axes[0][index]
        years = [c for c in comparisons if c.comparison == "year" and c.column == column]
        if years:
            _draw_year_shares(top, years[0])
        else:
            top.set_title(f"{column}: one year only, no year-on-year comparison")
        bottom = axes[1][index]
        quarters = [c for c in comparisons if c.comparison == "quarter" and c.column == column]
        bottom.plot(range(len(quarters)), [round(c.psi, 6) for c in quarters], marker="o")
        bottom.axhline(warn, color="orange", linestyle="--", label=f"warn {warn}")
        bottom.axhline(fail, color="red", linestyle="--", label=f"fail {fail}")
        bottom.set_xticks(range(len(quarters)), [c.current.label for c in quarters], rotation=60, ha="right")
        bottom.set_title(f"{column}: PSI against the previous quarter")
        bottom.set_xlabel("Quarter (compared with the one before)")
        bottom.set_ylabel("PSI")
        bottom.set_ylim(bottom=0)
        bottom.legend()
    fig.tight_layout()
    return fig


def _draw_year_shares(axis: Axes, year: Comparison) -> None:
    column, first, last = year.column, year.reference.label, year.current.label
    positions = range(len(year.edges) - 1)
    for offset, label, counts in ((-0.2, first, year.reference_counts), (0.2, last, year.current_counts)):
        total = sum(counts)
        axis.bar([p + offset for p in positions], [n / total for n in counts], width=0.4, label=label)
    axis.set_xticks(
        list(positions), [_bin_label(year.edges, i) for i in positions], rotation=60, ha="right", fontsize=7
    )
    axis.set_title(f"{column}: share per reference bin, {first} vs {last}")
    axis.set_xlabel(f"{column} bin (edges from {first})")
    axis.set_ylabel("Share of rows")
    axis.legend()


def _bin_label(edges: tuple[float, ...], index: int) -> str:
    low, high = edges[index], edges[index + 1]
    if low == -math.inf:
        return f"≤ {format_thousands(high)}"
    if high == math.inf:
        return f"> {format_thousands(low)}"
    return f"{format_thousands(low)}–{format_thousands(high)}"


def drift_report(table: pl.DataFrame, bins: int, warn: float, fail: float) -> dict:
    """The JSON-ready report: thresholds, the worst comparison, its status and every comparison."""
    worst = table.sort("psi", descending=True, maintain_order=True).head(1).to_dicts()
    max_psi = worst[0]["psi"] if worst else 0.0
    return {
        "method": "population stability index, quantile bins fixed on the reference period",
        "bins": bins,
        "epsilon": PSI_EPSILON,
        "thresholds": {"warn": warn, "fail": fail},
        "max_psi": max_psi,
        "status": drift_status(max_psi, warn, fail),
        "worst": worst[0] if worst else None,
        "status_counts": {
            status: table.filter(pl.col("status") == status).height for status in ("ok", "warn", "fail")
        },
        "comparisons": table.to_dicts(),
    }
