import numpy as np
import pandas as pd
import pytest

from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.forecast import (
    SEASONAL_NAIVE,
    TRAINING_MEAN,
    BacktestResult,
    Candidate,
    SarimaSpec,
    WarningLog,
    backtest_origins,
    candidates_from_settings,
    choose_model,
    forecast_errors,
    forecast_last_value,
    forecast_seasonal_naive,
    forecast_training_mean,
    residual_scale_by_step,
    rolling_origin_backtest,
    shipped_forecast,
)

SARIMA_CANDIDATES = TimeseriesSettings().sarima_candidates


def seasonal_series(seed: int, months: int = 72) -> np.ndarray:
    """A strong yearly cycle plus AR(1) noise: the AR part is what a SARIMA can use and seasonal naive cannot."""
    rng = np.random.default_rng(seed)
    noise = np.zeros(months)
    for t in range(1, months):
        noise[t] = 0.8 * noise[t - 1] + rng.normal(0, 60)
    return 1000 + 400 * np.sin(2 * np.pi * np.arange(months) / 12) + noise


def white_noise(seed: int, months: int = 72) -> np.ndarray:
    return 1000 + np.random.default_rng(seed).normal(0, 100, months)


def test_last_value_repeats_the_last_month() -> None:
    assert forecast_last_value(np.array([5.0, 7.0, 3.0]), 4).tolist() == [3.0, 3.0, 3.0, 3.0]


def test_seasonal_naive_repeats_last_year_and_wraps_past_twelve_steps() -> None:
    train = np.arange(1.0, 25.0)  # two years: 1..24
    forecast = forecast_seasonal_naive(train, 14)
    assert forecast[:12].tolist() == list(np.arange(13.0, 25.0))
    assert forecast[12:].tolist() == [13.0, 14.0]
    with pytest.raises(ValueError, match="at least 12 months"):
        forecast_seasonal_naive(np.ones(11), 3)


def test_training_mean_is_the_mean_of_the_training_window() -> None:
    assert forecast_training_mean(np.array([0.0, 10.0, 20.0, 50.0]), 2).tolist() == [20.0, 20.0]


def test_metrics_are_zero_safe() -> None:
    errors = forecast_errors(np.array([0.0, 100.0, 0.0, 200.0]), np.array([0.0, 110.0, 50.0, 150.0]))
    assert errors["rmse"] == pytest.approx(np.sqrt((0 + 100 + 2500 + 2500) / 4))
    assert errors["mae"] == pytest.approx(27.5)
    # MAPE only on the two non-zero actuals: (10/100 + 50/200) / 2
    assert errors["mape"] == pytest.approx(17.5)
    assert errors["mape_points"] == 2
    # sMAPE: 0/0 counts as 0; the forecast 50 against actual 0 is the maximal 200%
    expected = (0 + 2 * 10 / 210 + 2.0 + 2 * 50 / 350) / 4 * 100
    assert errors["smape"] == pytest.approx(expected)
    assert forecast_errors(np.zeros(3), np.zeros(3))["mape"] is None


def test_origins_step_back_from_the_end() -> None:
    assert backtest_origins(29, 6, 4, 1) == [20, 21, 22, 23]
    assert backtest_origins(72, 6, 3, 6) == [54, 60, 66]
    with pytest.raises(ValueError, match="cannot hold"):
        rolling_origin_backtest(np.ones(8), [], horizon=6, origins=4)


def test_backtest_reports_improvement_over_each_baseline_and_failures() -> None:
    def broken(train: np.ndarray, steps: int) -> np.ndarray:
        raise RuntimeError("does not fit")

    log = WarningLog()
    candidates = candidates_from_settings([], 50, log) + [Candidate("broken", "sarima", broken)]
    result = rolling_origin_backtest(seasonal_series(0, 40), candidates, horizon=6, origins=3)
    metrics = result.metrics.set_index("model")
    assert set(metrics.index) == {"last_value", "seasonal_naive", "training_mean"}
    assert result.failures == {"broken": "RuntimeError: does not fit"}
    for baseline in ("last_value", "seasonal_naive", "training_mean"):
        assert metrics.loc[baseline, f"improvement_vs_{baseline}"] == 0.0
        expected = 1 - metrics["rmse"] / metrics.loc[baseline, "rmse"]
        assert np.allclose(metrics[f"improvement_vs_{baseline}"], expected)
    assert metrics.loc["seasonal_naive", "points"] == 18
    assert len(metrics.loc["seasonal_naive", "rmse_by_origin"]) == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sarima_wins_on_a_seasonal_series(seed: int) -> None:
    log = WarningLog()
    backtest = rolling_origin_backtest(
        seasonal_series(seed),
        candidates_from_settings(SARIMA_CANDIDATES, 50, log),
        horizon=6,
        origins=6,
        step=2,
    )
    decision = choose_model(backtest, TimeseriesSettings().sarima_min_improvement)
    metrics = backtest.metrics.set_index("model")["rmse"]
    assert decision.shipped_kind == "sarima"
    assert decision.sarima_beats_seasonal_naive
    assert metrics[decision.shipped_model] <= 0.95 * metrics[SEASONAL_NAIVE]
    assert "shipping SARIMA" in decision.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_sarima_ships_on_white_noise(seed: int) -> None:
    log = WarningLog()
    backtest = rolling_origin_backtest(
        white_noise(seed), candidates_from_settings(SARIMA_CANDIDATES, 50, log), horizon=6, origins=6, step=2
    )
    decision = choose_model(backtest, TimeseriesSettings().sarima_min_improvement)
    metrics = backtest.metrics.set_index("model")["rmse"]
    assert decision.shipped_model == TRAINING_MEAN
    assert metrics[TRAINING_MEAN] < metrics[SEASONAL_NAIVE]
    assert f"shipping the baseline {TRAINING_MEAN}" in decision.message


def test_decision_says_so_when_no_sarima_beats_seasonal_naive() -> None:
    metrics = pd.DataFrame(
        {
            "model": ["last_value", "seasonal_naive", "training_mean", "SARIMA(1,0,0)(0,1,0,12)"],
            "kind": ["baseline", "baseline", "baseline", "sarima"],
            "rmse": [90.0, 30.0, 50.0, 31.0],
        }
    )
    decision = choose_model(
        BacktestResult(horizon=6, origins=[20], metrics=metrics, forecasts={}),
        TimeseriesSettings().sarima_min_improvement,
    )
    assert decision.shipped_model == SEASONAL_NAIVE
    assert not decision.sarima_beats_seasonal_naive
    assert decision.message.startswith("No SARIMA beats seasonal naive")


def test_residual_scale_never_shrinks_and_holds_past_the_horizon() -> None:
    residuals = np.array([[3.0, 1.0, 5.0], [-3.0, 1.0, -5.0]])
    assert residual_scale_by_step(residuals, 5).tolist() == [3.0, 3.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("shipped", ["baseline", "sarima"])
def test_shipped_forecast_has_nested_non_negative_intervals(shipped: str) -> None:
    values = seasonal_series(0, 48)
    history = pd.Series(values, index=pd.date_range("2001-01-01", periods=48, freq="MS"))
    log = WarningLog()
    spec = SarimaSpec.from_setting(SARIMA_CANDIDATES[0])
    candidates = candidates_from_settings([SARIMA_CANDIDATES[0]], 50, log)
    backtest = rolling_origin_backtest(values, candidates, horizon=6, origins=4)
    decision = choose_model(backtest, min_improvement=-np.inf if shipped == "sarima" else np.inf)
    assert decision.shipped_kind == shipped
    frame, method = shipped_forecast(history, decision, backtest, candidates, {spec.name: spec}, 8, 50, log)
    assert list(frame.index.strftime("%Y-%m")) == [f"2005-{m:02d}" for m in range(1, 9)]
    assert (frame["lower_95"] <= frame["lower_80"]).all() and (frame["lower_80"] <= frame["forecast"]).all()
    assert (frame["forecast"] <= frame["upper_80"]).all() and (frame["upper_80"] <= frame["upper_95"]).all()
    assert (frame["upper_95"] > frame["lower_95"]).all() and (frame >= 0).all().all()
    assert ("backtest RMSE" in method) == (shipped == "baseline")


def test_bad_sarima_candidate_names_the_setting() -> None:
    with pytest.raises(ValueError, match="timeseries.sarima_candidates"):
        SarimaSpec.from_setting({"order": [1, 0], "seasonal_order": [0, 1, 0, 12]})
    with pytest.raises(ValueError, match="timeseries.sarima_candidates"):
        SarimaSpec.from_setting({"order": [1, 0, 0]})
