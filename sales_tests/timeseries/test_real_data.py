"""The seed-parity command on the real export: Classic Cars in the USA."""

import json
from pathlib import Path

import pytest

from sales_assets.settings import Settings
from sales_assets.timeseries.cli import main

pytestmark = pytest.mark.real_data


# The seed's command line, verbatim.
SEED_ARGV = [
    "--product-line",
    "Classic Cars",
    "--country",
    "USA",
    "--forecast-steps",
    "6",
    "--garch-horizon",
    "6",
]


@pytest.fixture(scope="module")
def classic_cars_usa(real_warehouse_data_dir: Path) -> dict:
    """The report the seed-parity command writes on the warehouse built from the real export."""
    assert main([*SEED_ARGV, "--data-dir", str(real_warehouse_data_dir)]) == 0
    report = Settings(data_dir=real_warehouse_data_dir).timeseries_dir / "sales_ts_risk_Classic_Cars_USA.json"
    return json.loads(report.read_text())


def test_the_series_matches_the_known_facts(classic_cars_usa: dict) -> None:
    data = classic_cars_usa["data"]
    assert classic_cars_usa["status"] == "ok"
    assert data["months"] == 29 and not data["partial_last_month"]
    assert data["zero_months"] == ["2003-01", "2003-02", "2004-04"]
    history = {point["month"][:7]: point["sales"] for point in classic_cars_usa["history"]}
    for year in ("2003", "2004"):
        year_sales = {month: value for month, value in history.items() if month.startswith(year)}
        assert max(year_sales, key=year_sales.get) == f"{year}-11"


def test_backtest_lists_seasonal_naive_and_the_shipped_model_is_not_worse(classic_cars_usa: dict) -> None:
    rmse = {row["model"]: row["rmse"] for row in classic_cars_usa["backtest"]["metrics"]}
    assert {"last_value", "seasonal_naive", "training_mean"} <= set(rmse)
    assert sum(name.startswith("SARIMA") for name in rmse) == 5
    shipped = classic_cars_usa["decision"]["shipped_model"]
    assert rmse[shipped] <= rmse["seasonal_naive"]
    assert rmse["seasonal_naive"] < rmse["last_value"]
    forecast = classic_cars_usa["forecast"]["points"]
    assert [point["month"] for point in forecast][0] == "2005-06-01" and len(forecast) == 6


def test_risk_is_exploratory_on_monthly_data(classic_cars_usa: dict) -> None:
    risk = classic_cars_usa["risk"]
    # 28 month-on-month changes, 3 of them after a zero month and so undefined.
    assert risk["n_observations"] == 25 and risk["exploratory"] is True
    assert risk["skipped_zero_denominator_months"] == ["2003-02", "2003-03", "2004-05"]
    assert len(risk["conditional_variance_forecast"]) == 6
