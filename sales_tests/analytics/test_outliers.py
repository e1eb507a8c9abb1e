"""The seed's column-by-column IQR filter with exact quartiles, bounds and drop counts, on a frame in
memory and over a DuckDB table (the IQR view's path), which must agree row for row."""

import duckdb
import numpy as np
import polars as pl
import pytest

from sales_assets.outliers import iqr_filter, iqr_keep_condition, iqr_steps


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


def _pandas_style_filter(frame: pl.DataFrame, columns: list[str], factor: float) -> list[int]:
    """The seed's loop, written out with numpy's linear percentiles: rows dropped per column."""
    dropped = []
    for column in columns:
        values = frame[column].drop_nulls().to_numpy()
        q1, q3 = np.percentile(values, [25, 75])
        kept = frame.filter(pl.col(column).is_between(q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)))
        dropped.append(frame.height - kept.height)
        frame = kept
    return dropped


def test_table_and_frame_paths_agree_with_the_seeds_loop():
    rng = np.random.default_rng(5)
    frame = pl.DataFrame(
        {
            "ORDERNUMBER": np.arange(4_000),
            "QUANTITYORDERED": rng.integers(6, 98, 4_000),
            "PRICEEACH": np.minimum(rng.normal(80, 25, 4_000).round(2), 100.0),
            "SALES": rng.lognormal(8, 0.6, 4_000).round(2),
        }
    )
    columns = ["QUANTITYORDERED", "PRICEEACH", "SALES"]
    in_memory = iqr_filter(frame, columns, 1.5)
    assert in_memory.steps["rows_dropped"].to_list() == _pandas_style_filter(frame, columns, 1.5)
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE sales AS SELECT * FROM frame")
        steps = iqr_steps(conn, "sales", columns, 1.5)
        keep, parameters = iqr_keep_condition(steps)
        kept = conn.execute(f"SELECT ORDERNUMBER FROM sales WHERE {keep} ORDER BY 1", parameters).fetchall()
    assert steps.equals(in_memory.steps)
    assert [number for (number,) in kept] == in_memory.kept["ORDERNUMBER"].to_list()


def test_no_columns_keep_every_row():
    frame = pl.DataFrame({"A": [1.0, 100.0]})
    result = iqr_filter(frame, [], 1.5)
    assert result.kept.equals(frame) and result.steps.is_empty()
    assert iqr_keep_condition(result.steps) == ("TRUE", [])


def test_a_missing_column_names_the_setting():
    with duckdb.connect() as conn, pytest.raises(KeyError, match=r"\['MSRP'\] \(analytics.iqr_columns\)"):
        conn.execute("CREATE TABLE sales AS SELECT 1.0 AS SALES")
        iqr_steps(conn, "sales", ["SALES", "MSRP"], 1.5)
