"""The EDA and drift assets materialised with dg.materialize on a tiny warehouse in a temp data dir."""

import json
import re
import shutil

import dagster as dg
import duckdb
import polars as pl
import pytest

from sales_assets.analytics.assets import (
    DRIFT_PLOT_FILE,
    DRIFT_REPORT_FILE,
    NO_MISSING_AFTER_CLEANING,
    PSI_WITHIN_BOUNDS,
    iqr_filtered_sales,
    sales_drift,
    summaries,
)
from sales_assets.analytics.plots import EDA_PLOTS
from sales_assets.outliers import iqr_filter
from sales_assets.resources import build_resources
from sales_assets.settings import Settings
from sales_serving.contract.formatting import count, measure, money
from sales_tests.analytics.conftest import EDA_AND_DRIFT, build_tiny_warehouse


@pytest.fixture(scope="module")
def run(tiny_warehouse):
    result = dg.materialize(
        EDA_AND_DRIFT,
        resources=build_resources(data_dir=tiny_warehouse.data_dir, raw_csv=tiny_warehouse.raw_csv),
    )
    assert result.success
    return result


@pytest.fixture(scope="module")
def settings(tiny_warehouse) -> Settings:
    return Settings(data_dir=tiny_warehouse.data_dir)


def _metadata(run, key: str) -> dict:
    [event] = run.asset_materializations_for_node(key)
    return {name: getattr(value, "value", value) for name, value in event.metadata.items()}


def _check(run, name: str):
    [evaluation] = [e for e in run.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_missing_value_report_counts_the_raw_blanks_and_a_clean_table(run, tiny_warehouse, settings):
    report = pl.read_parquet(settings.summary_dir / "missing_values.parquet")
    assert pl.read_csv(settings.summary_dir / "missing_values.csv").height == report.height
    raw = tiny_warehouse.raw
    missing = dict(zip(report["column"], report["missing_before"], strict=True))
    assert missing["ADDRESSLINE2"] == (raw["ADDRESSLINE2"] == "").sum() == 216
    assert missing["STATE"] == (raw["STATE"] == "").sum() == 80
    assert missing["POSTALCODE"] == 12
    assert missing["TERRITORY"] == 0  # 'NA' is North America
    after = report.filter(pl.col("in_warehouse"))
    assert after["missing_after"].sum() == 0
    assert set(after["column"]) == set(tiny_warehouse.sales.columns)
    metadata = _metadata(run, "missing_value_report")
    assert metadata["raw_encoding"] == "cp850"
    assert (metadata["rows_before"], metadata["rows_after"]) == ("240", "240")
    assert metadata["missing_cells_before"] == count(216 + 80 + 12)
    assert _check(run, NO_MISSING_AFTER_CLEANING).passed


def test_descriptive_stats_cover_the_numeric_columns(run, tiny_warehouse, settings):
    stats = pl.read_parquet(settings.summary_dir / "numeric_descriptive_stats.parquet")
    assert (settings.summary_dir / "numeric_descriptive_stats.csv").is_file()
    assert set(stats["column"]) >= {"QUANTITYORDERED", "PRICEEACH", "SALES", "MSRP", "YEAR", "MONTH"}
    sales = stats.filter(pl.col("column") == "SALES").row(0, named=True)
    assert sales["count"] == 240
    assert sales["mean"] == pytest.approx(tiny_warehouse.sales["SALES"].mean())
    assert sales["max"] == tiny_warehouse.sales["SALES"].max()


def test_plots_are_written_and_embedded_under_their_caption(run, settings):
    metadata = _metadata(run, "eda_plots")
    for stem, plot in EDA_PLOTS.items():
        assert (settings.eda_dir / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert metadata[stem].startswith(f"**{plot.caption}**\n\n![{stem}](data:image/png;base64,")
    assert metadata["rows"] == "240"
    drift_plot = _metadata(run, "sales_drift")["plot"]
    assert (
        drift_plot.startswith("**Top: share of rows per 10-quantile bin") and "![sales_drift]" in drift_plot
    )


def _table(run, key: str, name: str) -> dg.TableMetadataValue:
    [event] = run.asset_materializations_for_node(key)
    value = event.metadata[name]
    assert isinstance(value, dg.TableMetadataValue), (key, name, type(value))
    return value


def test_metadata_tables_are_typed_rounded_and_described(run):
    stats = _table(run, "numeric_descriptive_stats", "statistics")
    types = {column.name: column.type for column in stats.schema.columns}
    assert types["column"] == "string" and types["count"] == "int" and types["mean"] == "float"
    assert next(c for c in stats.schema.columns if c.name == "std").description.startswith("sample standard")
    # Cells are the formatting module's text: measures to four significant digits, shares to three decimals.
    assert all(
        record.data["mean"] == measure(float(record.data["mean"].replace(",", "")))
        for record in stats.records
    )
    psi = _table(run, "sales_drift", "psi")
    # Narrowed to fit the UI's metadata column; the row counts stay in the JSON report.
    assert [c.name for c in psi.schema.columns] == ["column", "reference", "current", "psi", "status"]
    assert len(psi.records) == 18
    assert all(re.fullmatch(r"\d+\.\d{3}", record.data["psi"]) for record in psi.records)
    steps = _table(run, "iqr_filtered_sales", "steps")
    assert [record.data["column"] for record in steps.records] == [
        "QUANTITYORDERED",
        "PRICEEACH",
        "SALES",
        "MSRP",
    ]
    missing = _table(run, "missing_value_report", "missing_values")
    assert len(missing.records) == 27  # 25 raw columns, then YEAR and MONTH the warehouse adds


def test_summaries_show_typed_tables_a_captioned_chart_and_totals_in_usd(tiny_warehouse):
    result = dg.materialize(
        [summaries],
        resources=build_resources(data_dir=tiny_warehouse.data_dir, raw_csv=tiny_warehouse.raw_csv),
        instance=dg.DagsterInstance.ephemeral(),
    )
    by_line = _table(result, "summaries", "sales_by_productline")
    assert [c.name for c in by_line.schema.columns] == [
        "PRODUCTLINE",
        "total_sales",
        "average_sales",
        "order_lines",
    ]
    assert "USD" in next(c for c in by_line.schema.columns if c.name == "total_sales").description
    metadata = _metadata(result, "summaries")
    assert metadata["sales_by_productline_chart"].startswith("**Total SALES (USD) per product line")
    assert metadata["total_sales_usd"] == money(tiny_warehouse.sales["SALES"].sum())  # to the cent
    # Money to the cent with separators in the tables (sales_serving.contract.formatting).
    assert all(
        re.fullmatch(r"\d{1,3}(,\d{3})*\.\d{2}", record.data["total_sales"]) for record in by_line.records
    )
    [check] = result.get_asset_check_evaluations()
    assert check.passed


def test_iqr_view_matches_the_pure_filter_and_keeps_the_table_whole(run, tiny_warehouse, settings):
    filtered = pl.read_parquet(settings.iqr_filtered_path)
    expected = iqr_filter(tiny_warehouse.sales, settings.analytics.iqr_columns, settings.analytics.iqr_factor)
    assert filtered.height == expected.kept.height < 240
    metadata = _metadata(run, "iqr_filtered_sales")
    assert metadata["rows_in"] == "240"
    assert metadata["rows_kept"] == count(filtered.height)
    # Per column in the steps table (one entry per column made the labels too wide for the UI).
    by_column = {row.data["column"]: int(row.data["rows_dropped"]) for row in metadata["steps"].records}
    dropped = [by_column[c] for c in settings.analytics.iqr_columns]
    assert dropped == expected.steps["rows_dropped"].to_list()
    assert sum(dropped) == 240 - filtered.height
    assert dropped[0] >= 2  # the two quantities above 90
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM sales").fetchone()[0] == 240  # the table keeps every row


def test_eda_report_gathers_the_outputs(run, settings):
    report = (settings.eda_dir / "eda_report.md").read_text()
    assert "| ADDRESSLINE2 | 216 | 90.0% |  |  | False |" in report
    assert all(f"({stem}.png)" in report for stem in EDA_PLOTS)
    assert _metadata(run, "eda_report")["plots"] == len(EDA_PLOTS)


def test_drift_report_plot_and_failing_check(run, settings):
    report = json.loads((settings.monitoring_dir / DRIFT_REPORT_FILE).read_text())
    assert (settings.monitoring_dir / DRIFT_PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    assert report["thresholds"] == {"warn": 0.1, "fail": 0.25}
    pairs = {(c["comparison"], c["reference"], c["current"]) for c in report["comparisons"]}
    assert ("year", "2003", "2004") in pairs
    assert ("quarter", "2004-Q1", "2004-Q2") in pairs
    assert len(report["comparisons"]) == 3 * 6  # 3 columns x (1 year pair + 5 quarter pairs)
    # The last quarter's larger orders are a drift the check must fail on.
    assert report["worst"]["column"] in {"QUANTITYORDERED", "SALES"}
    assert report["status"] == "fail"
    check = _check(run, PSI_WITHIN_BOUNDS)
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR


def test_assets_run_on_the_generated_warehouse(warehouse_data_dir, tmp_path):
    # The shared warehouse is read-only for tests; the analytics outputs go to a copy.
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_data_dir, data_dir)
    settings = Settings(data_dir=data_dir)
    result = dg.materialize(EDA_AND_DRIFT, resources=build_resources(data_dir=data_dir))
    assert result.success
    report = pl.read_parquet(settings.summary_dir / "missing_values.parquet")
    blanks = report.filter(pl.col("missing_before") > 0)["column"].to_list()
    assert blanks == ["ADDRESSLINE2", "STATE", "POSTALCODE"]
    assert report.filter(pl.col("in_warehouse"))["missing_after"].sum() == 0
    assert _check(result, NO_MISSING_AFTER_CLEANING).passed
    metadata = _metadata(result, "iqr_filtered_sales")
    assert metadata["rows_in"] == "2,823"  # counts read with separators (metadata.number_metadata)
    assert metadata["rows_kept"] == count(pl.read_parquet(settings.iqr_filtered_path).height)
    assert json.loads((settings.monitoring_dir / DRIFT_REPORT_FILE).read_text())["comparisons"]
    assert _check(result, PSI_WITHIN_BOUNDS).check_name == PSI_WITHIN_BOUNDS


def test_graph_wiring_of_the_group():
    from sales_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    upstream = {
        key: {parent.to_user_string() for parent in graph.get(dg.AssetKey(key)).parent_keys}
        for key in ["missing_value_report", "numeric_descriptive_stats", "eda_plots", "iqr_filtered_sales"]
    }
    assert upstream["missing_value_report"] == {"raw_csv", "duckdb_table"}
    assert all(
        parents == {"duckdb_table"} for key, parents in upstream.items() if key != "missing_value_report"
    )
    eda_parents = {p.to_user_string() for p in graph.get(dg.AssetKey("eda_report")).parent_keys}
    assert eda_parents == {
        "missing_value_report",
        "numeric_descriptive_stats",
        "eda_plots",
        "iqr_filtered_sales",
    }
    assert {p.to_user_string() for p in graph.get(dg.AssetKey("sales_drift")).parent_keys} == {"duckdb_table"}
    for key in ["eda_report", "sales_drift", "iqr_filtered_sales"]:
        assert graph.get(dg.AssetKey(key)).group_name == "analytics"


@pytest.mark.parametrize(
    ("warn", "fail", "passed", "severity"),
    [
        (9.0, 10.0, True, None),
        (0.0, 1e-9, False, dg.AssetCheckSeverity.ERROR),
        (0.0, 10.0, False, dg.AssetCheckSeverity.WARN),
    ],
)
def test_drift_thresholds_come_from_the_settings(tmp_path, monkeypatch, warn, fail, passed, severity):
    warehouse = build_tiny_warehouse(tmp_path)
    monkeypatch.setenv("SALES_ANALYTICS__PSI_WARN", str(warn))
    monkeypatch.setenv("SALES_ANALYTICS__PSI_FAIL", str(fail))
    result = dg.materialize(
        [sales_drift],
        resources=build_resources(data_dir=warehouse.data_dir, raw_csv=warehouse.raw_csv),
        instance=dg.DagsterInstance.ephemeral(),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is passed
    if severity is not None:
        assert evaluation.severity == severity


def test_iqr_factor_comes_from_the_settings(tmp_path, monkeypatch):
    warehouse = build_tiny_warehouse(tmp_path)
    monkeypatch.setenv("SALES_ANALYTICS__IQR_FACTOR", "1000")
    result = dg.materialize(
        [iqr_filtered_sales],
        resources=build_resources(data_dir=warehouse.data_dir, raw_csv=warehouse.raw_csv),
        instance=dg.DagsterInstance.ephemeral(),
    )
    metadata = result.asset_materializations_for_node("iqr_filtered_sales")[0].metadata
    assert metadata["rows_kept"].value == "240"  # nothing is an outlier a thousand IQRs out
