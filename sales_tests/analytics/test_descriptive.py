"""Numeric descriptive statistics computed in DuckDB, with exact numbers."""

import math
from fractions import Fraction

import duckdb
import numpy as np
import polars as pl
import pytest

from sales_assets.analytics.descriptive import numeric_descriptive_stats


def _describe(frame: pl.DataFrame) -> pl.DataFrame:
    with duckdb.connect() as conn:
        conn.register("sales", frame)
        return numeric_descriptive_stats(conn, "sales")


def test_stats_of_each_numeric_column_in_table_order():
    frame = pl.DataFrame(
        {
            "SALES": [1.0, 2.0, 3.0, 4.0, None],
            "COUNTRY": ["USA", "France", "USA", "Spain", "USA"],
            "QUANTITYORDERED": [10, 20, 30, 40, 50],
        }
    )
    stats = _describe(frame)
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


def test_quartiles_match_polars_linear_quantiles_and_std_is_exact():
    # Values far from zero with a small spread: a one-pass variance loses digits here.
    values = [2003.0 + (index * 7919 % 1000) / 997 for index in range(5_001)]
    stats = _describe(pl.DataFrame({"YEAR": values})).row(0, named=True)
    series = pl.Series(values)
    assert [stats["q25"], stats["median"], stats["q75"]] == [
        series.quantile(q, interpolation="linear") for q in (0.25, 0.5, 0.75)
    ]
    mean = sum(Fraction(v) for v in values) / len(values)
    exact_std = math.sqrt(sum((Fraction(v) - mean) ** 2 for v in values) / (len(values) - 1))
    assert stats["std"] == pytest.approx(exact_std, rel=1e-15)
    assert stats["mean"] == pytest.approx(float(mean), rel=1e-15)


def test_column_without_values_and_single_value():
    frame = pl.DataFrame({"A": [None, None], "B": [5.0, None]}, schema={"A": pl.Float64, "B": pl.Float64})
    stats = _describe(frame)
    assert stats.row(0) == ("A", 0, 2, None, None, None, None, None, None, None)
    assert stats.row(1) == ("B", 1, 1, 5.0, None, 5.0, 5.0, 5.0, 5.0, 5.0)


def test_no_numeric_column_is_an_error():
    with pytest.raises(ValueError, match="no numeric column"):
        _describe(pl.DataFrame({"COUNTRY": ["USA"]}))


def test_same_values_as_one_query_per_column_over_a_materialised_column():
    # The statistics were one query per column over a CTE of its values (materialised, so it spilled at
    # 20 million rows); they are now a scan per column plus one for every deviation, with the same values
    # to the last bit. Generated columns with nulls, far-from-zero values, integers and few distinct values.
    rng = np.random.default_rng(15)
    rows = 20_011
    frame = pl.DataFrame(
        {
            "SALES": np.round(rng.lognormal(8, 0.6, rows), 2),
            "YEAR": 2003 + rng.integers(0, 3, rows),
            "PRICE": pl.Series(1e9 + rng.random(rows)).scatter(rng.choice(rows, 2_000, replace=False), None),
            "CITY": rng.choice(["Reims", "NYC"], rows),
            "QTY": rng.integers(-50, 50, rows),
        }
    )
    with duckdb.connect() as conn:
        conn.register("sales", frame)
        stats = numeric_descriptive_stats(conn, "sales")
        expected = []
        for name in ["SALES", "YEAR", "PRICE", "QTY"]:
            [row] = conn.execute(
                f"""WITH v AS (SELECT CAST({name} AS DOUBLE) AS value FROM sales)
                    SELECT count(value), count(*) - count(value), (SELECT favg(value) FROM v),
                           CASE WHEN count(value) > 1
                                THEN sqrt(fsum((value - (SELECT favg(value) FROM v)) ^ 2) / (count(value) - 1)) END,
                           min(value), quantile_cont(value, [0.25, 0.5, 0.75]), max(value)
                    FROM v"""
            ).fetchall()
            count, missing, mean, std, low, quartiles, high = row
            expected.append((name, count, missing, mean, std, low, *quartiles, high))
    assert stats.rows() == expected
