"""The dashboard's time-series section reads the reports through the same typed model the asset writes
them with: a change of shape fails here, an old-shape file is named with its fix, archived reports of
removed segments are never offered."""

from pathlib import Path

import polars as pl
import pytest

from sales_assets.timeseries.report_model import HIERARCHY_FILE
from sales_assets.timeseries.series import Segment
from sales_tests.timeseries.samples import write_sample_report
from sales_tests.timeseries.test_hierarchy import synthetic_inputs
from sales_tests.ui.dashboard_module import load_dashboard

pytest.importorskip(
    "streamlit", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')"
)


@pytest.fixture(scope="module")
def app():
    return load_dashboard("sales_dashboard_timeseries_section")


@pytest.fixture(scope="module")
def reports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sales_assets.timeseries.hierarchy import reconcile_hierarchy

    directory = tmp_path_factory.mktemp("timeseries")
    write_sample_report(directory, Segment("Classic Cars"))
    (directory / "archive").mkdir()
    (directory / "archive" / "sales_ts_risk_Planes_Norway.json").write_text("{}")
    (directory / HIERARCHY_FILE).write_text(reconcile_hierarchy(synthetic_inputs()).model_dump_json())
    return directory


def test_reports_are_listed_by_segment_key_and_archived_ones_are_not(app, reports_dir: Path) -> None:
    assert list(app.timeseries_reports(reports_dir)) == ["Classic Cars"]


def test_forecast_risk_and_backtest_tables_come_from_the_typed_report(app, reports_dir: Path) -> None:
    report = app.read_timeseries_report(reports_dir / "sales_ts_risk_Classic_Cars_ALL.json")
    frame = app.forecast_frame(report)
    assert frame.height == 30 + 4 and frame.schema["month"] == pl.Date
    assert frame["forecast"].drop_nulls().len() == 4 and frame["SALES"].drop_nulls().len() == 30
    risk = dict(app.risk_table(report).iter_rows())
    assert "long-run monthly volatility (%)" in risk and not any("annualised" in k for k in risk)
    assert any("not annualised" in v for k, v in app.risk_table(report).iter_rows() if k == "caveat")
    backtest = app.backtest_table(report)
    assert report.decision.shipped_model in backtest["model"].to_list()
    scored = [c.model for c in report.backtest.candidates if c.selection is not None]
    shown = backtest.filter(pl.col("model").is_in(scored))["selection RMSE (USD)"]
    assert shown.len() == len(scored) and shown.str.starts_with("$").all()


def test_the_axis_follows_the_data_not_the_95_band_and_the_origins_are_shown(app, reports_dir: Path) -> None:
    """Issue 26: a 95% band to $4.45M around a $332k forecast stretched the axis flat."""
    report = app.read_timeseries_report(reports_dir / "sales_ts_risk_Classic_Cars_ALL.json")
    frame = app.forecast_frame(report)
    wide = frame.with_columns(pl.col("upper_95") * 50)
    top = max(frame["SALES"].max(), frame["forecast"].max(), frame["upper_80"].max())
    assert app.forecast_axis_top(wide) == pytest.approx(1.1 * top)
    assert app.forecast_axis_top(wide) < wide["upper_95"].max()
    spec = app.forecast_chart(wide).to_dict()
    assert spec["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0, pytest.approx(1.1 * top)]
    origins = app.origin_table(report)
    assert origins["origin"].to_list() == report.backtest.protocol.evaluation_origins
    assert origins["chosen"].to_list() == [s.shipped_model for s in report.decision.evaluation.origins]
    assert origins["RMSE (USD)"].str.starts_with("$").all()


def test_the_coherent_forecast_of_a_node_and_none_for_a_pair(app, reports_dir: Path) -> None:
    reason, frame = app.hierarchy_forecast(reports_dir, "Classic Cars")
    assert reason.startswith("Shipping ") and frame.height == 4
    assert app.hierarchy_forecast(reports_dir, "Classic Cars|USA") is None


def test_a_report_of_the_old_shape_is_named_with_its_fix(app, tmp_path: Path) -> None:
    (tmp_path / "sales_ts_risk_ALL_ALL.json").write_text(
        '{"segment": {"key": "ALL"}, "decision": {"message": "x"}}'
    )
    with pytest.raises(ValueError, match="sales_ts_risk_ALL_ALL.json: not a TimeseriesReport.*rematerialise"):
        app.timeseries_reports(tmp_path)
