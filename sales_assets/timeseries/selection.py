"""Choosing the shipped forecast: eligibility, the margin rule, the same choice made at every evaluation
origin on months before it, and the one `Decision` whose fields make the message, the JSON, the plot
legend and the dashboard say the same thing.

The rule: among eligible candidates (every fit at the choice's selection origins, and the fit at the
origin the choice is for, estimated soundly), ship the simplest one that the best is not better than by
more than `min_improvement` in selection RMSE. Simpler means seasonal naive, then the other baselines,
then fitted models, then fewer estimated coefficients; so an exact tie goes to the simpler model. Where
the selection forecasts cover fewer than 12 calendar months, seasonal naive ships (when sound): a model
that ignores the season wins such a window by missing only the months where the season does not matter
(the training mean beat seasonal naive on January to August and then missed every November peak; issue
26). The reported score is the mean over the evaluation origins of the RMSE of what the rule chose there,
each choice made only on data before its origin (Tashman 2000, "Out-of-sample tests of forecasting
accuracy", IJF 16(4): rolling origins).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sales_assets.timeseries.backtest import OriginRun, Origins, actuals, combine, fit_at_origins
from sales_assets.timeseries.forecast import BASELINE, SEASONAL_NAIVE, Candidate, Fit
from sales_assets.timeseries.report_model import Decision, Evaluation, OriginScore
from sales_assets.timeseries.series import SEASONAL_PERIOD

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
        "ship the simplest eligible model (seasonal naive, then the other baselines, then fitted models, "
        f"then fewer coefficients) unless the best eligible model's selection RMSE is more than "
        f"{min_improvement:.0%} lower; ties go to the simpler model; seasonal naive ships where the "
        f"selection forecasts cover fewer than {SEASONAL_PERIOD} calendar months"
    )


@dataclass(frozen=True)
class Choice:
    """One application of the rule at one origin: what ships, the best on selection, the selection RMSE of
    the eligible candidates, why the others were not eligible, and the shipped model's fit at the origin."""

    origin: int
    shipped: Candidate
    best: str
    selection_rmse: dict[str, float]
    not_eligible: dict[str, str]
    fit_problems: dict[str, list[str]]  # candidates ruled out by their fit at the origin itself
    fit: Fit
    calendar_months: int  # distinct calendar months the selection forecasts cover (of 12)

    @property
    def full_season(self) -> bool:
        return self.calendar_months >= SEASONAL_PERIOD


@dataclass(frozen=True)
class Selection:
    """The outcome: every candidate's backtest runs (origin -> run), the choice made at each evaluation
    origin and for the shipped forecast, and the decision."""

    runs: dict[str, dict[int, OriginRun]]  # candidate -> origin -> single-origin run
    at_origins: list[Choice]
    shipped: Choice
    decision: Decision

    @property
    def final_fit(self) -> Fit:
        return self.shipped.fit

    @property
    def final_fit_problems(self) -> dict[str, list[str]]:
        return self.shipped.fit_problems


def _summary(problems: Sequence[str], limit: int = 2) -> str:
    unique = list(dict.fromkeys(problems))
    more = f" (+{len(unique) - limit} more)" if len(unique) > limit else ""
    return "; ".join(unique[:limit]) + more


def _rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(forecast)) ** 2)))


def evaluation_note(evaluated: int, configured: int) -> str:
    if evaluated >= configured:
        return f"scored on {evaluated} evaluation origins, as configured"
    return (
        f"scored on {evaluated} of the {configured} configured evaluation origins: the history is too short "
        "for more (each needs its own selection origins before it)"
    )


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
    if decision.selection_months < SEASONAL_PERIOD:
        parts[0] = (
            f"Shipping {shipped} ({decision.shipped_kind}): the selection forecasts cover "
            f"{decision.selection_months} of {SEASONAL_PERIOD} calendar months, too few to show that "
            "another model beats seasonal naive over a season."
        )
    if decision.not_eligible:
        parts.append(
            f"Not eligible (a fit failed or estimated nothing): {', '.join(sorted(decision.not_eligible))}."
        )
    evaluation = decision.evaluation
    origins = [score.origin for score in evaluation.origins]
    chosen = sorted({score.shipped_model for score in evaluation.origins})
    short = [score.origin for score in evaluation.origins if score.selection_months < SEASONAL_PERIOD]
    versus = (
        f" vs seasonal naive {evaluation.seasonal_naive_mean_rmse:,.0f} (mean difference "
        f"{evaluation.mean_difference:+,.0f}"
        + (
            f", sd {evaluation.difference_sd:,.0f} across origins)"
            if evaluation.difference_sd is not None
            else ")"
        )
        if evaluation.seasonal_naive_mean_rmse is not None
        else ""
    )
    parts.append(
        f"Chosen on {origin_span(decision.chosen_on_origins)}. The same rule, applied at each of the "
        f"{origin_span(origins)} on the months before it (it chose {', '.join(chosen)}), scores a mean RMSE "
        f"{evaluation.mean_rmse:,.0f}{versus}; {evaluation.points} points, {evaluation.note}."
    )
    if short:
        parts.append(
            f"At {origin_span(short)} the months before covered fewer than {SEASONAL_PERIOD} calendar months "
            "of selection forecasts, so seasonal naive shipped there."
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


def choose_at(
    origin: int,
    selection_origins: Sequence[int],
    sales: np.ndarray,
    candidates: Sequence[Candidate],
    runs: dict[str, dict[int, OriginRun]],
    fit_at_origin: Callable[[Candidate], Fit],
    horizon: int,
    min_improvement: float,
) -> Choice:
    """Apply the rule at `origin`: rank on `selection_origins` (their months all before `origin`), then
    fit the pick at `origin` with `fit_at_origin`; a pick whose fit there fails gives way to the next.
    Where the selection forecasts cover fewer than 12 calendar months, seasonal naive is the pick when
    it is eligible; only the candidates with a run at every selection origin are scored (the others are
    fitted only where a full season can judge them, see `choose`).

    Raises:
        ValueError: when no candidate is eligible, naming each one's failure.
    """
    if selection_origins[-1] + horizon > origin:
        raise ValueError(
            f"choice at {origin}: selection origin {selection_origins[-1]} sees months from {origin} on"
        )
    selection_actual = actuals(sales, selection_origins, horizon)
    calendar_months = len({(o + k) % SEASONAL_PERIOD for o in selection_origins for k in range(horizon)})
    not_eligible: dict[str, str] = {}
    scored: dict[str, float] = {}
    for candidate in candidates:
        if any(o not in runs[candidate.name] for o in selection_origins):
            continue
        run = combine([runs[candidate.name][o] for o in selection_origins])
        if not run.sound:
            not_eligible[candidate.name] = run.failure or _summary(run.problems)
        else:
            scored[candidate.name] = _rmse(selection_actual, run.forecasts)
    fit_problems: dict[str, list[str]] = {}
    while True:
        eligible = {name: rmse for name, rmse in scored.items() if name not in not_eligible}
        if not eligible:
            raise ValueError(
                f"backtest: no candidate is eligible to ship at origin {origin} ({not_eligible})"
            )
        shipped_name, best = _pick(eligible, candidates, min_improvement)
        if calendar_months < SEASONAL_PERIOD and SEASONAL_NAIVE in eligible:
            shipped_name = SEASONAL_NAIVE
        shipped = next(c for c in candidates if c.name == shipped_name)
        try:
            fit = fit_at_origin(shipped)
            problems = [f"fit at origin {origin}: {p}" for p in fit.problems]
        except Exception as error:  # noqa: BLE001 - the next eligible candidate ships instead
            problems = [f"fit at origin {origin}: {type(error).__name__}: {error}"]
        if not problems:
            return Choice(origin, shipped, best, eligible, not_eligible, fit_problems, fit, calendar_months)
        # Whether a fit runs at all is no score: a model that cannot be fitted gives way to the next.
        fit_problems[shipped_name] = problems
        not_eligible[shipped_name] = _summary(problems)


def _at_backtest_origin(runs: dict[str, dict[int, OriginRun]], origin: int) -> Callable[[Candidate], Fit]:
    def fit(candidate: Candidate) -> Fit:
        run = runs[candidate.name][origin]
        if run.failure is not None:
            raise RuntimeError(run.failure)
        return Fit(run.forecasts[0], tuple(p.split(": ", 1)[-1] for p in run.problems))

    return fit


def _origin_score(choice: Choice, runs, sales, origins: Origins, labels: Sequence[str]) -> OriginScore:
    actual = actuals(sales, [choice.origin], origins.horizon)[0]
    seasonal = runs.get(SEASONAL_NAIVE, {}).get(choice.origin)
    seasonal_rmse = (
        _rmse(actual, seasonal.forecasts[0]) if seasonal is not None and seasonal.failure is None else None
    )
    rmse = _rmse(actual, choice.fit.forecast)
    selection = origins.selection_for(choice.origin)
    return OriginScore(
        origin=labels[choice.origin],
        shipped_model=choice.shipped.name,
        chosen_on_origins=[labels[o] for o in selection],
        choice_saw_until=labels[selection[-1] + origins.horizon - 1],
        rmse=rmse,
        seasonal_naive_rmse=seasonal_rmse,
        difference=None if seasonal_rmse is None else rmse - seasonal_rmse,
        points=int(actual.size),
        selection_months=choice.calendar_months,
    )


def evaluation_of(scores: list[OriginScore], configured: int) -> Evaluation:
    """The mean over origins and the paired comparison with seasonal naive (Diebold & Mariano 1995 style
    per-origin differences, their mean and sample standard deviation)."""
    differences = [s.difference for s in scores]
    paired = all(d is not None for d in differences)
    return Evaluation(
        origins=scores,
        configured_origins=configured,
        points=sum(s.points for s in scores),
        mean_rmse=float(np.mean([s.rmse for s in scores])),
        seasonal_naive_mean_rmse=float(np.mean([s.seasonal_naive_rmse for s in scores])) if paired else None,
        mean_difference=float(np.mean(differences)) if paired else None,
        difference_sd=float(np.std(differences, ddof=1)) if paired and len(scores) > 1 else None,
        note=evaluation_note(len(scores), configured),
    )


def choose(
    sales: np.ndarray,
    candidates: Sequence[Candidate],
    origins: Origins,
    month_labels: Sequence[str],
    steps: int,
    min_improvement: float,
) -> Selection:
    """Run the protocol on `sales` (one value per month, `month_labels` as YYYY-MM) and decide.

    The baselines are fitted at every backtested origin, the other candidates once at each origin where
    a score of theirs is used: the evaluation origins and the shipped choice's selection origins (the
    report's per-candidate scores) and the selection origins of every choice whose selection forecasts
    cover a season (elsewhere seasonal naive ships). The rule is then applied at each evaluation origin (on that origin's selection origins) and
    for the shipped forecast (on the last ones, then fitted on all months for `steps` months).

    Raises:
        ValueError: when no candidate is eligible at some origin (every baseline failed), naming each
            one's failure.
    """
    sales = np.asarray(sales, dtype=float)
    judged = {
        o
        for at in [*origins.evaluation, origins.final]
        if origins.calendar_months(origins.selection_for(at)) >= SEASONAL_PERIOD
        for o in origins.selection_for(at)
    }
    fitted_models_at = sorted({*origins.evaluation, *origins.selection, *judged})
    runs = {
        c.name: fit_at_origins(
            sales, c, origins.backtested if c.kind == BASELINE else fitted_models_at, origins.horizon
        )
        for c in candidates
    }
    at_origins = [
        choose_at(
            origin,
            origins.selection_for(origin),
            sales,
            candidates,
            runs,
            _at_backtest_origin(runs, origin),
            origins.horizon,
            min_improvement,
        )  # fmt: skip
        for origin in origins.evaluation
    ]
    shipped = choose_at(
        origins.final, origins.selection, sales, candidates, runs,
        lambda candidate: candidate.fit(sales, steps), origins.horizon, min_improvement,
    )  # fmt: skip
    evaluation = evaluation_of(
        [_origin_score(choice, runs, sales, origins, month_labels) for choice in at_origins],
        origins.configured,
    )
    decision = Decision(
        shipped_model=shipped.shipped.name,
        shipped_kind=shipped.shipped.kind,
        reason="",
        margin_rule=margin_rule(min_improvement),
        min_improvement=min_improvement,
        best_on_selection=shipped.best,
        selection_months=shipped.calendar_months,
        selection_rmse=shipped.selection_rmse,
        not_eligible=shipped.not_eligible,
        chosen_on_origins=[month_labels[o] for o in origins.selection],
        evaluation=evaluation,
    )
    decision = decision.model_copy(update={"reason": decision_reason(decision)})
    return Selection(runs=runs, at_origins=at_origins, shipped=shipped, decision=decision)
