"""Monthly forecasters: the baselines, statsforecast's automatic models, SARIMA candidates with a verdict
on whether their fit estimated anything, the error metrics, and the log that gathers third-party warnings
once per report.

statsmodels and statsforecast are imported inside the fits, so importing this module costs numpy only.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sales_assets.timeseries.series import SEASONAL_PERIOD

LAST_VALUE = "last_value"
SEASONAL_NAIVE = "seasonal_naive"
TRAINING_MEAN = "training_mean"
BASELINES = (LAST_VALUE, SEASONAL_NAIVE, TRAINING_MEAN)
BASELINE = "baseline"
SARIMA = "sarima"
STATSFORECAST = "statsforecast"
# statsforecast's automatic models (Hyndman & Khandakar 2008 for AutoARIMA and AutoETS; Fiorucci et al.
# 2016 for AutoTheta) with their rank for ties, simplest first: Theta's two parameters, then ETS, then
# ARIMA.
STATSFORECAST_MODELS = {"AutoTheta": 2, "AutoETS": 3, "AutoARIMA": 4}
# AutoARIMA's search, narrowed so that the backfill keeps its CPU budget (BENCHMARKS.md, issue 26):
# statsforecast's default (orders up to 5, stepwise, CSS then maximum likelihood) took 0.15 CPU-s a fit
# here, ten times the others; this one about 0.025. Its forecasts on 2 years of history are worse than
# the default search's (geometric mean 2.00 against 1.63 of seasonal naive's RMSE on the real file). Every (p,q)(P,Q) with each order at most 1 and p+q+P+Q <= 2 is tried
# (no stepwise path to wander), the differencing orders come from its unit-root (KPSS) and seasonal
# tests as before, and each is estimated by conditional sum of squares only. On fewer than 25 months
# statsforecast allows no seasonal term or seasonal difference at all (it needs two seasons), so the
# larger orders only fitted noise on this data.
AUTO_ARIMA_SEARCH = {
    "max_p": 1,
    "max_q": 1,
    "max_P": 1,
    "max_Q": 1,
    "max_order": 2,
    "stepwise": False,
    "method": "CSS",
}
# Models are chosen on RMSE: sales planning cares most about the large misses.
SELECTION_METRIC = "rmse"
# statsmodels' own words for a fit that could not estimate its seasonal parameters (it sets them to 0).
TOO_FEW_OBSERVATIONS = "Too few observations"
# Largest gradient of the mean negative log-likelihood at which a stopped optimiser still sits at the optimum.
GRADIENT_TOLERANCE = 1e-4


# ---- baselines ---------------------------------------------------------------------------------------


def forecast_last_value(train: np.ndarray, steps: int) -> np.ndarray:
    """Naive: every future month equals the last observed month."""
    return np.full(steps, float(train[-1]))


def forecast_seasonal_naive(train: np.ndarray, steps: int, period: int = SEASONAL_PERIOD) -> np.ndarray:
    """Each future month equals the same month a year earlier (the last observed season repeated)."""
    if len(train) < period:
        raise ValueError(f"seasonal naive needs at least {period} months of training data, got {len(train)}")
    last_season = np.asarray(train[-period:], dtype=float)
    return np.array([last_season[step % period] for step in range(steps)])


def forecast_training_mean(train: np.ndarray, steps: int) -> np.ndarray:
    """Every future month equals the mean of the training months."""
    return np.full(steps, float(np.mean(train)))


BASELINE_FORECASTERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    LAST_VALUE: forecast_last_value,
    SEASONAL_NAIVE: forecast_seasonal_naive,
    TRAINING_MEAN: forecast_training_mean,
}


# ---- warnings ----------------------------------------------------------------------------------------


class WarningLog:
    """Counts the warnings raised while fitting, so each lands once in the report (and the asset's
    metadata) with its count, instead of once per fit in the run log."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @contextmanager
    def capture(self, label: str) -> Iterator[list[str]]:
        """Record the warnings of the block under `label`; the yielded list holds them (as
        `Category: first line`) once the block has finished."""
        seen: list[str] = []
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            try:
                yield seen
            finally:
                for record in records:
                    lines = str(record.message).strip().splitlines() or [""]
                    seen.append(f"{record.category.__name__}: {lines[0]}")
                    self.counts[f"{label}: {seen[-1]}"] += 1

    def as_list(self) -> list[dict[str, Any]]:
        return [{"warning": text, "count": count} for text, count in self.counts.items()]


# ---- fits --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """One forecast from one training window, and why its estimate cannot be trusted (empty: sound)."""

    forecast: np.ndarray
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class SarimaSpec:
    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int, int]

    @property
    def name(self) -> str:
        p, d, q = self.order
        sp, sd, sq, s = self.seasonal_order
        return f"SARIMA({p},{d},{q})({sp},{sd},{sq},{s})"

    @property
    def parameters(self) -> int:
        """Estimated AR and MA coefficients (p + q + P + Q), the measure of complexity for ties."""
        return self.order[0] + self.order[2] + self.seasonal_order[0] + self.seasonal_order[2]

    @property
    def min_train(self) -> int:
        # Differencing consumes d + D*s months; a fit needs at least a couple left.
        return self.order[1] + self.seasonal_order[1] * self.seasonal_order[3] + 2

    @classmethod
    def from_setting(cls, candidate: dict[str, Any]) -> SarimaSpec:
        """One entry of `settings.timeseries.sarima_candidates`: {"order": [p,d,q], "seasonal_order": [P,D,Q,s]}."""
        try:
            order = tuple(int(v) for v in candidate["order"])
            seasonal_order = tuple(int(v) for v in candidate["seasonal_order"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"timeseries.sarima_candidates entry {candidate!r}: expected "
                "{'order': [p, d, q], 'seasonal_order': [P, D, Q, s]} of integers"
            ) from error
        if len(order) != 3 or len(seasonal_order) != 4:
            raise ValueError(
                f"timeseries.sarima_candidates entry {candidate!r}: order needs 3 integers, seasonal_order 4"
            )
        return cls(order=order, seasonal_order=seasonal_order)  # type: ignore[arg-type]


def fit_problems(
    param_names: Sequence[str],
    params: np.ndarray,
    converged: bool,
    seen: Sequence[str],
    ar_roots: np.ndarray | None = None,
) -> tuple[str, ...]:
    """Why a SARIMA fit estimated nothing one can trust: statsmodels' too-few-observations warning among the
    `seen` warnings (it then sets every coefficient to 0), no convergence, coefficients left at exactly 0,
    non-finite values, or an explosive AR part (a root of the AR polynomial, seasonal factors included,
    on or inside the unit circle: with stationarity not enforced, such a fit's forecasts run away)."""
    problems = []
    if any(TOO_FEW_OBSERVATIONS in text for text in seen):
        problems.append("too few observations to estimate the seasonal coefficients")
    if not converged:
        problems.append("the likelihood optimisation did not converge")
    zeroed = [
        name for name, value in zip(param_names, params, strict=True) if name != "sigma2" and value == 0.0
    ]
    if zeroed:
        problems.append(f"coefficients left at 0: {', '.join(zeroed)}")
    if not np.all(np.isfinite(params)):
        problems.append("non-finite parameter estimates")
    if ar_roots is not None and np.size(ar_roots) and bool(np.any(np.abs(ar_roots) <= 1.0)):
        problems.append("explosive AR estimate (a root on or inside the unit circle)")
    return tuple(problems)


def optimiser_converged(retvals: dict[str, Any]) -> bool:
    """statsmodels' verdict, except that L-BFGS's "abnormal termination in line search" (warnflag 2) at a
    vanishing gradient means the starting values were already the optimum, not that the fit failed."""
    if retvals.get("converged", True):
        return True
    gradient = np.asarray(retvals.get("gopt", [np.inf]), dtype=float)
    return retvals.get("warnflag") == 2 and bool(np.max(np.abs(gradient)) < GRADIENT_TOLERANCE)


def fit_sarima(
    train: np.ndarray, spec: SarimaSpec, maxiter: int, warning_log: WarningLog
) -> tuple[Any, tuple[str, ...]]:
    """A fitted statsmodels `SARIMAXResults` and the problems of its estimate (see `fit_problems`).

    Stationarity and invertibility are not enforced: on 20-odd months the enforced parameterisation
    often fails to converge, and the backtest judges the forecasts anyway.
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    with warning_log.capture(spec.name) as seen:
        model = SARIMAX(
            np.asarray(train, dtype=float),
            order=spec.order,
            seasonal_order=spec.seasonal_order,
            enforce_stationarity=False,
            enforce_invertibility=False,
        )
        fitted = model.fit(disp=False, maxiter=maxiter)
        # Inverting a zero coefficient's root divides by zero: counted with the fit's other warnings.
        ar_roots = np.asarray(fitted.arroots)
    converged = optimiser_converged(fitted.mle_retvals or {})
    params = np.asarray(fitted.params, dtype=float)
    return fitted, fit_problems(list(fitted.param_names), params, converged, seen, ar_roots)


# ---- candidates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A forecaster that competes in the backtest. `parameters` counts estimated coefficients; with
    `kind` it orders candidates from simple to complex (seasonal naive, the other baselines, then fitted
    models) so that ties go to the simpler."""

    name: str
    kind: str  # BASELINE, STATSFORECAST or SARIMA
    parameters: int
    fit: Callable[[np.ndarray, int], Fit] = field(repr=False)

    @property
    def complexity(self) -> tuple[int, int]:
        # Seasonal naive is the reference every other model must beat (by the margin) to ship, the other
        # baselines included: on monthly sales the season is the one structure known in advance.
        rank = 0 if self.name == SEASONAL_NAIVE else 1 if self.kind == BASELINE else 2
        return (rank, self.parameters)


def baseline_candidate(name: str) -> Candidate:
    forecaster = BASELINE_FORECASTERS[name]
    return Candidate(name, BASELINE, 0, lambda train, steps: Fit(forecaster(train, steps)))


def sarima_candidate(spec: SarimaSpec, maxiter: int, warning_log: WarningLog) -> Candidate:
    def fit(train: np.ndarray, steps: int) -> Fit:
        if len(train) < spec.min_train:
            raise ValueError(
                f"{spec.name} needs at least {spec.min_train} months of training data, got {len(train)}"
            )
        fitted, problems = fit_sarima(train, spec, maxiter, warning_log)
        with warning_log.capture(spec.name):  # overflow of a runaway forecast lands in the report too
            forecast = np.asarray(fitted.forecast(steps), dtype=float)
        if not np.all(np.isfinite(forecast)):
            problems = (*problems, "non-finite forecast")
        return Fit(forecast, problems)

    return Candidate(spec.name, SARIMA, spec.parameters, fit)


def statsforecast_candidate(name: str, warning_log: WarningLog) -> Candidate:
    """statsforecast's `AutoTheta`, `AutoETS` or `AutoARIMA` (its search narrowed to
    `AUTO_ARIMA_SEARCH`) with a yearly season; the model it selects on each training window is its own
    (information criteria), the backtest judges the forecasts.

    Raises:
        ValueError: `name` is not one of `STATSFORECAST_MODELS`.
    """
    if name not in STATSFORECAST_MODELS:
        raise ValueError(
            f"timeseries.statsforecast_candidates entry {name!r}: expected one of {sorted(STATSFORECAST_MODELS)}"
        )

    def fit(train: np.ndarray, steps: int) -> Fit:
        if len(train) < SEASONAL_PERIOD:
            raise ValueError(
                f"{name} needs at least {SEASONAL_PERIOD} months of training data, got {len(train)}"
            )
        from statsforecast import models

        with warning_log.capture(name):
            search = AUTO_ARIMA_SEARCH if name == "AutoARIMA" else {}
            model = getattr(models, name)(season_length=SEASONAL_PERIOD, **search)
            forecast = np.asarray(
                model.forecast(y=np.asarray(train, dtype=float), h=steps)["mean"], dtype=float
            )
        return Fit(forecast, () if np.all(np.isfinite(forecast)) else ("non-finite forecast",))

    return Candidate(name, STATSFORECAST, STATSFORECAST_MODELS[name], fit)


def candidates_from_settings(
    sarima_candidates: Sequence[dict[str, Any]],
    maxiter: int,
    warning_log: WarningLog,
    statsforecast_candidates: Sequence[str] = (),
) -> list[Candidate]:
    """The three baselines, then the statsforecast models, then every SARIMA candidate of the settings."""
    specs = [SarimaSpec.from_setting(candidate) for candidate in sarima_candidates]
    return [
        *(baseline_candidate(name) for name in BASELINES),
        *(statsforecast_candidate(name, warning_log) for name in statsforecast_candidates),
        *(sarima_candidate(spec, maxiter, warning_log) for spec in specs),
    ]


# ---- metrics -----------------------------------------------------------------------------------------


def forecast_errors(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float | int | None]:
    """RMSE, MAE, MAPE and sMAPE (both in percent) with zero-safe denominators.

    MAPE is undefined where the actual is 0 (a month without orders): those points are left out and
    counted in `mape_points`; MAPE is None when no point is left. sMAPE counts a point where actual and
    forecast are both 0 as a perfect 0 rather than 0/0.
    """
    actual = np.asarray(actual, dtype=float).ravel()
    predicted = np.asarray(predicted, dtype=float).ravel()
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(
            f"errors: actual {actual.shape} and predicted {predicted.shape} must be equal and non-empty"
        )
    error = actual - predicted
    nonzero = actual != 0
    mape = float(np.mean(np.abs(error[nonzero]) / np.abs(actual[nonzero])) * 100) if nonzero.any() else None
    denominator = np.abs(actual) + np.abs(predicted)
    smape_terms = np.divide(2 * np.abs(error), denominator, out=np.zeros_like(error), where=denominator > 0)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": mape,
        "smape": float(np.mean(smape_terms) * 100),
        "points": int(actual.size),
        "mape_points": int(nonzero.sum()),
    }
