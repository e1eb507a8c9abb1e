"""The issue's numbers on the real export: blanks before cleaning, none after, the IQR filter's
8, 0, 79, 35 dropped rows leaving 2,701, and the drift the last quarter shows."""

import json
import shutil

import dagster as dg
import polars as pl
import pytest

from sales_assets.analytics.assets import DRIFT_REPORT_FILE, PSI_WITHIN_BOUNDS
from sales_assets.analytics.missing_values import raw_blank_counts
from sales_assets.outliers import iqr_filter
from sales_assets.resources import build_resources
from sales_assets.settings import Settings
from sales_tests.analytics.conftest import EDA_AND_DRIFT

pytestmark = pytest.mark.real_data

RAW_BLANKS = {"ADDRESSLINE2": 2521, "STATE": 1486, "POSTALCODE": 76}
IQR_DROPPED = [8, 0, 79, 35]
IQR_KEPT = 2701


def test_raw_blanks_read_in_the_detected_encoding(real_csv_path):
    rows, counts, dialect = raw_blank_counts(real_csv_path, Settings().ingest)
    assert dialect.encoding == "cp850"
    assert rows == 2823
    assert {column: n for column, n in counts.rows() if n} == RAW_BLANKS


def test_iqr_filter_on_the_raw_numbers(real_csv_path):
    columns = Settings().analytics.iqr_columns
    # The numeric columns are ASCII, so a lossy UTF-8 read parses them exactly.
    frame = pl.read_csv(real_csv_path, columns=columns, encoding="utf8-lossy")
    result = iqr_filter(frame, columns, 1.5)
    assert result.steps["column"].to_list() == ["QUANTITYORDERED", "PRICEEACH", "SALES", "MSRP"]
    assert result.steps["rows_dropped"].to_list() == IQR_DROPPED
    assert result.kept.height == IQR_KEPT


@pytest.fixture(scope="module")
def real_run(real_warehouse_data_dir, real_csv_path, tmp_path_factory):
    # The shared warehouse is read-only for tests; the analytics outputs go to a copy.
    data_dir = tmp_path_factory.mktemp("real-analytics") / "data"
    shutil.copytree(real_warehouse_data_dir, data_dir)
    result = dg.materialize(
        EDA_AND_DRIFT, resources=build_resources(data_dir=data_dir, raw_csv=real_csv_path)
    )
    assert result.success
    return Settings(data_dir=data_dir), result


def test_missing_values_before_and_after_cleaning(real_run):
    settings, _ = real_run
    report = pl.read_parquet(settings.summary_dir / "missing_values.parquet")
    before = {column: n for column, n in report.select("column", "missing_before").rows() if n}
    assert before == RAW_BLANKS
    assert report.filter(pl.col("in_warehouse"))["missing_after"].to_list() == [0] * 26
    assert report.filter(~pl.col("in_warehouse"))["column"].to_list() == ["ADDRESSLINE2"]


def test_iqr_filtered_view(real_run):
    settings, result = real_run
    [event] = result.asset_materializations_for_node("iqr_filtered_sales")
    steps = {
        row.data["column"]: int(row.data["rows_dropped"].replace(",", ""))
        for row in event.metadata["steps"].value.records
    }
    dropped = [steps[c] for c in settings.analytics.iqr_columns]
    assert dropped == IQR_DROPPED
    assert event.metadata["rows_kept"].value == f"{IQR_KEPT:,}"
    assert pl.read_parquet(settings.iqr_filtered_path).height == IQR_KEPT


def test_quantity_drift_in_the_last_quarter_fails_the_check(real_run):
    settings, result = real_run
    report = json.loads((settings.monitoring_dir / DRIFT_REPORT_FILE).read_text())
    worst = report["worst"]
    assert (worst["column"], worst["reference"], worst["current"]) == (
        "QUANTITYORDERED",
        "2005-Q1",
        "2005-Q2",
    )
    assert worst["psi"] == pytest.approx(0.350, abs=0.001)
    [year_sales] = [c for c in report["comparisons"] if c["comparison"] == "year" and c["column"] == "SALES"]
    assert (year_sales["reference"], year_sales["current"], year_sales["status"]) == ("2003", "2005", "ok")
    assert year_sales["psi"] == pytest.approx(0.0258, abs=0.0005)
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == PSI_WITHIN_BOUNDS]
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.ERROR)
