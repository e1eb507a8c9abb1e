"""Numeric descriptive statistics with exact numbers."""

import polars as pl
import pytest

from sales_assets.analytics.descriptive import numeric_descriptive_stats


def test_stats_of_each_numeric_column_in_frame_order():
    frame = pl.DataFrame(
        {
            "SALES": [1.0, 2.0, 3.0, 4.0, None],
            "COUNTRY": ["USA", "France", "USA", "Spain", "USA"],
            "QUANTITYORDERED": [10, 20, 30, 40, 50],
        }
    )
    stats = numeric_descriptive_stats(frame)
    assert stats["column"].to_list() == ["SALES", "QUANTITYORDERED"]
    sales = stats.row(0, named=True)
    assert sales == {
        "column": "SALES",
        "count": 4,
        "missing": 1,
        "mean": 2.5,
        "std": pytest.approx(1.2909944),
        "min": 1.0,
        "q25": 1.75,
        "median": 2.5,
        "q75": 3.25,
        "max": 4.0,
    }
    quantity = stats.row(1, named=True)
    assert (quantity["count"], quantity["q25"], quantity["median"], quantity["q75"]) == (5, 20.0, 30.0, 40.0)


def test_no_numeric_column_is_an_error():
    with pytest.raises(ValueError, match="COUNTRY"):
        numeric_descriptive_stats(pl.DataFrame({"COUNTRY": ["USA"]}))
