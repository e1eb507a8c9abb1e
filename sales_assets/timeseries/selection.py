"""Choosing the shipped forecast: eligibility, the margin rule, and the one `Decision` whose fields make the
message, the JSON, the plot legend and the dashboard say the same thing.

The rule: among eligible candidates (every selection fit and the fit on all months estimated soundly),
ship the simplest one that the best is not better than by more than `min_improvement` in selection RMSE.
Simpler means a baseline before a SARIMA, then fewer estimated coefficients; so an exact tie goes to the
simpler model. The choice sees the selection origins only; the reported score is the shipped model's on
the later evaluation origins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sales_assets.timeseries.backtest import EVALUATION, SELECTION, OriginRun, Origins, actuals, run_candidate
from sales_assets.timeseries.forecast import BASELINE, SEASONAL_NAIVE, Candidate, Fit, forecast_errors
from sales_assets.timeseries.report_model import Decision, Errors

# Two RMSEs this close (relative) are a tie: sums of the same squared errors in another order differ in
# the last bits.
TIE_TOLERANCE = 1e-9
# The legend label of the shipped forecast in the plot; the report check looks for exactly this.
FORECAST_LABEL = "forecast: {model}"


def forecast_label(model: str) -> str:
    return FORECAST_LABEL.format(model=model)


def origin_span(origins: Sequence[str]) -> str:
    """`origin 2004-12` or `origins 2004-04 to 2004-06`: origins (YYYY-MM) as a reader says them."""
    return f"origin {origins[0]}" if len(origins) == 1 else f"origins {origins[0]} to {origins[-1]}"


def margin_rule(min_improvement: float) -> str:
    return (
        "ship the simplest eligible model (baselines before SARIMA, then fewer coefficients) unless the best "
        f"eligible model's selection RMSE is more than {min_improvement:.0%} lower; ties go to the simpler model"
    )


@dataclass(frozen=True)
class Selection:
    """The outcome of the choice: runs per phase, the final fit of the shipped model, and the decision."""

    runs: dict[str, dict[str, OriginRun]]  # phase -> candidate -> run
    final_fit: Fit
    # Candidates ruled out after the selection: the fit on all months failed or estimated nothing, or the
    # evaluation origins' fit failed.
    final_fit_problems: dict[str, list[str]]
    decision: Decision


def _summary(problems: Sequence[str], limit: int = 2) -> str:
    unique = list(dict.fromkeys(problems))
    more = f" (+{len(unique) - limit} more)" if len(unique) > limit else ""
    return "; ".join(unique[:limit]) + more


def _errors(run: OriginRun, actual: np.ndarray) -> Errors:
    return Errors(**forecast_errors(actual, run.forecasts))


def decision_reason(decision: Decision) -> str:
    """The message, built only from the decision's fields (the report check rebuilds and compares it)."""
    shipped, best = decision.shipped_model, decision.best_on_selection
    rmse = decision.selection_rmse
    if shipped == best:
        why = f"lowest selection RMSE ({rmse[shipped]:,.0f}) of {len(rmse)} eligible model(s)"
    elif rmse[shipped] <= rmse[best] * (1 + TIE_TOLERANCE):
        why = f"ties {best} on selection RMSE ({rmse[shipped]:,.0f}); ties go to the simpler model"
    else:
        why = (
            f"{best} is better on selection RMSE ({rmse[best]:,.0f} vs {rmse[shipped]:,.0f}) but by less "
            f"than the {decision.min_improvement:.0%} margin a more complex model needs"
        )
    parts = [f"Shipping {shipped} ({decision.shipped_kind}): {why}."]
    if decision.not_eligible:
        parts.append(
            f"Not eligible (a fit failed or estimated nothing): {', '.join(sorted(decision.not_eligible))}."
        )
    score = decision.reported_score
    versus = (
        f" vs seasonal naive {decision.seasonal_naive_score.rmse:,.0f}"
        if decision.seasonal_naive_score
        else ""
    )
    parts.append(
        f"Chosen on {origin_span(decision.chosen_on_origins)}; scored on the later "
        f"{origin_span(decision.reported_on_origins)}: RMSE {score.rmse:,.0f}{versus} ({score.points} points)."
    )
    return " ".join(parts)


def _pick(
    eligible: dict[str, float], candidates: Sequence[Candidate], min_improvement: float
) -> tuple[str, str]:
    """(shipped, best): the simplest eligible candidate the best does not beat by the margin."""
    best = min(eligible, key=eligible.get)
    # Simplest first; within one complexity the lower RMSE (then the settings order).
    ranked = sorted(
        (c for c in candidates if c.name in eligible), key=lambda c: (c.complexity, eligible[c.name])
    )
    for candidate in ranked:
        if eligible[best] >= (1 - min_improvement) * eligible[candidate.name] * (1 - TIE_TOLERANCE):
            return candidate.name, best
    return best, best


def choose(
    sales: np.ndarray,
    candidates: Sequence[Candidate],
    origins: Origins,
    month_labels: Sequence[str],
    steps: int,
    min_improvement: float,
) -> Selection:
    """Run the protocol on `sales` (one value per month, `month_labels` as YYYY-MM) and decide.

    Raises:
        ValueError: when no candidate is eligible (every baseline failed), naming each one's failure.
    """
    sales = np.asarray(sales, dtype=float)
    selection_actual = actuals(sales, origins.selection, origins.horizon)
    runs: dict[str, dict[str, OriginRun]] = {SELECTION: {}, EVALUATION: {}}
    not_eligible: dict[str, str] = {}
    final_fit_problems: dict[str, list[str]] = {}
    for candidate in candidates:
        run = run_candidate(sales, candidate, origins.selection, origins.horizon)
        runs[SELECTION][candidate.name] = run
        if not run.sound:
            not_eligible[candidate.name] = run.failure or _summary(run.problems)
    while True:
        eligible = {
            c.name: float(np.sqrt(np.mean((selection_actual - runs[SELECTION][c.name].forecasts) ** 2)))
            for c in candidates
            if c.name not in not_eligible
        }
        if not eligible:
            raise ValueError(f"backtest: no candidate is eligible to ship ({not_eligible})")
        shipped_name, best = _pick(eligible, candidates, min_improvement)
        shipped = next(c for c in candidates if c.name == shipped_name)
        try:
            final_fit = shipped.fit(sales, steps)
            problems = [f"fit on all {len(sales)} months: {p}" for p in final_fit.problems]
        except Exception as error:  # noqa: BLE001 - the next eligible candidate ships instead
            problems = [f"fit on all {len(sales)} months: {type(error).__name__}: {error}"]
        if not problems:
            shipped_run = run_candidate(sales, shipped, origins.evaluation, origins.horizon)
            if shipped_run.failure is None:
                break
            # Whether a fit runs at all is no score: a model that cannot be scored gives way to the next.
            problems = [f"evaluation {shipped_run.failure}"]
        final_fit_problems[shipped_name] = problems
        not_eligible[shipped_name] = _summary(problems)
    evaluation_actual = actuals(sales, origins.evaluation, origins.horizon)
    runs[EVALUATION][shipped_name] = shipped_run
    for candidate in candidates:
        if candidate.kind == BASELINE and candidate.name != shipped_name:
            runs[EVALUATION][candidate.name] = run_candidate(
                sales, candidate, origins.evaluation, origins.horizon
            )
    seasonal_run = runs[EVALUATION].get(SEASONAL_NAIVE)
    decision = Decision(
        shipped_model=shipped_name,
        shipped_kind=shipped.kind,
        reason="",
        margin_rule=margin_rule(min_improvement),
        min_improvement=min_improvement,
        best_on_selection=best,
        selection_rmse=eligible,
        not_eligible=not_eligible,
        chosen_on_origins=[month_labels[o] for o in origins.selection],
        reported_score=_errors(shipped_run, evaluation_actual),
        reported_on_origins=[month_labels[o] for o in origins.evaluation],
        seasonal_naive_score=_errors(seasonal_run, evaluation_actual)
        if seasonal_run is not None and seasonal_run.failure is None
        else None,
    )
    decision = decision.model_copy(update={"reason": decision_reason(decision)})
    return Selection(runs=runs, final_fit=final_fit, final_fit_problems=final_fit_problems, decision=decision)
