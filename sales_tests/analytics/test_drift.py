"""PSI on tiny arrays with exact numbers, the period comparisons, the report and the check's severity."""

import math

import dagster as dg
import numpy as np
import polars as pl
import pytest

from sales_assets.analytics.assets import PSI_WITHIN_BOUNDS, drift_check_result
from sales_assets.analytics.drift import (
    PSI_EPSILON,
    bin_shares,
    drift_report,
    drift_status,
    drift_table,
    psi,
    reference_bin_edges,
)

WARN, FAIL = 0.1, 0.25


def test_bin_edges_are_reference_quantiles_with_open_outer_bins():
    edges = reference_bin_edges(np.arange(1, 11, dtype=float), bins=2)
    assert edges.tolist() == [-math.inf, 5.5, math.inf]


def test_tied_quantiles_collapse_into_one_edge():
    edges = reference_bin_edges(np.array([1.0, 1, 1, 1, 2]), bins=4)
    assert edges.tolist() == [-math.inf, 1.0, math.inf]
    assert bin_shares(np.array([1.0, 1, 1, 1, 2]), edges).tolist() == [0.8, 0.2]


def test_values_beyond_the_reference_range_fall_in_the_outer_bins():
    edges = reference_bin_edges(np.arange(1, 11, dtype=float), bins=2)
    assert bin_shares(np.array([-1e9, 5.5, 5.6, 1e9]), edges).tolist() == [0.5, 0.5]


def test_psi_exact_value():
    # Shares [0.5, 0.5] against [0.75, 0.25].
    expected = 0.25 * math.log(1.5) + (-0.25) * math.log(0.5)
    assert psi(np.arange(1, 11, dtype=float), np.array([1.0, 1, 1, 9]), bins=2) == pytest.approx(expected)


def test_empty_current_bin_counts_as_epsilon():
    expected = 0.5 * math.log(2) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert psi(np.array([1.0, 2, 3, 4]), np.array([1.0, 2]), bins=2) == pytest.approx(expected)


def test_identical_samples_give_psi_zero():
    sample = np.random.default_rng(0).normal(100, 15, 2_000)
    assert psi(sample, sample.copy(), bins=10) == pytest.approx(0.0, abs=1e-12)


def test_two_draws_of_one_distribution_stay_below_warn():
    rng = np.random.default_rng(1)
    assert psi(rng.normal(0, 1, 5_000), rng.normal(0, 1, 5_000), bins=10) < 0.02


@pytest.mark.parametrize(("shift", "status"), [(0.0, "ok"), (0.45, "warn"), (1.0, "fail")])
def test_shifted_sample_crosses_the_bounds(shift, status):
    rng = np.random.default_rng(2)
    value = psi(rng.normal(0, 1, 5_000), rng.normal(shift, 1, 5_000), bins=10)
    assert drift_status(value, WARN, FAIL) == status


def test_nan_values_are_ignored_and_all_nan_is_an_error():
    assert psi(np.array([1.0, 2, np.nan, 3, 4]), np.array([1.0, 2, 3, 4]), bins=2) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="finite current"):
        psi(np.array([1.0, 2]), np.array([np.nan]), bins=2)
    with pytest.raises(ValueError, match="at least 2"):
        reference_bin_edges(np.array([1.0]), bins=1)


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


def test_drift_table_compares_first_and_last_year_then_consecutive_quarters():
    table = drift_table(_periods_frame(), ["SALES"], bins=2, warn=WARN, fail=FAIL)
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


def test_drift_table_names_a_missing_column():
    with pytest.raises(KeyError, match="PRICEEACH"):
        drift_table(_periods_frame(), ["PRICEEACH"], bins=2, warn=WARN, fail=FAIL)


def test_drift_report_names_the_worst_comparison():
    table = drift_table(_periods_frame(), ["SALES"], bins=2, warn=WARN, fail=FAIL)
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
