"""The dashboard with a folder of exports (`SALES_RAW_DIR`): the sales section reads the warehouse's
deduplicated `sales` table (read-only, aggregated in DuckDB) instead of the single CSV's Parquet copy, which
does not exist here, and says so on the page. Generated monthly exports plus a correction file, cleaned and
loaded by the real assets."""

from __future__ import annotations

import dagster as dg
import duckdb
import polars as pl
import pytest

from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.settings import Settings
from sales_tests.ingest.test_export_folder import (
    build_warehouse,
    clean_partitions,
    corrected,
    month_rows,
    register,
    sales_total,
    write_export,
)
from sales_tests.ui.dashboard_module import DASHBOARD_APP, load_dashboard

pytest.importorskip(
    "streamlit", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')"
)

MONTHS = [(2003, 10), (2003, 11), (2003, 12)]


@pytest.fixture(scope="module")
def app():
    return load_dashboard("sales_dashboard_folder_app")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Settings, pl.DataFrame]:
    """Three monthly exports and a correction of ten November lines, cleaned and loaded; with the rows the
    table must hold (the correction's lines replacing the November ones)."""
    root = tmp_path_factory.mktemp("dashboard-folder")
    generate_sales_csv(root / "sample.csv", rows=800)
    sample = pl.read_csv(root / "sample.csv", encoding="cp850", infer_schema=False)
    raw_dir, data_dir = root / "exports", root / "data"
    months = [month_rows(sample, *month) for month in MONTHS]
    for age, (frame, (year, month)) in enumerate(zip(months, MONTHS, strict=True)):
        write_export(frame, raw_dir / f"sales {year}-{month:02d}.csv", age)
    november = months[1].filter(pl.col("PRICEEACH").cast(pl.Float64) < 100).head(10)
    correction = corrected(november)
    write_export(correction, raw_dir / "correction.csv", age_days=10)
    with dg.instance_for_test() as instance:
        keys = register(instance, raw_dir, set())
        assert clean_partitions(data_dir, raw_dir, keys, instance).success
        assert build_warehouse(data_dir, raw_dir, instance).success
    changed = november.select("ORDERNUMBER", "ORDERLINENUMBER")
    expected = pl.concat(
        [pl.concat(months).join(changed, on=["ORDERNUMBER", "ORDERLINENUMBER"], how="anti"), correction]
    )
    settings = Settings(data_dir=data_dir, raw_dir=raw_dir)
    assert not settings.parquet_dir.exists()  # no single-CSV layer: only the warehouse has the sales
    return settings, expected


def test_folder_mode_expects_the_warehouse_file(app, folder, tmp_path):
    settings, _ = folder
    sales = app.expected_outputs(settings)["sales"]
    assert sales.path == settings.duckdb_path and sales.present
    assert "DuckDB table sales" in sales.label and "raw_export_files" in sales.command
    absent = app.expected_outputs(Settings(data_dir=tmp_path / "empty", raw_dir=settings.raw_dir_path))
    assert not absent["sales"].present
    # One CSV: the Parquet layer, as before.
    assert app.expected_outputs(Settings(data_dir=settings.root))["sales"].path == settings.parquet_dir


def test_warehouse_figures_are_the_deduplicated_rows_and_match_the_parquet_source(app, folder, tmp_path):
    """The one query layer over the warehouse table gives the deduplicated rows' figures, and the same figures
    as over those rows written as a hive-partitioned Parquet layer (the single-CSV source)."""
    settings, expected = folder
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        sales = app.SalesQueries.from_warehouse(conn, "sales", settings.duckdb_path)
        conn.sql("SELECT * FROM sales").pl().write_parquet(tmp_path / "parquet", partition_by="YEAR")
        same_rows = app.SalesQueries.from_parquet(tmp_path / "parquet")
        numbers = sales.headline()
        assert numbers["order_lines"] == expected.height
        assert numbers["orders"] == expected["ORDERNUMBER"].n_unique()
        assert round(numbers["total_sales"], 2) == sales_total(expected)
        assert sales.filter_options() == same_rows.filter_options()
        assert sales.partial_month() == same_rows.partial_month()
        for chosen in (
            app.Filters(),
            app.Filters(("Classic Cars",), (), (2003,)),
            app.Filters((), ("USA", "France"), ()),
        ):
            assert sales.headline(chosen) == pytest.approx(same_rows.headline(chosen))
            for column in ("PRODUCTLINE", "COUNTRY"):
                mine, theirs = sales.sales_by(column, chosen), same_rows.sales_by(column, chosen)
                assert mine[column].to_list() == theirs[column].to_list()
                assert mine["SALES"].to_list() == pytest.approx(theirs["SALES"].to_list())
            mine, theirs = sales.sales_by_month(chosen), same_rows.sales_by_month(chosen)
            assert mine["month"].to_list() == theirs["month"].to_list()
            assert mine["partial"].to_list() == theirs["partial"].to_list()
            assert mine["SALES"].to_list() == pytest.approx(theirs["SALES"].to_list())
        exports = sales.exports()
        assert same_rows.exports() is None
    assert exports.height == 4 and exports["export"][-1].startswith("correction.csv@")
    assert exports["rows kept"].sum() == expected.height
    assert exports["export"][0].startswith("sales%202003-10.csv@")


def test_the_page_in_folder_mode_shows_the_warehouse_rows_and_names_the_source(folder, monkeypatch):
    from streamlit.testing.v1 import AppTest

    settings, expected = folder
    monkeypatch.setenv("SALES_DATA_DIR", str(settings.root))
    monkeypatch.setenv("SALES_RAW_DIR", str(settings.raw_dir_path))
    monkeypatch.delenv("SALES_RAW_CSV", raising=False)
    page = AppTest.from_file(str(DASHBOARD_APP), default_timeout=60).run()
    assert not page.exception and not page.error
    metrics = {metric.label: metric.value for metric in page.metric}
    assert metrics["Total sales (USD)"] == f"${sales_total(expected):,.2f}"
    captions = " ".join(caption.value for caption in page.caption)
    assert (
        f"{expected.height:,} order lines from the warehouse table `sales` in `{settings.duckdb_path}`"
        in (captions)
    )
    assert "4 export(s)" in captions and "newest export" in captions
    assert "Missing outputs" not in " ".join(str(e.value) for e in page.markdown)
    assert {"Model leaderboard", "SHAP importances"} <= {header.value for header in page.header}


def test_a_table_not_built_from_the_exports_is_flagged(folder, tmp_path, monkeypatch):
    """A DuckDB file without `sales_exports` (built from the single CSV before SALES_RAW_DIR was set): the
    figures are shown with a warning and without the folder-of-exports claim."""
    import shutil

    from streamlit.testing.v1 import AppTest

    settings, expected = folder
    other = Settings(data_dir=tmp_path / "data", raw_dir=settings.raw_dir_path)
    other.duckdb_path.parent.mkdir(parents=True)
    shutil.copy(settings.duckdb_path, other.duckdb_path)
    with duckdb.connect(str(other.duckdb_path)) as conn:
        conn.execute("DROP TABLE sales_exports")
    monkeypatch.setenv("SALES_DATA_DIR", str(other.root))
    monkeypatch.setenv("SALES_RAW_DIR", str(settings.raw_dir_path))
    monkeypatch.delenv("SALES_RAW_CSV", raising=False)
    page = AppTest.from_file(str(DASHBOARD_APP), default_timeout=60).run()
    assert not page.exception and not page.error
    [warning] = [w.value for w in page.warning]
    assert "was not built from the folder of exports" in warning and "refresh_all" in warning
    captions = " ".join(caption.value for caption in page.caption)
    assert f"{expected.height:,} order lines from the warehouse table `sales`" in captions
    assert "newest export" not in captions
