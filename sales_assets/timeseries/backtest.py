"""The nested rolling-origin protocol: selection origins on which models are chosen, and later evaluation
origins, whose forecast months all come after every month the choice saw, on which the choice is scored.

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
    """Selection and evaluation origins of one series. The last selection forecast month lies before the
    first evaluation origin, so no month an evaluation scores took part in the choice."""

    horizon: int
    selection: list[int]
    evaluation: list[int]

    def of(self, phase: str) -> list[int]:
        return self.selection if phase == SELECTION else self.evaluation


def required_months(horizon: int, selection_origins: int, evaluation_origins: int, step: int) -> int:
    """Months a series needs for the protocol: a year of training (seasonal naive) before the first
    selection origin, the selection windows, then the evaluation windows after them."""
    return (
        SEASONAL_PERIOD + (selection_origins - 1) * step + horizon + (evaluation_origins - 1) * step + horizon
    )


def nested_origins(
    length: int, horizon: int, selection_origins: int, evaluation_origins: int, step: int
) -> Origins:
    """Evaluation origins step back from the end (the last leaves exactly `horizon` months); selection
    origins step back from `horizon` months before the first evaluation origin.

    Raises:
        ValueError: when `length` months cannot hold the protocol (see `required_months`).
    """
    if min(horizon, selection_origins, evaluation_origins, step) < 1:
        raise ValueError(
            "backtest: horizon, selection_origins, evaluation_origins and backtest_origin_step must be at least 1"
        )
    needed = required_months(horizon, selection_origins, evaluation_origins, step)
    if length < needed:
        raise ValueError(
            f"backtest: {length} months cannot hold {selection_origins} selection and {evaluation_origins} "
            f"evaluation origins {step} month(s) apart with horizon {horizon}; that needs {needed}"
        )
    last = length - horizon
    evaluation = [last - step * k for k in reversed(range(evaluation_origins))]
    selection = [evaluation[0] - horizon - step * k for k in reversed(range(selection_origins))]
    return Origins(horizon=horizon, selection=selection, evaluation=evaluation)


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


def run_candidate(sales: np.ndarray, candidate: Candidate, origins: Sequence[int], horizon: int) -> OriginRun:
    """Fit `candidate` on each expanding window `sales[:origin]` and forecast `horizon` months."""
    forecasts, problems = [], []
    for origin in origins:
        try:
            fit = candidate.fit(np.asarray(sales[:origin], dtype=float), horizon)
        except Exception as error:  # noqa: BLE001 - one failing candidate must not sink the others
            return OriginRun(forecasts=None, failure=f"origin {origin}: {type(error).__name__}: {error}")
        forecasts.append(non_negative(fit.forecast))
        problems += [f"origin {origin}: {problem}" for problem in fit.problems]
    return OriginRun(forecasts=np.array(forecasts), problems=tuple(problems))


def actuals(sales: np.ndarray, origins: Sequence[int], horizon: int) -> np.ndarray:
    """(origins, horizon) of the months each origin forecasts."""
    return np.array([sales[origin : origin + horizon] for origin in origins], dtype=float)
