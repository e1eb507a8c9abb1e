import numpy as np
import pytest

from sales_assets.timeseries.forecast import (
    SARIMA,
    SarimaSpec,
    WarningLog,
    baseline_candidate,
    candidates_from_settings,
    fit_problems,
    fit_sarima,
    forecast_errors,
    forecast_last_value,
    forecast_seasonal_naive,
    forecast_training_mean,
    optimiser_converged,
    sarima_candidate,
)
from sales_tests.timeseries.conftest import SARIMA_CANDIDATES, seasonal_series


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


def test_candidates_order_baselines_before_sarima_and_count_coefficients() -> None:
    candidates = candidates_from_settings(SARIMA_CANDIDATES, 50, WarningLog())
    assert [c.name for c in candidates[:3]] == ["last_value", "seasonal_naive", "training_mean"]
    by_name = {c.name: c for c in candidates}
    # Seasonal naive first (the reference), the other baselines, then fitted models by coefficients.
    assert by_name["seasonal_naive"].complexity == (0, 0)
    assert by_name["training_mean"].complexity == by_name["last_value"].complexity == (1, 0)
    assert by_name["SARIMA(1,1,1)(0,0,0,12)"].complexity == (2, 2)
    assert by_name["SARIMA(0,0,0)(1,1,0,12)"].complexity == (2, 1)
    assert baseline_candidate("seasonal_naive").fit(np.arange(24.0), 2).problems == ()


def test_a_seasonal_fit_on_too_few_months_is_flagged_not_trusted() -> None:
    """statsmodels warns and sets the seasonal coefficient to 0 on 20 months: the fit says so."""
    log = WarningLog()
    spec = SarimaSpec((0, 0, 0), (1, 1, 0, 12))
    _, problems = fit_sarima(seasonal_series(0, 20), spec, 50, log)
    assert "too few observations to estimate the seasonal coefficients" in problems
    assert any(p.startswith("coefficients left at 0: ar.S.L12") for p in problems)
    [(warning, count)] = [(w, c) for w, c in log.counts.items() if "Too few observations" in w]
    assert warning.startswith("SARIMA(0,0,0)(1,1,0,12): ") and count == 1


def test_a_sound_fit_has_no_problems() -> None:
    fit = sarima_candidate(SarimaSpec((1, 0, 0), (0, 1, 0, 12)), 200, WarningLog()).fit(
        seasonal_series(0, 60), 6
    )
    assert fit.problems == () and fit.forecast.shape == (6,)


@pytest.mark.parametrize(
    ("converged", "seen", "params", "expected"),
    [
        (False, [], [0.5, 1.0], "did not converge"),
        (True, [], [float("nan"), 1.0], "non-finite"),
        (True, [], [0.0, 1.0], "coefficients left at 0: ar.L1"),
    ],
)
def test_fit_problems_name_each_kind_of_failed_estimate(converged, seen, params, expected) -> None:
    problems = fit_problems(["ar.L1", "sigma2"], np.array(params), converged, seen)
    assert any(expected in p for p in problems)
    assert fit_problems(["ar.L1", "sigma2"], np.array([0.5, 0.0]), True, []) == ()  # sigma2 may be anything


def test_an_explosive_ar_estimate_is_not_trusted() -> None:
    """An AR root inside the unit circle (phi = 1.2: root 1/1.2) makes forecasts run away."""
    problems = fit_problems(["ar.L1", "sigma2"], np.array([1.2, 1.0]), True, [], np.array([1 / 1.2]))
    assert problems == ("explosive AR estimate (a root on or inside the unit circle)",)
    assert fit_problems(["ar.L1", "sigma2"], np.array([0.5, 1.0]), True, [], np.array([2.0])) == ()


def test_a_line_search_stop_at_a_vanishing_gradient_counts_as_converged() -> None:
    assert optimiser_converged({"converged": False, "warnflag": 2, "gopt": np.array([1.5e-5, 1e-9])})
    assert not optimiser_converged({"converged": False, "warnflag": 2, "gopt": np.array([0.3, 1e-9])})
    assert not optimiser_converged({"converged": False, "warnflag": 1, "gopt": np.array([1e-9])})


def test_sarima_needs_enough_months_for_its_differencing() -> None:
    candidate = sarima_candidate(SarimaSpec((1, 0, 0), (0, 1, 0, 12)), 50, WarningLog())
    assert candidate.kind == SARIMA
    with pytest.raises(ValueError, match="needs at least 14 months"):
        candidate.fit(np.ones(13), 3)


def test_bad_sarima_candidate_names_the_setting() -> None:
    with pytest.raises(ValueError, match="timeseries.sarima_candidates"):
        SarimaSpec.from_setting({"order": [1, 0], "seasonal_order": [0, 1, 0, 12]})
    with pytest.raises(ValueError, match="timeseries.sarima_candidates"):
        SarimaSpec.from_setting({"order": [1, 0, 0]})


def test_statsforecast_candidates_forecast_a_season_and_refuse_what_they_cannot_fit() -> None:
    """Issue 26: statsforecast's automatic models compete beside the baselines, simplest first; fewer
    than 12 months is a failure (not eligible), not a guess."""
    log = WarningLog()
    candidates = candidates_from_settings([], 50, log, ["AutoETS", "AutoTheta", "AutoARIMA"])
    by_name = {c.name: c for c in candidates}
    assert [c.name for c in candidates][3:] == ["AutoETS", "AutoTheta", "AutoARIMA"]
    assert by_name["AutoTheta"].complexity < by_name["AutoETS"].complexity < by_name["AutoARIMA"].complexity
    assert by_name["seasonal_naive"].complexity < by_name["AutoTheta"].complexity
    series = seasonal_series(0, 36)
    for name in ("AutoETS", "AutoTheta", "AutoARIMA"):
        fit = by_name[name].fit(series, 6)
        assert fit.forecast.shape == (6,) and np.all(np.isfinite(fit.forecast)) and fit.problems == ()
        with pytest.raises(ValueError, match="needs at least 12 months"):
            by_name[name].fit(series[:11], 6)
    with pytest.raises(ValueError, match="statsforecast_candidates entry 'Prophet'"):
        candidates_from_settings([], 50, log, ["Prophet"])
