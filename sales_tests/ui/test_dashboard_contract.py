"""The dashboard on what the assets really write: the metrics, SHAP and time-series files produced by a
small materialisation, not hand-written fixtures, so a change of shape on either side fails here."""

import shutil

import dagster as dg
import pytest

from sales_assets.ml.defs import assets as ml_assets
from sales_assets.resources import build_resources
from sales_assets.settings import Settings
from sales_assets.timeseries.assets import ts_risk_reports, ts_segments
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS
from sales_tests.ui.dashboard_module import load_dashboard

pytest.importorskip(
    "streamlit", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')"
)


@pytest.fixture(scope="module")
def app():
    return load_dashboard("sales_dashboard_contract_app")


@pytest.fixture(scope="module")
def outputs(warehouse_data_dir, tmp_path_factory) -> Settings:
    data_dir = tmp_path_factory.mktemp("dashboard-contract") / "data"
    shutil.copytree(warehouse_data_dir, data_dir)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SALES_ML__CV_FOLDS", "2")
        env.setenv("SALES_ML__CV_REPEATS", "1")
        env.setenv("SALES_ML__MODELS", '["linear_regression", "capped_price_residual"]')
        env.setenv("SALES_ML__SHAP_ROWS", "60")
        resources = build_resources(data_dir=data_dir)
        assert dg.materialize(ml_assets, resources=resources, instance=dg.DagsterInstance.ephemeral()).success
        instance = dg.DagsterInstance.ephemeral()
        # ts_segments writes the segment catalogue the report partitions read.
        assert dg.materialize([ts_segments], resources=resources, instance=instance).success
        if "ALL" not in instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name):
            instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["ALL"])
        assert dg.materialize(
            [ts_risk_reports], resources=resources, instance=instance, partition_key="ALL"
        ).success
    return Settings(data_dir=data_dir)


def test_leaderboard_and_shap_read_the_ml_outputs(app, outputs):
    table, champion = app.leaderboard(app.MetricsReport.read(outputs.metrics_dir / app.METRICS_FILE))
    assert set(table["model"]) == {"linear_regression", "capped_price_residual"}
    assert champion == table["model"][0]  # best CV RMSE first, and that is the champion
    assert table.filter(table["champion"])["model"].to_list() == [champion]
    importances = app.shap_importances(app.ShapReport.read(outputs.explainability_dir / app.SHAP_FILE))
    assert importances.height > 3
    assert importances["importance"].is_sorted(descending=True)


def test_forecast_and_risk_read_the_timeseries_report(app, outputs):
    reports = app.timeseries_reports(outputs.timeseries_dir)
    assert list(reports) == ["ALL"]
    report = app.read_timeseries_report(reports["ALL"])
    frame = app.forecast_frame(report)
    assert frame.height > 29  # the history and the forecast months
    assert {"SALES", "forecast"} <= set(frame.columns)
    assert frame["SALES"].drop_nulls().len() >= 29
    assert frame["forecast"].drop_nulls().len() == outputs.timeseries.forecast_steps
    risk = app.risk_table(report)
    assert "exploratory" in risk["measure"].to_list()
