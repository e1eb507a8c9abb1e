"""The Streamlit dashboard: its data functions on fixture outputs, then the real app served by Streamlit
and read in headless Chromium (leaderboard shown, missing outputs explained)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import duckdb
import polars as pl
import pytest

from sales_assets.settings import Settings
from sales_tests.ui.browser import PROJECT_ROOT, free_port, stop_process, wait_for_http
from sales_tests.ui.clipping import clipped_text
from sales_tests.ui.dashboard_fixture import (
    CHAMPION,
    FORECAST,
    HISTORY,
    RUNNER_UP,
    SEGMENT,
    SHAP_IMPORTANCES,
    write_dashboard_outputs,
)
from sales_tests.ui.dashboard_module import DASHBOARD_APP, load_dashboard

pytest.importorskip(
    "streamlit", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')"
)

# Streamlit's placeholder while an element is laid out, and "every Vega chart has drawn its SVG".
SKELETON = '[data-testid="stSkeleton"]'
CHARTS_DRAWN = "[...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')].every(c => c.querySelector('svg, canvas'))"


@pytest.fixture(scope="module")
def app() -> ModuleType:
    """dashboard/app.py as a module: its page only renders when Streamlit runs it as __main__."""
    return load_dashboard("sales_dashboard_app")


@pytest.fixture
def outputs_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    write_dashboard_outputs(data_dir)
    return data_dir


# ---- data functions ---------------------------------------------------------------------------------


@pytest.fixture
def sales(app, outputs_dir):
    """The query layer over the fixture's cleaned Parquet."""
    return app.SalesQueries.from_parquet(app.Settings(data_dir=outputs_dir).parquet_dir)


def test_headline_and_breakdowns_follow_the_filters(app, sales):
    assert sales.headline() == {
        "total_sales": pytest.approx(10_000.5),
        "orders": 4,
        "customers": 3,
        "countries": 3,
        "order_lines": 5,
    }
    assert sales.filter_options() == {
        "PRODUCTLINE": ["Classic Cars", "Motorcycles", "Vintage Cars"],
        "COUNTRY": ["France", "Norway", "USA"],
        "YEAR": [2003, 2004],
    }
    by_line = sales.sales_by("PRODUCTLINE")
    assert by_line.rows() == [("Classic Cars", 5500.5), ("Vintage Cars", 4000.0), ("Motorcycles", 500.0)]
    assert sales.sales_by_month().rows() == [
        (dt.date(2003, 1, 1), 1500.0, False),
        (dt.date(2003, 2, 1), 2000.0, False),
        (dt.date(2004, 3, 1), 6500.5, True),
    ]

    chosen = app.Filters(("Classic Cars",), (), (2003,))
    assert sales.headline(chosen)["total_sales"] == pytest.approx(3000.0)
    assert sales.sales_by("COUNTRY", chosen).rows() == [("France", 2000.0), ("USA", 1000.0)]
    with pytest.raises(ValueError, match="not a sales column"):
        sales.sales_by("SALES; DROP TABLE sales")


def test_the_newest_month_is_marked_partial_when_the_data_stops_early(app, sales):
    # The fixture's last order is on 2004-03-15: March 2004 is partial, whatever the filter leaves.
    partial = sales.partial_month()
    assert (partial.start, partial.last_order) == (dt.date(2004, 3, 1), dt.date(2004, 3, 15))
    norway = app.Filters((), ("Norway", "France"), ())
    assert sales.sales_by_month(norway).rows() == [
        (dt.date(2003, 2, 1), 2000.0, False),
        (dt.date(2004, 3, 1), 6500.5, True),
    ]


def _queries_over(app, order_dates: list[dt.datetime]):
    """The query layer over an in-memory DuckDB table with one order line per date."""
    conn = duckdb.connect()
    conn.execute(
        "CREATE TABLE sales (ORDERNUMBER BIGINT, SALES DOUBLE, ORDERDATE TIMESTAMP, PRODUCTLINE VARCHAR, "
        "COUNTRY VARCHAR, CUSTOMERNAME VARCHAR, YEAR BIGINT)"
    )
    conn.executemany(
        "INSERT INTO sales VALUES (?, 100.0, ?, 'Ships', 'USA', 'A', ?)",
        [(10100 + i, date, date.year) for i, date in enumerate(order_dates)],
    )
    return app.SalesQueries.from_warehouse(conn, "sales", "memory")


@pytest.mark.parametrize(
    ("last_order", "expected"),
    [
        (dt.datetime(2005, 5, 31), None),  # the real export: May 2005 runs to its last day
        (dt.datetime(2005, 5, 23), (dt.date(2005, 5, 1), dt.date(2005, 5, 23))),  # the generated sample
        (dt.datetime(2004, 2, 29), None),  # leap day
        (dt.datetime(2004, 2, 28), (dt.date(2004, 2, 1), dt.date(2004, 2, 28))),
    ],
)
def test_partial_month_rule_on_month_ends(app, last_order, expected):
    sales = _queries_over(app, [dt.datetime(2003, 1, 6), last_order])
    partial = sales.partial_month()
    assert (partial and (partial.start, partial.last_order)) == expected
    assert sales.sales_by_month()["partial"].to_list() == [False, expected is not None]


def test_without_a_partial_month_the_chart_has_no_partial_legend(app):
    """The real export runs to 2005-05-31: no month is partial, so nothing on the chart may say "partial"
    (the legend listed "partial (data stops early)" though no point was one)."""
    complete = _queries_over(app, [dt.datetime(2003, 1, 6), dt.datetime(2005, 5, 31)]).sales_by_month()
    spec = json.dumps(app.month_chart(complete).to_dict())
    assert "partial" not in spec and "legend" not in spec
    stops_early = _queries_over(app, [dt.datetime(2003, 1, 6), dt.datetime(2005, 5, 23)]).sales_by_month()
    spec = json.dumps(app.month_chart(stops_early).to_dict())
    assert "partial (data stops early)" in spec


def test_leaderboard_and_risk_figures_are_written_to_their_meaning(app):
    board = pl.DataFrame(
        {
            "CV RMSE": [580.6666],
            "CV RMSE sd": [12.0],
            "CV MAE": [308.14],
            "CV R2": [0.6666666],
            "fit seconds": [1.23456],
        }
    )
    assert app.readable_columns(board, app.LEADERBOARD_QUANTITIES).row(0) == (
        "580.67",
        "12.00",
        "308.14",
        "0.667",
        "1.235",
    )


def test_bar_chart_labels_are_never_cut_short(app):
    frame = pl.DataFrame(
        {"feature": ["QUANTITYORDERED", "PRODUCTLINE_Trucks and Buses"], "importance": [2.0, 1]}
    )
    spec = app.bar_chart(frame, "feature", "importance", "Mean |SHAP|", ",.0f", "$,.2f").to_dict()
    assert spec["encoding"]["y"]["axis"]["labelLimit"] == 0
    assert spec["encoding"]["y"]["sort"] == "-x"
    assert spec["encoding"]["tooltip"][1]["format"] == "$,.2f"


def test_the_query_layer_names_missing_columns(app, tmp_path):
    pl.DataFrame({"YEAR": [2003], "SALES": [1.0]}).write_parquet(tmp_path / "p", partition_by="YEAR")
    with pytest.raises(ValueError, match=r"the sales Parquet lacks columns \['ORDERNUMBER'"):
        app.SalesQueries.from_parquet(tmp_path / "p")


def test_leaderboard_ranks_by_cv_rmse_and_marks_the_champion(app, outputs_dir):
    metrics = app.MetricsReport.read(app.Settings(data_dir=outputs_dir).metrics_dir / app.METRICS_FILE)
    table, champion = app.leaderboard(metrics)
    assert champion == CHAMPION
    assert table["model"].to_list() == [CHAMPION, RUNNER_UP]
    assert table["champion"].to_list() == [True, False]
    assert table["CV RMSE"].to_list() == [569.3, 812.4]
    assert table["estimator"].to_list() == ["GradientBoostingRegressor", "LinearRegression"]


def test_shap_importances_largest_first(app, outputs_dir):
    report = app.ShapReport.read(app.Settings(data_dir=outputs_dir).explainability_dir / app.SHAP_FILE)
    importances = app.shap_importances(report)
    assert importances["feature"].to_list() == list(SHAP_IMPORTANCES)
    assert importances["importance"].to_list() == sorted(SHAP_IMPORTANCES.values(), reverse=True)


def test_forecast_frame_joins_history_and_forecast_and_risk_table(app, outputs_dir):
    settings = app.Settings(data_dir=outputs_dir)
    reports = app.timeseries_reports(settings.timeseries_dir)
    assert list(reports) == [SEGMENT]
    report = app.read_timeseries_report(reports[SEGMENT])
    frame = app.forecast_frame(report)
    assert frame.height == len(HISTORY) + len(FORECAST) == 30
    assert frame["month"].to_list()[-2:] == [dt.date(2005, 5, 1), dt.date(2005, 6, 1)]
    assert frame["SALES"].null_count() == len(FORECAST) and frame["forecast"].null_count() == len(HISTORY)
    assert frame.filter(pl.col("month") == dt.date(2004, 11, 1))["SALES"].item() == 185_000.0
    # GARCH figures rounded to four significant digits for reading.
    risk = dict(app.risk_table(report).rows())
    assert (risk["parameter omega"], risk["parameter alpha[1]"]) == ("12.35", "0.1235")
    assert risk["persistence (alpha + beta)"] == "0.9123" and risk["exploratory"] == "True"
    assert app.forecast_frame(report.model_copy(update={"history": [], "forecast": None})).is_empty()


def test_expected_outputs_report_presence(app, outputs_dir, tmp_path):
    present = app.expected_outputs(app.Settings(data_dir=outputs_dir))
    assert {name: o.present for name, o in present.items()} == dict.fromkeys(present, True)
    absent = app.expected_outputs(app.Settings(data_dir=tmp_path / "empty"))
    assert not any(o.present for o in absent.values())


def test_ml_reports_that_do_not_read_are_named_on_the_page(app, outputs_dir, monkeypatch):
    """Invalid JSON, a list, and a report missing a field: the page's reader shows an error naming the file
    and the asset that writes it, and returns None instead of raising."""
    shown: list[str] = []
    monkeypatch.setattr(app.st, "error", shown.append)
    settings = app.Settings(data_dir=outputs_dir)
    metrics_path, shap_path = (
        settings.metrics_dir / app.METRICS_FILE,
        settings.explainability_dir / app.SHAP_FILE,
    )
    shap = json.loads(shap_path.read_text())
    del shap["importance"][0]["mean_abs_shap"]
    cases = [
        (app.MetricsReport.read, metrics_path, "{not json", "Invalid JSON", "trained_models"),
        (app.MetricsReport.read, metrics_path, "[1, 2]", "(top)", "trained_models"),
        (app.ShapReport.read, shap_path, json.dumps(shap), "importance.0.mean_abs_shap: Field required",
         "shap_importance"),
    ]  # fmt: skip
    for read, path, text, problem, asset in cases:
        path.write_text(text)
        assert app._read_or_report(read, path) is None
        assert str(path) in shown[-1] and problem in shown[-1] and f"rematerialise {asset}" in shown[-1]


def test_the_page_with_a_metrics_file_of_the_wrong_shape_names_it_and_renders_the_rest(
    outputs_dir, monkeypatch
):
    """The whole script under Streamlit's AppTest: one error naming the metrics file, no leaderboard table,
    and the SHAP and forecast sections still drawn."""
    from streamlit.testing.v1 import AppTest

    metrics_path = Settings(data_dir=outputs_dir).metrics_dir / "sales_regression_metrics.json"
    metrics_path.write_text(json.dumps({"models": []}))
    monkeypatch.setenv("SALES_DATA_DIR", str(outputs_dir))
    page = AppTest.from_file(str(DASHBOARD_APP), default_timeout=60).run()
    assert not page.exception
    assert [error.value for error in page.error] == [
        f"{metrics_path}: not a MetricsReport (generated_at: Field required; target: Field required; "
        "features: Field required (+10 more)); rematerialise trained_models"
    ]
    headers = [header.value for header in page.header]
    assert {"Model leaderboard", "SHAP importances", "Forecast and risk by segment"} <= set(headers)
    assert not any(CHAMPION in str(table.value) for table in page.table)


def test_project_streamlit_config_hides_deploy_and_sends_no_usage_statistics(tmp_path):
    """Streamlit reads `.streamlit/config.toml` from the folder it starts in: from the project root (as the
    README says), the effective settings are the project's, whatever the user's own config says."""
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    (home / ".streamlit" / "config.toml").write_text("[browser]\ngatherUsageStats = true\n")
    shown = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    effective = {
        line.split(" = ")[0]: line.split(" = ")[1]
        for line in shown.splitlines()
        if " = " in line and line[0] != "#"
    }
    assert effective["gatherUsageStats"] == "false"
    assert effective["toolbarMode"] == '"viewer"'
    assert effective["headless"] == "true"


# ---- the app in a browser ---------------------------------------------------------------------------


@pytest.fixture
def serve_dashboard(tmp_path: Path) -> Iterator:
    started: list[subprocess.Popen] = []

    def serve(data_dir: Path) -> str:
        port = free_port()
        log = tmp_path / f"streamlit-{port}.log"
        command = [
            sys.executable, "-m", "streamlit", "run", str(DASHBOARD_APP),
            "--server.headless", "true",
            "--server.address", "127.0.0.1",
            "--server.port", str(port),
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        env = {**os.environ, "SALES_DATA_DIR": str(data_dir)}
        env.pop("SALES_RAW_CSV", None)
        with log.open("wb") as sink:
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=sink, start_new_session=True
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/_stcore/health", timeout=60, process=process, log=log)
        return url

    yield serve
    for process in started:
        stop_process(process)


@pytest.mark.browser
def test_dashboard_shows_the_leaderboard_in_chromium(browser, serve_dashboard, warehouse_data_dir, tmp_path):
    """On the generated sample's cleaned Parquet (so the README picture looks like the real thing) plus
    the fixture reports."""
    data_dir = tmp_path / "data"
    settings = write_dashboard_outputs(data_dir, parquet_from=warehouse_data_dir)
    total = (
        pl.scan_parquet(settings.parquet_dir, hive_partitioning=True).select(pl.col("SALES").sum()).collect()
    )
    page = browser.open(serve_dashboard(data_dir))
    text = browser.wait_for_text(page, ["Model leaderboard", CHAMPION, RUNNER_UP, "Total sales", SEGMENT])
    assert f"{total.item():,.2f}" in text
    assert f"Champion: {CHAMPION}" in text
    assert "569.3" in text and "812.4" in text
    assert "Traceback" not in text and "Error" not in text
    # The project's .streamlit/config.toml (the server runs from the project root, with no flags for it).
    assert "Deploy" not in text


@pytest.mark.browser
def test_dashboard_explains_missing_outputs_in_chromium(browser, serve_dashboard, tmp_path):
    empty = tmp_path / "empty-data"
    empty.mkdir()
    page = browser.open(serve_dashboard(empty))
    refresh_command = "dagster job execute -m sales_assets.definitions -j refresh_all"
    text = browser.wait_for_text(page, ["Missing outputs", "sales_regression_metrics.json", refresh_command])
    assert str(empty / "processed" / "sales_parquet") in text
    assert text.count("missing") == 4
    assert "Champion:" not in text and "Total sales" not in text


@pytest.mark.browser
def test_dashboard_fits_at_1600_px_on_a_materialised_graph(
    browser, serve_dashboard, materialised_graph, screenshot_dir
):
    """On what the assets wrote for the generated sample: no clipped text (rule:
    sales_tests/ui/clipping.py), no error box, dollar totals, and the sample's partial last month marked."""
    page = browser.open(serve_dashboard(materialised_graph.data_dir))
    text = browser.wait_for_text(
        page, ["Total sales (USD)", "Model leaderboard", "SHAP importances", "partial month", "Risk"]
    )
    assert "May 2005 is a partial month" in text  # the generated sample stops on 2005-05-23
    total = pl.scan_parquet(Settings(data_dir=materialised_graph.data_dir).parquet_dir).select(
        pl.col("SALES").sum()
    )
    assert f"${total.collect().item():,.2f}" in text
    errors = browser.evaluate(
        page, "document.querySelectorAll('[data-testid=\"stException\"], .stAlert').length"
    )
    assert errors == 0 and "Traceback" not in text
    # Charts draw after the data arrives; their canvases settle before clipping is measured.
    browser.wait_for_text(page, ["Sales by month"])
    assert clipped_text(browser, page, scope='[data-testid="stMain"]') == []
    height = browser.evaluate(
        page, "document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight"
    )
    # The README's picture: the top of the page (headline, charts, leaderboard, SHAP), not all of it. The
    # taller viewport makes Streamlit lay the page out again: wait until its placeholders are charts again.
    browser.screenshot(page, screenshot_dir / "dashboard.png", height=min(int(height) + 80, 2100))
    browser.wait_until(page, f"!document.querySelector('{SKELETON}') && {CHARTS_DRAWN}")
    shot = browser.screenshot(page, screenshot_dir / "dashboard.png")
    assert shot.stat().st_size > 50_000


@pytest.mark.real_data
def test_on_the_real_file_no_month_is_partial_and_the_chart_says_nothing_of_it(app, real_warehouse_data_dir):
    """The Kaggle export runs to 2005-05-31: its sales by month carry no partial month, so neither the
    caption nor the legend may say "partial"."""
    sales = app.SalesQueries.from_parquet(app.Settings(data_dir=real_warehouse_data_dir).parquet_dir)
    assert sales.partial_month() is None
    monthly = sales.sales_by_month()
    assert monthly.height == 29 and not monthly["partial"].any()
    assert "partial" not in json.dumps(app.month_chart(monthly).to_dict())
    assert app.money(sales.headline()["total_sales"], symbol=True) == "$10,032,628.85"
