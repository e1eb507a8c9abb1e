"""Volatility of monthly sales: month-on-month returns with zero months handled explicitly, and a
GARCH(1,1) fit with `arch` giving long-run and forecast volatility, convergence and boundary diagnostics.

Returns are simple percentage changes, skipping zero denominators. A month after a month without orders
has no defined return (growth from 0 is infinite) and is left out, counted in the report; a month that
falls to 0 is kept as a -100% return, which is exactly what happened. The alternative, log-differences of
(sales + offset), defines every return but makes the zero months' returns, and so the volatility, depend
mostly on the arbitrary offset; percentage changes keep the unit readable (a monthly volatility of 40
means sales typically move about 40% from one month to the next).

Figures stay monthly. Annualising by the square root of 12 assumes independent changes that add up, as
for a price; the changes of a seasonal sales level revert to the mean instead (a November peak is
followed by a fall), so a yearly figure scaled that way has no meaning here.

pandas and arch are imported inside the functions that use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sales_assets.timeseries.forecast import WarningLog

if TYPE_CHECKING:
    import pandas as pd

RETURN_METHOD = (
    "simple percentage change of monthly SALES, in percent; returns whose previous month is 0 are skipped "
    "(undefined), a month falling to 0 counts as -100%"
)
# Fewer returns than this cannot identify 4 GARCH parameters at all; the fit is not attempted.
MIN_FIT_OBSERVATIONS = 8
# A persistence (alpha + beta) this close to 1 sits on the stationarity constraint: no finite long-run variance.
PERSISTENCE_LIMIT = 1 - 1e-4


@dataclass(frozen=True)
class MonthlyReturns:
    returns: pd.Series  # percent, indexed by the month the return ends in
    skipped_zero_denominator: list[str]


def monthly_returns(sales: pd.Series) -> MonthlyReturns:
    """Month-on-month percentage changes of `sales` (see the module docstring for zero months)."""
    import pandas as pd

    values = sales.to_numpy(dtype=float)
    previous, current = values[:-1], values[1:]
    months = sales.index[1:]
    defined = previous != 0
    returns = pd.Series(
        (current[defined] / previous[defined] - 1) * 100, index=months[defined], name="return_pct"
    )
    return MonthlyReturns(
        returns=returns,
        skipped_zero_denominator=[m.strftime("%Y-%m") for m in months[~defined]],
    )


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def parameters_on_bounds(
    params: dict[str, float], bounds: dict[str, tuple[float, float]], tolerance: float = 1e-4
) -> dict[str, str]:
    """Parameters within `tolerance` (relative to the bound's range) of a bound, as name -> 'lower'/'upper'."""
    hits: dict[str, str] = {}
    for name, (low, high) in bounds.items():
        span = max(high - low, 1e-12)
        if params[name] - low <= tolerance * span:
            hits[name] = "lower"
        elif high - params[name] <= tolerance * span:
            hits[name] = "upper"
    return hits


def fit_garch(
    returns: pd.Series, horizon: int, min_observations: int, maxiter: int, warning_log: WarningLog
) -> dict[str, Any]:
    """GARCH(1,1) with a constant mean and normal errors on `returns` (percent).

    `exploratory` is True below `min_observations`: the fit runs, but four parameters on a few dozen
    points are not to be trusted. Long-run variance is omega / (1 - alpha - beta) when that is finite.
    """
    values = returns.to_numpy(dtype=float)
    n = int(values.size)
    summary: dict[str, Any] = {
        "model": "GARCH(1,1), constant mean, normal errors (arch)",
        "n_observations": n,
        "min_observations": min_observations,
        "exploratory": n < min_observations,
        "mean_return_pct": _finite(float(np.mean(values))) if n else None,
        "sd_return_pct": _finite(float(np.std(values, ddof=1))) if n > 1 else None,
    }
    if n < MIN_FIT_OBSERVATIONS:
        return {
            **summary,
            "status": "insufficient_data",
            "reason": f"{n} returns, a fit needs {MIN_FIT_OBSERVATIONS}",
        }
    from arch import arch_model

    with warning_log.capture("GARCH(1,1)"):
        model = arch_model(values, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
        fitted = model.fit(disp="off", options={"maxiter": maxiter})
        variance_forecast = fitted.forecast(horizon=horizon, reindex=False).variance.to_numpy()[-1]
    params = {name: float(value) for name, value in fitted.params.items()}
    omega, alpha, beta = params["omega"], params["alpha[1]"], params["beta[1]"]
    persistence = alpha + beta
    long_run_variance = omega / (1 - persistence) if persistence < PERSISTENCE_LIMIT else math.inf
    volatility_bounds = dict(
        zip(["omega", "alpha[1]", "beta[1]"], model.volatility.bounds(fitted.resid), strict=True)
    )
    on_bounds = parameters_on_bounds(params, volatility_bounds)
    if persistence >= PERSISTENCE_LIMIT:
        on_bounds["alpha[1]+beta[1]"] = "upper"
    long_run_monthly = _finite(math.sqrt(long_run_variance))
    return {
        **summary,
        "status": "ok",
        "params": params,
        "persistence": persistence,
        "converged": bool(fitted.convergence_flag == 0),
        "optimizer_message": str(fitted.optimization_result.message),
        "parameters_on_bounds": on_bounds,
        "long_run_volatility_monthly_pct": long_run_monthly,
        "conditional_variance_forecast": [float(v) for v in variance_forecast],
        "conditional_volatility_forecast_pct": [float(math.sqrt(v)) for v in variance_forecast],
        "log_likelihood": float(fitted.loglikelihood),
    }


def risk_summary(
    sales: pd.Series, horizon: int, min_observations: int, maxiter: int, warning_log: WarningLog
) -> dict[str, Any]:
    """The risk section of a report: the return method, its skipped months, the GARCH fit (monthly
    figures only) and the caveats a reader needs before using them."""
    import pandas as pd

    returns = monthly_returns(sales)
    result = fit_garch(returns.returns, horizon, min_observations, maxiter, warning_log)
    forecast_months = pd.date_range(sales.index[-1] + pd.offsets.MonthBegin(1), periods=horizon, freq="MS")
    return {
        "return_method": RETURN_METHOD,
        "skipped_zero_denominator_months": returns.skipped_zero_denominator,
        "horizon": horizon,
        "forecast_months": [m.strftime("%Y-%m") for m in forecast_months],
        **result,
        "caveats": risk_caveats(result, returns.skipped_zero_denominator),
    }


def risk_caveats(result: dict[str, Any], skipped: list[str]) -> list[str]:
    """Plain-language limits of a GARCH summary: sample size, parameters on bounds, convergence, zeros."""
    caveats = [
        "monthly figures only: changes of a seasonal sales level revert to the mean, so they are not "
        "annualised with the square root of 12"
    ]
    n, minimum = result["n_observations"], result["min_observations"]
    if result["exploratory"]:
        caveats.append(
            f"exploratory: {n} monthly returns, fewer than the {minimum} a GARCH fit needs to be trusted"
        )
    if result["status"] != "ok":
        caveats.append(f"not fitted: {result.get('reason')}")
    if result.get("parameters_on_bounds"):
        on_bounds = ", ".join(f"{k} ({v})" for k, v in result["parameters_on_bounds"].items())
        caveats.append(f"parameters on their bounds: {on_bounds}; the long-run volatility is not identified")
    if result.get("converged") is False:
        caveats.append(f"the optimiser did not converge: {result.get('optimizer_message')}")
    if skipped:
        caveats.append(f"{len(skipped)} return(s) after a month without sales are undefined and left out")
    return caveats
