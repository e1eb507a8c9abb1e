"""Monthly forecasting: the baselines, SARIMA candidates, the rolling-origin backtest that chooses between
them, error metrics, and the shipped forecast with 80% and 95% intervals."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.statespace.sarimax import SARIMAX

from sales_assets.timeseries.series import SEASONAL_PERIOD

LAST_VALUE = "last_value"
SEASONAL_NAIVE = "seasonal_naive"
TRAINING_MEAN = "training_mean"
BASELINES = (LAST_VALUE, SEASONAL_NAIVE, TRAINING_MEAN)
INTERVAL_LEVELS = (80, 95)
# Models are chosen on RMSE: sales planning cares most about the large misses.
SELECTION_METRIC = "rmse"


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


# ---- SARIMA ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SarimaSpec:
    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int, int]

    @property
    def name(self) -> str:
        p, d, q = self.order
        sp, sd, sq, s = self.seasonal_order
        return f"SARIMA({p},{d},{q})({sp},{sd},{sq},{s})"

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


class WarningLog:
    """Collects warnings raised while fitting, so they land in the report once each instead of the log."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @contextmanager
    def capture(self, label: str) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                for record in records:
                    lines = str(record.message).strip().splitlines() or [""]
                    self.counts[f"{label}: {record.category.__name__}: {lines[0]}"] += 1

    def as_list(self) -> list[dict[str, Any]]:
        return [{"warning": text, "count": count} for text, count in self.counts.items()]


def fit_sarima(train: np.ndarray, spec: SarimaSpec, maxiter: int, warning_log: WarningLog) -> Any:
    """A fitted SARIMAX. Stationarity and invertibility are not enforced: on 20-odd months the enforced
    parameterisation often fails to converge, and the backtest judges the forecasts anyway."""
    with warning_log.capture(spec.name):
        model = SARIMAX(
            np.asarray(train, dtype=float),
            order=spec.order,
            seasonal_order=spec.seasonal_order,
            enforce_stationarity=False,
            enforce_invertibility=False,
        )
        return model.fit(disp=False, maxiter=maxiter)


def sarima_forecaster(
    spec: SarimaSpec, maxiter: int, warning_log: WarningLog
) -> Callable[[np.ndarray, int], np.ndarray]:
    def forecast(train: np.ndarray, steps: int) -> np.ndarray:
        # Differencing consumes d + D*s months; a fit needs at least a couple left.
        minimum = spec.order[1] + spec.seasonal_order[1] * spec.seasonal_order[3] + 2
        if len(train) < minimum:
            raise ValueError(
                f"{spec.name} needs at least {minimum} months of training data, got {len(train)}"
            )
        return np.asarray(fit_sarima(train, spec, maxiter, warning_log).forecast(steps), dtype=float)

    return forecast


# ---- metrics -----------------------------------------------------------------------------------------


def forecast_errors(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float | int | None]:
    """RMSE, MAE, MAPE and sMAPE (both in percent) with zero-safe denominators.

    MAPE is undefined where the actual is 0 (a month without orders): those points are left out and
    counted in `mape_points`; MAPE is None when no point is left. sMAPE counts a point where actual and
    forecast are both 0 as a perfect 0 rather than 0/0.
    """
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
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


# ---- backtest ----------------------------------------------------------------------------------------


@dataclass
class Candidate:
    name: str
    kind: str  # "baseline" or "sarima"
    forecast: Callable[[np.ndarray, int], np.ndarray]


def candidates_from_settings(
    sarima_candidates: Sequence[dict[str, Any]], maxiter: int, warning_log: WarningLog
) -> list[Candidate]:
    """The three baselines followed by every SARIMA candidate of the settings."""
    baselines = [Candidate(name, "baseline", BASELINE_FORECASTERS[name]) for name in BASELINES]
    specs = [SarimaSpec.from_setting(candidate) for candidate in sarima_candidates]
    return baselines + [
        Candidate(s.name, "sarima", sarima_forecaster(s, maxiter, warning_log)) for s in specs
    ]


def _non_negative(values: np.ndarray) -> np.ndarray:
    # Monthly sales cannot be negative; a forecast below 0 is floored in the backtest and when shipped.
    return np.maximum(np.asarray(values, dtype=float), 0.0)


@dataclass
class BacktestResult:
    horizon: int
    origins: list[int]  # index of the first forecast month of each origin
    metrics: pd.DataFrame  # one row per successful candidate
    forecasts: dict[str, list[np.ndarray]]  # candidate -> forecast per origin
    failures: dict[str, str] = field(default_factory=dict)

    def residuals(self, name: str, actual: np.ndarray) -> np.ndarray:
        """(origins x horizon) actual minus forecast of one candidate."""
        return np.array(
            [
                actual[o : o + self.horizon] - f
                for o, f in zip(self.origins, self.forecasts[name], strict=True)
            ]
        )


def backtest_origins(length: int, horizon: int, origins: int, step: int) -> list[int]:
    """Forecast start indices, the last one leaving exactly `horizon` months to test."""
    last = length - horizon
    return [last - step * k for k in reversed(range(origins))]


def rolling_origin_backtest(
    sales: np.ndarray, candidates: Sequence[Candidate], horizon: int, origins: int, step: int = 1
) -> BacktestResult:
    """Fit every candidate on each expanding window and forecast the next `horizon` months.

    Metrics pool the errors of all origins. A candidate that fails on any origin is left out of the
    metrics and named in `failures` with its error, rather than judged on fewer origins than the others.
    """
    sales = np.asarray(sales, dtype=float)
    starts = backtest_origins(len(sales), horizon, origins, step)
    if starts[0] < 1:
        raise ValueError(
            f"backtest: {len(sales)} months cannot hold {origins} origins {step} month(s) apart with horizon {horizon}"
        )
    actual = np.concatenate([sales[s : s + horizon] for s in starts])
    forecasts: dict[str, list[np.ndarray]] = {}
    failures: dict[str, str] = {}
    for candidate in candidates:
        try:
            forecasts[candidate.name] = [
                _non_negative(candidate.forecast(sales[:s], horizon)) for s in starts
            ]
        except Exception as error:  # noqa: BLE001 - one failing candidate must not sink the others
            failures[candidate.name] = f"{type(error).__name__}: {error}"
    kinds = {c.name: c.kind for c in candidates}
    rows = []
    for name, per_origin in forecasts.items():
        row = {"model": name, "kind": kinds[name], **forecast_errors(actual, np.concatenate(per_origin))}
        row["rmse_by_origin"] = [
            float(np.sqrt(np.mean((sales[s : s + horizon] - f) ** 2)))
            for s, f in zip(starts, per_origin, strict=True)
        ]
        rows.append(row)
    metrics = pd.DataFrame(rows)
    for baseline in BASELINES:
        if baseline in forecasts:
            reference = float(metrics.loc[metrics["model"] == baseline, SELECTION_METRIC].iloc[0])
            metrics[f"improvement_vs_{baseline}"] = (
                1 - metrics[SELECTION_METRIC] / reference if reference > 0 else np.nan
            )
    return BacktestResult(
        horizon=horizon, origins=starts, metrics=metrics, forecasts=forecasts, failures=failures
    )


# ---- the shipped forecast ----------------------------------------------------------------------------


@dataclass
class Decision:
    shipped_model: str
    shipped_kind: str
    best_baseline: str
    best_sarima: str | None
    sarima_beats_seasonal_naive: bool
    min_improvement: float
    message: str


def choose_model(backtest: BacktestResult, min_improvement: float) -> Decision:
    """Ship the best SARIMA only when its backtest RMSE beats the best baseline's by `min_improvement`
    (a fraction); otherwise ship the best baseline. Either way the shipped forecast is never worse than
    seasonal naive in the backtest.

    The margin is there because a few dozen test points cannot tell apart models within a few percent,
    and a SARIMA that nests a baseline (an IMA(1,1) is nearly a mean) wins such ties half the time by chance.
    """
    metrics = backtest.metrics.set_index("model")[["kind", SELECTION_METRIC]]
    ranked = metrics.sort_values(SELECTION_METRIC, kind="stable")
    baselines, sarimas = ranked[ranked["kind"] == "baseline"], ranked[ranked["kind"] == "sarima"]
    if baselines.empty:
        raise ValueError(f"backtest: every baseline failed ({backtest.failures}); nothing safe to ship")
    best_baseline, baseline_rmse = str(baselines.index[0]), float(baselines[SELECTION_METRIC].iloc[0])
    seasonal_rmse = (
        float(metrics.loc[SEASONAL_NAIVE, SELECTION_METRIC]) if SEASONAL_NAIVE in metrics.index else None
    )
    best_sarima = str(sarimas.index[0]) if len(sarimas) else None
    sarima_rmse = float(sarimas[SELECTION_METRIC].iloc[0]) if len(sarimas) else math.inf
    beats_seasonal = best_sarima is not None and (seasonal_rmse is None or sarima_rmse < seasonal_rmse)
    ships_sarima = best_sarima is not None and sarima_rmse <= (1 - min_improvement) * baseline_rmse
    versus = (
        f"RMSE {sarima_rmse:,.0f} vs {seasonal_rmse:,.0f}"
        if seasonal_rmse is not None
        else "no seasonal naive"
    )
    if best_sarima is None:
        message = (
            f"No SARIMA candidate could be fitted on every origin; shipping the baseline {best_baseline}."
        )
    elif not beats_seasonal:
        message = f"No SARIMA beats seasonal naive in the backtest (best: {best_sarima}, {versus}); shipping the baseline {best_baseline}."
    elif not ships_sarima:
        message = (
            f"{best_sarima} beats seasonal naive ({versus}) but not the best baseline {best_baseline} by "
            f"{min_improvement:.0%} (RMSE {sarima_rmse:,.0f} vs {baseline_rmse:,.0f}); shipping the baseline {best_baseline}."
        )
    else:
        message = (
            f"{best_sarima} beats seasonal naive ({versus}) and the best baseline {best_baseline} by "
            f"{1 - sarima_rmse / baseline_rmse:.0%} (RMSE {baseline_rmse:,.0f}); shipping {best_sarima}."
        )
    shipped = best_sarima if ships_sarima else best_baseline
    return Decision(
        shipped_model=shipped,
        shipped_kind=str(metrics.loc[shipped, "kind"]),
        best_baseline=best_baseline,
        best_sarima=best_sarima,
        sarima_beats_seasonal_naive=bool(beats_seasonal),
        min_improvement=min_improvement,
        message=message,
    )


def forecast_index(history: pd.Series, steps: int) -> pd.DatetimeIndex:
    return pd.date_range(history.index[-1] + pd.offsets.MonthBegin(1), periods=steps, freq="MS", name="month")


def residual_scale_by_step(residuals: np.ndarray, steps: int) -> np.ndarray:
    """Forecast-error scale per step ahead: RMSE of the backtest residuals at that step, never shrinking
    with the horizon, and held at the last tested step beyond the backtest horizon."""
    per_step = np.maximum.accumulate(np.sqrt(np.mean(residuals**2, axis=0)))
    return np.array([per_step[min(step, len(per_step) - 1)] for step in range(steps)])


def shipped_forecast(
    history: pd.Series,
    decision: Decision,
    backtest: BacktestResult,
    candidates: Sequence[Candidate],
    sarima_specs: dict[str, SarimaSpec],
    steps: int,
    maxiter: int,
    warning_log: WarningLog,
) -> tuple[pd.DataFrame, str]:
    """The next `steps` months from the full history with 80% and 95% intervals, and how they were made.

    A SARIMA's intervals come from its state-space forecast variance. A baseline has no model variance,
    so its intervals are normal bands whose scale is the backtest RMSE at each step ahead.
    """
    values = history.to_numpy(dtype=float)
    frame = pd.DataFrame(index=forecast_index(history, steps))
    if decision.shipped_kind == "sarima":
        fitted = fit_sarima(values, sarima_specs[decision.shipped_model], maxiter, warning_log)
        prediction = fitted.get_forecast(steps)
        frame["forecast"] = np.asarray(prediction.predicted_mean, dtype=float)
        for level in INTERVAL_LEVELS:
            bounds = np.asarray(prediction.conf_int(alpha=1 - level / 100), dtype=float)
            frame[f"lower_{level}"], frame[f"upper_{level}"] = bounds[:, 0], bounds[:, 1]
        method = "SARIMA state-space forecast variance (Gaussian)"
    else:
        forecaster = next(c for c in candidates if c.name == decision.shipped_model).forecast
        frame["forecast"] = forecaster(values, steps)
        scale = residual_scale_by_step(backtest.residuals(decision.shipped_model, values), steps)
        for level in INTERVAL_LEVELS:
            z = float(norm.ppf(0.5 + level / 200))
            frame[f"lower_{level}"] = frame["forecast"] - z * scale
            frame[f"upper_{level}"] = frame["forecast"] + z * scale
        method = (
            f"normal bands from the backtest RMSE per step ahead ({len(backtest.origins)} origins), "
            "non-decreasing with the horizon"
        )
    frame = frame.clip(lower=0.0)
    return frame, method + "; forecasts and lower bounds floored at 0 (sales are non-negative)"
