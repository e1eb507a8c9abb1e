"""The seed's column-by-column IQR filter with exact quartiles, bounds and drop counts."""

import polars as pl
import pytest

from sales_assets.outliers import iqr_filter


def test_iqr_filter_drops_outliers_with_linear_quartiles():
    frame = pl.DataFrame({"A": [1.0, 2, 3, 4, 5, 6, 7, 8, 100]})
    result = iqr_filter(frame, ["A"], 1.5)
    # Q1 = 3, Q3 = 7, IQR = 4: bounds -3 .. 13 inclusive.
    assert result.steps.row(0, named=True) == {
        "column": "A",
        "q1": 3.0,
        "q3": 7.0,
        "lower": -3.0,
        "upper": 13.0,
        "rows_before": 9,
        "rows_dropped": 1,
    }
    assert result.kept["A"].to_list() == [1.0, 2, 3, 4, 5, 6, 7, 8]


def test_bounds_are_inclusive():
    frame = pl.DataFrame({"A": [0.0, 10, 10, 10, 20, 40]})
    # Q1 = 10, Q3 = 17.5, IQR = 7.5, factor 1: bounds 2.5 .. 25.
    result = iqr_filter(frame, ["A"], 1.0)
    assert result.steps["upper"][0] == 25.0
    assert result.kept["A"].to_list() == [10.0, 10, 10, 20]


def test_quartiles_are_recomputed_on_the_rows_the_previous_column_kept():
    frame = pl.DataFrame(
        {
            "A": [1.0, 2, 3, 4, 5, 6, 7, 8, 100],
            "B": [10.0, 10, 10, 10, 11, 11, 11, 11, 0],
        }
    )
    result = iqr_filter(frame, ["A", "B"], 1.5)
    # Once A drops the row where B = 0, B's quartiles are 10 and 11 and nothing else goes.
    assert result.steps["rows_dropped"].to_list() == [1, 0]
    assert result.steps.row(1, named=True)["q1"] == 10.0
    assert result.kept.height == 8
    # In the other order B's own outlier (0) goes first, taking A's 100 with it.
    reverse = iqr_filter(frame, ["B", "A"], 1.5)
    assert reverse.steps["rows_dropped"].to_list() == [1, 0]


def test_nulls_are_dropped_and_factor_zero_keeps_the_middle_half():
    frame = pl.DataFrame({"A": [1.0, 2, 3, 4, 5, None]})
    result = iqr_filter(frame, ["A"], 0.0)
    assert result.kept["A"].to_list() == [2.0, 3, 4]
    assert result.steps["rows_dropped"][0] == 3


def test_bad_arguments_name_what_is_wrong():
    frame = pl.DataFrame({"A": [1.0, 2]})
    with pytest.raises(KeyError, match="MSRP"):
        iqr_filter(frame, ["A", "MSRP"], 1.5)
    with pytest.raises(ValueError, match="non-negative"):
        iqr_filter(frame, ["A"], -1.0)
    with pytest.raises(ValueError, match="'A'"):
        iqr_filter(pl.DataFrame({"A": [None, None]}, schema={"A": pl.Float64}), ["A"], 1.5)
