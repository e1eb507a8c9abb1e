"""The EDA figures (titles, labels, thousands separators, sampling, box order) and the report page."""

import matplotlib.pyplot as plt
import polars as pl
import pytest

from sales_assets.analytics.eda_report import eda_report_markdown
from sales_assets.analytics.plots import EDA_PLOTS, boxplot_figure, scatter_figure


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


@pytest.mark.parametrize("stem", list(EDA_PLOTS))
def test_each_plot_has_title_axis_labels_and_thousands(sales, stem):
    fig = EDA_PLOTS[stem](sales)
    axis = fig.axes[0]
    assert axis.get_title()
    assert axis.get_xlabel()
    assert axis.get_ylabel()
    assert axis.yaxis.get_major_formatter()(1_234_567.0, 0) == "1,234,567"
    plt.close(fig)


def test_scatter_samples_large_frames_and_says_so(sales):
    fig = scatter_figure(sales, "QUANTITYORDERED", "SALES", max_points=4)
    axis = fig.axes[0]
    assert len(axis.collections[0].get_offsets()) == 4
    assert "4 of 6 shown" in axis.get_title()
    plt.close(fig)


def test_boxes_are_ordered_by_median(sales):
    fig = boxplot_figure(sales, "SALES", "PRODUCTLINE")
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
    assert "| ADDRESSLINE2 | 3 | 75.00 |  |  | False |" in report
    assert "4 rows in, 3 kept" in report
    assert "![hist_sales.png](hist_sales.png)" in report
    assert "eda_plots" in eda_report_markdown(missing, stats, steps, 3, [])
