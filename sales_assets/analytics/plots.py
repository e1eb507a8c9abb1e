"""The seed's EDA figures: histograms, scatter plots and box plots of the sales table (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

from sales_assets.metadata import pyplot, thousands_formatter

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Scatter plots draw at most this many points (a reproducible sample) so they stay readable at scale.
MAX_SCATTER_POINTS = 20_000
LABELS = {
    "SALES": "Sales (order-line revenue)",
    "QUANTITYORDERED": "Quantity ordered (units)",
    "PRICEEACH": "Price each (capped at 100)",
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


def histogram_figure(frame: pl.DataFrame, column: str, bins: int = 40) -> Figure:
    values = frame[column].drop_nulls().to_numpy()
    fig, axis = pyplot().subplots(figsize=(8, 5))
    axis.hist(values, bins=bins, color="#4C72B0", edgecolor="white")
    axis.set_title(f"Distribution of {column} ({len(values):,} order lines)")
    axis.set_xlabel(_label(column))
    axis.set_ylabel("Order lines")
    _thousands(axis, x=True, y=True)
    fig.tight_layout()
    return fig


def scatter_figure(frame: pl.DataFrame, x: str, y: str, max_points: int = MAX_SCATTER_POINTS) -> Figure:
    points = frame.select(x, y).drop_nulls()
    shown = points.sample(max_points, seed=0) if points.height > max_points else points
    fig, axis = pyplot().subplots(figsize=(8, 5))
    axis.scatter(shown[x].to_numpy(), shown[y].to_numpy(), s=8, alpha=0.4, color="#4C72B0")
    sampled = f", {shown.height:,} of {points.height:,} shown" if shown.height < points.height else ""
    axis.set_title(f"{y} against {x}{sampled}")
    axis.set_xlabel(_label(x))
    axis.set_ylabel(_label(y))
    _thousands(axis, y=True)
    fig.tight_layout()
    return fig


def boxplot_figure(frame: pl.DataFrame, value: str, by: str) -> Figure:
    """One box per group, ordered by the group's median so the ranking reads left to right."""
    groups = (
        frame.select(by, value)
        .drop_nulls()
        .group_by(by)
        .agg(pl.col(value), pl.col(value).median().alias("median"))
        .sort("median", by)
    )
    fig, axis = pyplot().subplots(figsize=(max(8, 1.3 * groups.height), 5))
    axis.boxplot([g.to_numpy() for g in groups[value]], tick_labels=groups[by].to_list())
    axis.set_title(f"{value} by {by}")
    axis.set_xlabel(f"{_label(by)} (by median {value})")
    axis.set_ylabel(_label(value))
    axis.tick_params(axis="x", labelrotation=30)
    _thousands(axis, y=True)
    fig.tight_layout()
    return fig


# File stem -> figure builder: the seed's six plots.
EDA_PLOTS: dict[str, Callable[[pl.DataFrame], Figure]] = {
    "hist_sales": lambda frame: histogram_figure(frame, "SALES"),
    "hist_quantityordered": lambda frame: histogram_figure(frame, "QUANTITYORDERED"),
    "scatter_quantityordered_sales": lambda frame: scatter_figure(frame, "QUANTITYORDERED", "SALES"),
    "scatter_priceeach_sales": lambda frame: scatter_figure(frame, "PRICEEACH", "SALES"),
    "box_sales_by_productline": lambda frame: boxplot_figure(frame, "SALES", "PRODUCTLINE"),
    "box_quantityordered_by_dealsize": lambda frame: boxplot_figure(frame, "QUANTITYORDERED", "DEALSIZE"),
}
EDA_PLOT_COLUMNS = ["SALES", "QUANTITYORDERED", "PRICEEACH", "PRODUCTLINE", "DEALSIZE"]
