"""PSI in DuckDB on tiny tables with exact numbers, the period comparisons, the report and the check's
severity."""

import math

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from sales_assets.analytics.assets import PSI_WITHIN_BOUNDS, drift_check_result
from sales_assets.analytics.drift import (
    PSI_EPSILON,
    Comparison,
    bin_edges,
    drift_comparisons,
    drift_report,
    drift_status,
    drift_table,
    quantile_levels,
)

WARN, FAIL = 0.1, 0.25


def _compare(reference, current, bins: int) -> Comparison:
    """The year comparison of `current` (2004) against `reference` (2003) as the asset computes it."""
    reference, current = list(map(float, reference)), list(map(float, current))
    frame = pl.DataFrame(
        {
            "YEAR": [2003] * len(reference) + [2004] * len(current),
            "MONTH": [1] * (len(reference) + len(current)),
            "VALUE": reference + current,
        }
    )
    with duckdb.connect() as conn:
        conn.register("sales", frame)
        [year] = [c for c in drift_comparisons(conn, "sales", ["VALUE"], bins) if c.comparison == "year"]
    return year


def test_quantile_levels_are_numpys_linspace():
    for bins in (2, 3, 7, 10, 20):
        assert quantile_levels(bins) == np.linspace(0.0, 1.0, bins + 1)[1:-1].tolist()
    with pytest.raises(ValueError, match="analytics.drift_bins"):
        quantile_levels(1)


def test_bin_edges_are_reference_quantiles_with_open_outer_bins():
    assert _compare(range(1, 11), range(1, 11), bins=2).edges == (-math.inf, 5.5, math.inf)
    sample = np.random.default_rng(3).lognormal(8, 1, 1_001)
    edges = _compare(sample, sample, bins=10).edges
    assert list(edges[1:-1]) == np.unique(np.quantile(sample, np.linspace(0, 1, 11)[1:-1])).tolist()


def test_tied_quantiles_collapse_into_one_edge():
    assert bin_edges([1.0, 1.0, 1.0]) == (-math.inf, 1.0, math.inf)
    year = _compare([1, 1, 1, 1, 2], [1, 1, 1, 1, 2], bins=4)
    assert year.edges == (-math.inf, 1.0, math.inf)
    assert year.reference_counts == (4, 1)


def test_values_beyond_the_reference_range_fall_in_the_outer_bins_and_edges_go_below():
    year = _compare(range(1, 11), [-1e9, 5.5, 5.6, 1e9], bins=2)
    assert year.current_counts == (2, 2)


def test_psi_exact_value():
    # Shares [0.5, 0.5] against [0.75, 0.25].
    expected = 0.25 * math.log(1.5) + (-0.25) * math.log(0.5)
    assert _compare(range(1, 11), [1, 1, 1, 9], bins=2).psi == pytest.approx(expected)


def test_empty_current_bin_counts_as_epsilon():
    expected = 0.5 * math.log(2) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert _compare([1, 2, 3, 4], [1, 2], bins=2).psi == pytest.approx(expected)


def test_identical_samples_give_psi_zero():
    sample = np.random.default_rng(0).normal(100, 15, 2_000)
    assert _compare(sample, sample, bins=10).psi == pytest.approx(0.0, abs=1e-12)


def test_two_draws_of_one_distribution_stay_below_warn():
    rng = np.random.default_rng(1)
    assert _compare(rng.normal(0, 1, 5_000), rng.normal(0, 1, 5_000), bins=10).psi < 0.02


@pytest.mark.parametrize(("shift", "status"), [(0.0, "ok"), (0.45, "warn"), (1.0, "fail")])
def test_shifted_sample_crosses_the_bounds(shift, status):
    rng = np.random.default_rng(2)
    value = _compare(rng.normal(0, 1, 5_000), rng.normal(shift, 1, 5_000), bins=10).psi
    assert drift_status(value, WARN, FAIL) == status


def test_nan_and_null_values_are_ignored_but_counted_as_rows_and_all_nan_is_an_error():
    year = _compare([1, 2, math.nan, 3, 4], [1, 2, 3, 4], bins=2)
    assert year.psi == pytest.approx(0.0)
    assert (year.reference_rows, sum(year.reference_counts)) == (5, 4)
    with pytest.raises(ValueError, match="finite current value of VALUE in 2004"):
        _compare([1, 2], [math.nan], bins=2)
    with pytest.raises(ValueError, match="finite reference value of VALUE in 2003"):
        _compare([math.inf], [1], bins=2)


def test_status_bounds_are_exclusive():
    assert drift_status(0.1, WARN, FAIL) == "ok"
    assert drift_status(0.100001, WARN, FAIL) == "warn"
    assert drift_status(0.25, WARN, FAIL) == "warn"
    assert drift_status(0.250001, WARN, FAIL) == "fail"


def _periods_frame() -> pl.DataFrame:
    # 2003-Q1, 2003-Q2 and 2004-Q1; 2004 sells ten times as much per line.
    return pl.DataFrame(
        {
            "YEAR": [2003] * 8 + [2004] * 4,
            "MONTH": [1, 2, 3, 3, 4, 5, 6, 6, 1, 2, 3, 3],
            "SALES": [1.0, 2, 3, 4, 1, 2, 3, 4, 10, 20, 30, 40],
        }
    )


def _drift_table(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    with duckdb.connect() as conn:
        conn.register("sales", frame)
        return drift_table(drift_comparisons(conn, "sales", columns, bins=2), WARN, FAIL)


def test_drift_table_compares_first_and_last_year_then_consecutive_quarters():
    table = _drift_table(_periods_frame(), ["SALES"])
    assert table.select("comparison", "reference", "current").rows() == [
        ("year", "2003", "2004"),
        ("quarter", "2003-Q1", "2003-Q2"),
        ("quarter", "2003-Q2", "2004-Q1"),
    ]
    assert table["reference_rows"].to_list() == [8, 4, 4]
    assert table["current_rows"].to_list() == [4, 4, 4]
    # 2003-Q1 and 2003-Q2 hold the same values; 2004 lies wholly in the top reference bin.
    assert table["psi"][1] == pytest.approx(0.0)
    expected_shift = (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5) + 0.5 * math.log(2)
    assert table["psi"][0] == pytest.approx(expected_shift, abs=1e-6)
    assert table["status"].to_list() == ["fail", "ok", "fail"]


def test_drift_table_names_a_missing_column_and_the_setting():
    with pytest.raises(KeyError, match=r"analytics.drift_columns.*\['PRICEEACH'\]"):
        _drift_table(_periods_frame(), ["PRICEEACH"])


def test_a_table_without_rows_is_an_error():
    with pytest.raises(ValueError, match="needs rows"):
        _drift_table(_periods_frame().clear(), ["SALES"])


def test_drift_report_names_the_worst_comparison():
    table = _drift_table(_periods_frame(), ["SALES"])
    report = drift_report(table, bins=2, warn=WARN, fail=FAIL)
    assert report["status"] == "fail"
    assert report["worst"]["current"] in {"2004", "2004-Q1"}
    assert report["status_counts"] == {"ok": 1, "warn": 0, "fail": 2}
    assert len(report["comparisons"]) == 3


def _table_with_max(psi_value: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "comparison": ["year", "quarter"],
            "reference": ["2003", "2003-Q1"],
            "current": ["2005", "2003-Q2"],
            "column": ["SALES", "SALES"],
            "psi": [0.01, psi_value],
            "reference_rows": [10, 5],
            "current_rows": [10, 5],
            "status": ["ok", drift_status(psi_value, WARN, FAIL)],
        }
    )


@pytest.mark.parametrize(
    ("max_psi", "passed", "severity"),
    [
        (0.05, True, dg.AssetCheckSeverity.WARN),
        (0.15, False, dg.AssetCheckSeverity.WARN),
        (0.40, False, dg.AssetCheckSeverity.ERROR),
    ],
)
def test_check_passes_warns_or_errors(max_psi, passed, severity):
    result = drift_check_result(_table_with_max(max_psi), WARN, FAIL)
    assert result.check_name == PSI_WITHIN_BOUNDS
    assert result.passed is passed
    assert result.severity == severity
    assert result.metadata["max_psi"].value == pytest.approx(max_psi)
    assert result.metadata["comparisons_above_warn"].value == (0 if passed else 1)
