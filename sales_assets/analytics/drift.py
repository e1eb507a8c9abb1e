"""Population stability index (PSI) between periods of the sales table: bins fixed on the reference
period, comparisons earliest-vs-latest year and quarter-to-quarter, and the verdict an asset check gives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from sales_assets.metadata import format_thousands, pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Replaces an empty bin's share so that log(current / reference) stays finite.
PSI_EPSILON = 1e-4


def reference_bin_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior edges at the reference's quantiles; the outer bins are open-ended (-inf, +inf) so every
    current value lands in some bin. Tied quantiles (discrete or capped values) collapse into one edge."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    values = _finite(reference, "reference")
    interior = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    return np.concatenate(([-np.inf], interior, [np.inf]))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of `values` in each bin (left-open, right-closed: a value equal to an edge goes below it)."""
    indexes = np.searchsorted(edges[1:-1], values, side="left")
    counts = np.bincount(indexes, minlength=len(edges) - 1)
    return counts / counts.sum()


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum((current share - reference share) * ln(current share / reference share)) over bins
    fixed on the reference; empty bins count as `epsilon`. 0 means the same distribution."""
    edges = reference_bin_edges(reference, bins)
    expected = np.clip(bin_shares(_finite(reference, "reference"), edges), epsilon, None)
    actual = np.clip(bin_shares(_finite(current, "current"), edges), epsilon, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _finite(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise ValueError(f"PSI needs at least one finite {name} value, got none")
    return array


def drift_status(value: float, warn: float, fail: float) -> str:
    """'ok' up to `warn`, 'warn' above it, 'fail' above `fail`."""
    if value > fail:
        return "fail"
    if value > warn:
        return "warn"
    return "ok"


def with_quarter(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds QUARTER (1-4) from MONTH, which the warehouse derives from ORDERDATE."""
    return frame.with_columns(((pl.col("MONTH") - 1) // 3 + 1).alias("QUARTER"))


def period_pairs(frame: pl.DataFrame) -> list[tuple[str, pl.Expr, str, str, pl.Expr]]:
    """(comparison, reference filter, reference label, current label, current filter): the earliest
    against the latest year, then each quarter present against the next one present."""
    years = sorted(frame["YEAR"].unique().to_list())
    if not years:
        raise ValueError("drift needs rows in the sales table, got none")
    pairs = []
    if len(years) > 1:
        pairs.append(
            ("year", pl.col("YEAR") == years[0], str(years[0]), str(years[-1]), pl.col("YEAR") == years[-1])
        )
    quarters = frame.select("YEAR", "QUARTER").unique().sort("YEAR", "QUARTER").rows()
    for (ref_year, ref_quarter), (cur_year, cur_quarter) in zip(quarters, quarters[1:], strict=False):
        pairs.append(
            (
                "quarter",
                (pl.col("YEAR") == ref_year) & (pl.col("QUARTER") == ref_quarter),
                f"{ref_year}-Q{ref_quarter}",
                f"{cur_year}-Q{cur_quarter}",
                (pl.col("YEAR") == cur_year) & (pl.col("QUARTER") == cur_quarter),
            )
        )
    return pairs


def drift_table(frame: pl.DataFrame, columns: list[str], bins: int, warn: float, fail: float) -> pl.DataFrame:
    """One row per (comparison, period pair, column): PSI, the row counts behind it and its status."""
    missing = [c for c in [*columns, "YEAR", "MONTH"] if c not in frame.columns]
    if missing:
        raise KeyError(f"drift: the sales table lacks column(s) {missing}; it has {frame.columns}")
    quartered = with_quarter(frame)
    rows = []
    for comparison, ref_filter, ref_label, cur_label, cur_filter in period_pairs(quartered):
        reference = quartered.filter(ref_filter)
        current = quartered.filter(cur_filter)
        for column in columns:
            value = psi(reference[column].to_numpy(), current[column].to_numpy(), bins)
            rows.append(
                {
                    "comparison": comparison,
                    "reference": ref_label,
                    "current": cur_label,
                    "column": column,
                    "psi": round(value, 6),
                    "reference_rows": reference.height,
                    "current_rows": current.height,
                    "status": drift_status(value, warn, fail),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "comparison": pl.String,
            "reference": pl.String,
            "current": pl.String,
            "column": pl.String,
            "psi": pl.Float64,
            "reference_rows": pl.Int64,
            "current_rows": pl.Int64,
            "status": pl.String,
        },
    )


def drift_figure(
    frame: pl.DataFrame, table: pl.DataFrame, columns: list[str], bins: int, warn: float, fail: float
) -> Figure:
    """Top row: each column's bin shares in the earliest and the latest year, on the earliest year's
    bins. Bottom row: quarter-to-quarter PSI per column against the warn and fail lines."""
    quartered = with_quarter(frame)
    years = sorted(quartered["YEAR"].unique().to_list())
    fig, axes = pyplot().subplots(2, len(columns), figsize=(5 * len(columns), 8), squeeze=False)
    for index, column in enumerate(columns):
        reference = quartered.filter(pl.col("YEAR") == years[0])[column].to_numpy()
        current = quartered.filter(pl.col("YEAR") == years[-1])[column].to_numpy()
        edges = reference_bin_edges(reference, bins)
        positions = np.arange(len(edges) - 1)
        top = axes[0][index]
        top.bar(positions - 0.2, bin_shares(reference, edges), width=0.4, label=str(years[0]))
        top.bar(positions + 0.2, bin_shares(current, edges), width=0.4, label=str(years[-1]))
        top.set_xticks(
            positions, [_bin_label(edges, i) for i in positions], rotation=60, ha="right", fontsize=7
        )
        top.set_title(f"{column}: share per reference bin, {years[0]} vs {years[-1]}")
        top.set_xlabel(f"{column} bin (edges from {years[0]})")
        top.set_ylabel("Share of rows")
        top.legend()

        bottom = axes[1][index]
        quarters = table.filter((pl.col("comparison") == "quarter") & (pl.col("column") == column))
        bottom.plot(range(quarters.height), quarters["psi"].to_list(), marker="o")
        bottom.axhline(warn, color="orange", linestyle="--", label=f"warn {warn}")
        bottom.axhline(fail, color="red", linestyle="--", label=f"fail {fail}")
        bottom.set_xticks(range(quarters.height), quarters["current"].to_list(), rotation=60, ha="right")
        bottom.set_title(f"{column}: PSI against the previous quarter")
        bottom.set_xlabel("Quarter (compared with the one before)")
        bottom.set_ylabel("PSI")
        bottom.set_ylim(bottom=0)
        bottom.legend()
    fig.tight_layout()
    return fig


def _bin_label(edges: np.ndarray, index: int) -> str:
    low, high = edges[index], edges[index + 1]
    if np.isneginf(low):
        return f"≤ {format_thousands(high)}"
    if np.isposinf(high):
        return f"> {format_thousands(low)}"
    return f"{format_thousands(low)}–{format_thousands(high)}"


def drift_report(table: pl.DataFrame, bins: int, warn: float, fail: float) -> dict:
    """The JSON-ready report: thresholds, the worst comparison, its status and every comparison."""
    worst = table.sort("psi", descending=True).head(1).to_dicts()
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
