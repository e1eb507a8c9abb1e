import numpy as np
import pandas as pd
import pytest

from sales_assets.timeseries.forecast import WarningLog
from sales_assets.timeseries.risk import (
    fit_garch,
    monthly_returns,
    parameters_on_bounds,
    risk_caveats,
    risk_summary,
)


def simulate_garch(n: int, mu: float, omega: float, alpha: float, beta: float, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    variance = omega / (1 - alpha - beta)
    shock = 0.0
    values = np.empty(n)
    for t in range(n):
        variance = omega + alpha * shock**2 + beta * variance
        shock = np.sqrt(variance) * rng.standard_normal()
        values[t] = mu + shock
    return pd.Series(values)


def test_returns_skip_zero_denominators_and_keep_falls_to_zero() -> None:
    sales = pd.Series(
        [100.0, 150.0, 0.0, 0.0, 50.0, 25.0], index=pd.date_range("2003-01-01", periods=6, freq="MS")
    )
    returns = monthly_returns(sales)
    assert returns.returns.round(6).tolist() == [50.0, -100.0, -50.0]
    assert list(returns.returns.index.strftime("%Y-%m")) == ["2003-02", "2003-03", "2003-06"]
    assert returns.skipped_zero_denominator == ["2003-04", "2003-05"]


@pytest.mark.parametrize("seed", [1, 2])
def test_garch_recovers_simulated_parameters(seed: int) -> None:
    omega, alpha, beta = 0.5, 0.1, 0.85
    returns = simulate_garch(3000, mu=1.0, omega=omega, alpha=alpha, beta=beta, seed=seed)
    result = fit_garch(returns, horizon=6, min_observations=100, maxiter=500, warning_log=WarningLog())
    params = result["params"]
    assert result["status"] == "ok" and result["converged"]
    assert not result["exploratory"] and result["n_observations"] == 3000
    assert params["mu"] == pytest.approx(1.0, abs=0.15)
    assert params["alpha[1]"] == pytest.approx(alpha, abs=0.04)
    assert params["beta[1]"] == pytest.approx(beta, abs=0.05)
    assert result["persistence"] == pytest.approx(alpha + beta, abs=0.03)
    long_run_sd = np.sqrt(omega / (1 - alpha - beta))
    assert result["long_run_volatility_monthly_pct"] == pytest.approx(long_run_sd, rel=0.2)
    assert not any("annualised" in key for key in result)  # monthly figures only
    assert result["parameters_on_bounds"] == {}
    # The variance forecast reverts towards the long-run variance.
    forecast = np.array(result["conditional_variance_forecast"])
    assert len(forecast) == 6
    long_run_variance = result["long_run_volatility_monthly_pct"] ** 2
    assert abs(forecast[-1] - long_run_variance) < abs(forecast[0] - long_run_variance)


def test_short_samples_are_exploratory_and_tiny_ones_are_not_fitted() -> None:
    returns = simulate_garch(40, mu=0.0, omega=1.0, alpha=0.1, beta=0.5, seed=3)
    assert fit_garch(returns, 3, 100, 500, WarningLog())["exploratory"] is True
    tiny = fit_garch(returns[:5], 3, 100, 500, WarningLog())
    assert tiny["status"] == "insufficient_data" and "params" not in tiny
    assert tiny["mean_return_pct"] == pytest.approx(returns[:5].mean())


def test_parameters_on_bounds_reports_which_side() -> None:
    bounds = {"omega": (1e-6, 10.0), "alpha[1]": (0.0, 1.0), "beta[1]": (0.0, 1.0)}
    hits = parameters_on_bounds({"omega": 2.0, "alpha[1]": 1e-9, "beta[1]": 0.99999}, bounds)
    assert hits == {"alpha[1]": "lower", "beta[1]": "upper"}


def test_risk_summary_states_the_method_and_forecast_months() -> None:
    sales = pd.Series(
        np.r_[0.0, np.random.default_rng(0).uniform(50, 150, 23)],
        index=pd.date_range("2003-01-01", periods=24, freq="MS"),
    )
    summary = risk_summary(sales, horizon=3, min_observations=100, maxiter=500, warning_log=WarningLog())
    assert "percentage change" in summary["return_method"]
    assert summary["skipped_zero_denominator_months"] == ["2003-02"]
    assert summary["n_observations"] == 22
    assert summary["forecast_months"] == ["2005-01", "2005-02", "2005-03"]
    assert summary["exploratory"] is True
    assert len(summary["conditional_variance_forecast"]) == 3
    caveats = " | ".join(summary["caveats"])
    assert "not annualised" in caveats and "exploratory: 22 monthly returns" in caveats
    assert "1 return(s) after a month without sales" in caveats


def test_caveats_name_bounds_and_non_convergence() -> None:
    result = {
        "n_observations": 200,
        "min_observations": 100,
        "exploratory": False,
        "status": "ok",
        "parameters_on_bounds": {"alpha[1]": "lower"},
        "converged": False,
        "optimizer_message": "Iteration limit reached",
    }
    caveats = risk_caveats(result, [])
    assert any("alpha[1] (lower)" in c for c in caveats)
    assert any("Iteration limit reached" in c for c in caveats)
    assert not any(c.startswith("exploratory") for c in caveats)
