"""The EDA figures drawn from DuckDB aggregates (histogram counts as numpy's, box statistics as
matplotlib's, bounded scatter samples; titles, labels, thousands separators, box order) and the report."""

from collections.abc import Iterator

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.cbook import boxplot_stats

from sales_assets.analytics.eda_report import eda_report_markdown
from sales_assets.analytics.plots import (
    EDA_PLOTS,
    box_statistics,
    boxplot_figure,
    histogram_counts,
    scatter_figure,
    scatter_sample,
)


@pytest.fixture
def sales() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "SALES": [1_500.0, 2_500.0, 12_000.0, 4_000.0, 800.0, 7_500.0],
            "QUANTITYORDERED": [20, 25, 60, 40, 10, 50],
            "PRICEEACH": [75.0, 100.0, 100.0, 100.0, 80.0, 100.0],
            "PRODUCTLINE": ["Ships", "Planes", "Classic Cars", "Planes", "Ships", "Classic Cars"],
            "DEALSIZE": ["Small", "Small", "Large", "Medium", "Small", "Large"],
        }
    )


@pytest.fixture
def conn(sales) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        connection.register("sales", sales)
        yield connection


def _registered(frame: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.register("sales", frame)
    return connection


@pytest.mark.parametrize("stem", list(EDA_PLOTS))
def test_each_plot_has_title_axis_labels_thousands_and_a_caption(conn, stem):
    plot = EDA_PLOTS[stem]
    fig = plot.draw(conn, "sales")
    axis = fig.axes[0]
    assert axis.get_title()
    assert axis.get_xlabel()
    assert axis.get_ylabel()
    assert axis.yaxis.get_major_formatter()(1_234_567.0, 0) == "1,234,567"
    assert plot.caption and "\n" not in plot.caption and len(plot.caption) <= 110
    plt.close(fig)


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).lognormal(8, 1, 20_000),
        np.random.default_rng(1).integers(6, 98, 5_000).astype(float),
        np.array([0.1, 0.2, 0.3, 0.7, 0.9, 1.0] * 7),  # values that land on computed edges
        np.array([42.0, 42.0, 42.0]),  # a constant column: range +- 0.5
    ],
)
def test_histogram_counts_are_numpys(values):
    frame = pl.DataFrame({"SALES": [*values.tolist(), None]})
    edges, counts = histogram_counts(_registered(frame), "sales", "SALES", bins=40)
    expected_counts, expected_edges = np.histogram(values, bins=40)
    assert counts == expected_counts.tolist()
    assert edges == pytest.approx(expected_edges.tolist(), rel=1e-15)


def test_histogram_of_a_column_without_values():
    frame = pl.DataFrame({"SALES": [None]}, schema={"SALES": pl.Float64})
    assert histogram_counts(_registered(frame), "sales", "SALES") == ([], [])


def test_box_statistics_are_matplotlibs_ordered_by_median():
    rng = np.random.default_rng(4)
    groups = {"Ships": rng.lognormal(7, 0.6, 3_000), "Planes": rng.lognormal(8, 0.4, 2_000), "Trains": [5.0]}
    frame = pl.DataFrame(
        {
            "PRODUCTLINE": [name for name, values in groups.items() for _ in values],
            "SALES": [float(v) for values in groups.values() for v in values],
        }
    )
    stats = box_statistics(_registered(frame), "sales", "SALES", "PRODUCTLINE")
    assert [box["label"] for box in stats] == ["Trains", "Ships", "Planes"]
    for box in stats:
        [expected] = boxplot_stats(np.asarray(groups[box["label"]]))
        for key in ("med", "q1", "q3", "whislo", "whishi"):
            assert box[key] == pytest.approx(expected[key], rel=1e-12), (box["label"], key)
        assert sorted(box["fliers"]) == sorted(set(expected["fliers"].tolist()))
    capped = box_statistics(_registered(frame), "sales", "SALES", "PRODUCTLINE", max_fliers=5)
    assert all(len(box["fliers"]) <= 5 for box in capped)
    assert capped == box_statistics(_registered(frame), "sales", "SALES", "PRODUCTLINE", max_fliers=5)


def test_scatter_samples_large_tables_reproducibly_and_says_so(conn):
    fig = scatter_figure(conn, "sales", "QUANTITYORDERED", "SALES", max_points=4)
    axis = fig.axes[0]
    assert len(axis.collections[0].get_offsets()) == 4
    assert "4 of 6 shown" in axis.get_title()
    plt.close(fig)
    first = scatter_sample(conn, "sales", "QUANTITYORDERED", "SALES", max_points=4)
    assert first == scatter_sample(conn, "sales", "QUANTITYORDERED", "SALES", max_points=4)
    points, total = scatter_sample(conn, "sales", "QUANTITYORDERED", "SALES")
    assert (len(points), total) == (6, 6)


def test_boxes_are_ordered_by_median(conn):
    fig = boxplot_figure(conn, "sales", "SALES", "PRODUCTLINE")
    labels = [tick.get_text() for tick in fig.axes[0].get_xticklabels()]
    assert labels == ["Ships", "Planes", "Classic Cars"]
    plt.close(fig)


def test_report_gathers_tables_and_plots():
    missing = pl.DataFrame(
        {
            "column": ["ADDRESSLINE2", "SALES"],
            "missing_before": [3, 0],
            "missing_before_pct": [75.0, 0.0],
            "missing_after": [None, 0],
            "missing_after_pct": [None, 0.0],
            "in_warehouse": [False, True],
        }
    )
    stats = pl.DataFrame({"column": ["SALES"], "count": [4], "mean": [2.5]})
    steps = pl.DataFrame({"column": ["SALES"], "rows_before": [4], "rows_dropped": [1]})
    report = eda_report_markdown(missing, stats, steps, 3, ["hist_sales.png"])
    assert "1 of the raw export's 2 columns had blanks" in report
    assert "| ADDRESSLINE2 | 3 | 75.0% |  |  | False |" in report  # percentages as formatting writes them
    assert "4 rows in, 3 kept" in report
    assert "![hist_sales.png](hist_sales.png)" in report
    assert "eda_plots" in eda_report_markdown(missing, stats, steps, 3, [])
