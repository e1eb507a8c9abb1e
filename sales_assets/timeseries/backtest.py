"""The rolling-origin protocol: at each evaluation origin a model is chosen on selection origins whose
forecast months all come before it, and that choice is scored on the months from the origin on.

An origin is the index of the first forecast month; the model is fitted on every month before it
(an expanding window) and forecasts `horizon` months.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sales_assets.timeseries.forecast import Candidate
from sales_assets.timeseries.series import SEASONAL_PERIOD

SELECTION = "selection"
EVALUATION = "evaluation"


@dataclass(frozen=True)
class Origins:
    """The rolling origins of one series. Each evaluation origin is scored on a choice made on its own
    selection origins, whose forecast months all lie before it; the shipped forecast (origin `final`, the
    series' length) is chosen the same way on the last selection origins.

    `configured` is the number of evaluation origins the settings asked for; a short series gets fewer.
    """

    horizon: int
    step: int
    selection_count: int
    evaluation: list[int]
    final: int
    configured: int

    @property
    def season_count(self) -> int:
        """Selection origins whose forecast months together span a season (`SEASONAL_PERIOD` months)."""
        return -(-max(SEASONAL_PERIOD - self.horizon, 0) // self.step) + 1

    def selection_for(self, origin: int) -> list[int]:
        """The selection origins of a choice made at `origin`: the last one leaves exactly `horizon`
        months before it; there are `selection_count`, or more where the history allows, up to
        `season_count`, so that the forecast months they score span a season. None is earlier than
        `SEASONAL_PERIOD` (every candidate needs a year of training; `rolling_origins` guarantees
        `selection_count` of them)."""
        latest = origin - self.horizon
        count = max(self.selection_count, min(self.season_count, (latest - SEASONAL_PERIOD) // self.step + 1))
        return [latest - self.step * k for k in reversed(range(count))]

    def calendar_months(self, selection_origins: Sequence[int]) -> int:
        """Distinct calendar months among the forecast months of `selection_origins` (of 12)."""
        return len({(o + k) % SEASONAL_PERIOD for o in selection_origins for k in range(self.horizon)})

    @property
    def selection(self) -> list[int]:
        """The selection origins of the shipped forecast's choice."""
        return self.selection_for(self.final)

    @property
    def calibrated(self) -> list[int]:
        """The origins whose errors calibrate the intervals: the evaluation origins and the last
        `selection_count` selection origins of every choice. Fits on the shorter histories of a choice's
        further selection origins miss by more than a fit on all months does, and their errors would widen
        the shipped intervals past nominal (86% at 80% on simulated SARIMA series, test_intervals.py)."""
        chosen_at = [*self.evaluation, self.final]
        nearest = (o for at in chosen_at for o in self.selection_for(at)[-self.selection_count :])
        return sorted({*self.evaluation, *nearest})

    @property
    def backtested(self) -> list[int]:
        """Every origin a candidate is fitted at: the evaluation origins and every choice's selection origins."""
        chosen_at = [*self.evaluation, self.final]
        return sorted({*self.evaluation, *(o for at in chosen_at for o in self.selection_for(at))})


def required_months(horizon: int, selection_origins: int, evaluation_origins: int, step: int) -> int:
    """Months a series needs for the protocol: a year of training (seasonal naive) before the first
    selection origin, the selection windows, then the evaluation origins after them."""
    return (
        SEASONAL_PERIOD + (selection_origins - 1) * step + horizon + (evaluation_origins - 1) * step + horizon
    )


def rolling_origins(
    length: int, horizon: int, selection_origins: int, evaluation_origins: int, step: int
) -> Origins:
    """Evaluation origins step back from the end (the last leaves exactly `horizon` months); a series too
    short for `evaluation_origins` of them gets as many as fit (`Origins.evaluation` says how many).

    Raises:
        ValueError: when `length` months cannot hold even one evaluation origin (see `required_months`).
    """
    if min(horizon, selection_origins, evaluation_origins, step) < 1:
        raise ValueError(
            "backtest: horizon, selection_origins, evaluation_origins and backtest_origin_step must be at least 1"
        )
    needed = required_months(horizon, selection_origins, 1, step)
    if length < needed:
        raise ValueError(
            f"backtest: {length} months cannot hold {selection_origins} selection origins and one evaluation "
            f"origin {step} month(s) apart with horizon {horizon}; that needs {needed}"
        )
    fitting = min(evaluation_origins, (length - needed) // step + 1)
    last = length - horizon
    return Origins(
        horizon=horizon,
        step=step,
        selection_count=selection_origins,
        evaluation=[last - step * k for k in reversed(range(fitting))],
        final=length,
        configured=evaluation_origins,
    )


@dataclass(frozen=True)
class OriginRun:
    """One candidate over a set of origins: a forecast per origin (floored at 0), the problems of its fits
    (`origin index: problem`), or the error that stopped it."""

    forecasts: np.ndarray | None  # (origins, horizon)
    problems: tuple[str, ...] = ()
    failure: str | None = None

    @property
    def sound(self) -> bool:
        return self.failure is None and not self.problems


def non_negative(values: np.ndarray) -> np.ndarray:
    # Monthly sales cannot be negative; a forecast below 0 is floored in the backtest and when shipped.
    return np.maximum(np.asarray(values, dtype=float), 0.0)


def fit_at_origins(
    sales: np.ndarray, candidate: Candidate, origins: Sequence[int], horizon: int
) -> dict[int, OriginRun]:
    """Fit `candidate` on each expanding window `sales[:origin]` and forecast `horizon` months: one
    single-row run per origin, so a fit that fails at one origin rules the candidate out only of the
    choices that use that origin."""
    runs = {}
    for origin in origins:
        try:
            fit = candidate.fit(np.asarray(sales[:origin], dtype=float), horizon)
        except Exception as error:  # noqa: BLE001 - one failing candidate must not sink the others
            runs[origin] = OriginRun(
                forecasts=None, failure=f"origin {origin}: {type(error).__name__}: {error}"
            )
            continue
        runs[origin] = OriginRun(
            forecasts=non_negative(fit.forecast)[np.newaxis, :],
            problems=tuple(f"origin {origin}: {problem}" for problem in fit.problems),
        )
    return runs


def combine(runs: Sequence[OriginRun]) -> OriginRun:
    """Single-origin runs as one run over their origins (in order); the first failure fails it."""
    failure = next((run.failure for run in runs if run.failure is not None), None)
    if failure is not None:
        return OriginRun(forecasts=None, failure=failure)
    return OriginRun(
        forecasts=np.vstack([run.forecasts for run in runs]),
        problems=tuple(problem for run in runs for problem in run.problems),
    )


def actuals(sales: np.ndarray, origins: Sequence[int], horizon: int) -> np.ndarray:
    """(origins, horizon) of the months each origin forecasts."""
    return np.array([sales[origin : origin + horizon] for origin in origins], dtype=float)
