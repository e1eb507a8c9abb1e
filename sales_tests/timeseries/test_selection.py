"""The choice: ties go to the simpler model, a fit that estimated nothing never ships, a real seasonal
signal makes a SARIMA win and white noise the mean, and each evaluation origin's score comes from a
choice made only on months before it (checked deterministically, with candidates built to tell)."""

import numpy as np
import pytest

from sales_assets.timeseries.backtest import required_months, rolling_origins
from sales_assets.timeseries.forecast import (
    BASELINE,
    SARIMA,
    SEASONAL_NAIVE,
    TRAINING_MEAN,
    Candidate,
    Fit,
    WarningLog,
    baseline_candidate,
    candidates_from_settings,
    forecast_seasonal_naive,
)
from sales_assets.timeseries.selection import choose, decision_reason
from sales_tests.timeseries.conftest import SARIMA_CANDIDATES, seasonal_series, white_noise

BASELINES = [baseline_candidate(name) for name in ("last_value", "seasonal_naive", "training_mean")]


def labels(months: int) -> list[str]:
    return [f"{2000 + m // 12}-{m % 12 + 1:02d}" for m in range(months)]


def run(sales: np.ndarray, candidates: list[Candidate], min_improvement: float = 0.0, steps: int = 6):
    origins = rolling_origins(len(sales), 6, 3, 4, 1)
    return choose(sales, candidates, origins, labels(len(sales)), steps, min_improvement)


def copy_of_seasonal_naive(
    name: str = "SARIMA(0,0,0)(0,1,0,12)", problems: tuple[str, ...] = ()
) -> Candidate:
    """A SARIMA whose forecasts are exactly seasonal naive's, as a seasonal random walk's are."""
    return Candidate(
        name, SARIMA, 1, lambda train, steps: Fit(forecast_seasonal_naive(train, steps), problems)
    )


def test_each_evaluation_origin_has_its_own_selection_origins_before_it() -> None:
    origins = rolling_origins(29, 6, 3, 4, 1)
    assert origins.evaluation == [20, 21, 22, 23] and origins.final == 29
    assert origins.selection_for(20) == [12, 13, 14] and origins.selection == [21, 22, 23]
    for origin in [*origins.evaluation, origins.final]:
        assert origins.selection_for(origin)[-1] + origins.horizon <= origin
    assert origins.backtested == [12, 13, 14, 15, 16, 17, 20, 21, 22, 23]
    assert required_months(6, 3, 4, 1) == 29 and required_months(6, 3, 1, 1) == 26
    assert rolling_origins(72, 6, 2, 3, 6).evaluation == [54, 60, 66]
    assert rolling_origins(72, 6, 2, 3, 6).selection_for(54) == [42, 48]


def test_a_short_series_gets_fewer_evaluation_origins_and_says_so() -> None:
    origins = rolling_origins(27, 6, 3, 4, 1)
    assert origins.evaluation == [20, 21] and origins.configured == 4
    decision = choose(seasonal_series(0, 27), BASELINES, origins, labels(27), 6, 0.0).decision
    assert len(decision.evaluation.origins) == 2 and decision.evaluation.points == 12
    assert "scored on 2 of the 4 configured evaluation origins" in decision.evaluation.note
    assert decision.evaluation.note in decision.reason
    with pytest.raises(ValueError, match="needs 26"):
        rolling_origins(25, 6, 3, 4, 1)


def peeker(sales: np.ndarray, perfect_at: set[int], name: str = "SARIMA(1,0,0)(0,1,0,12)") -> Candidate:
    """A candidate that forecasts the actual months exactly when fitted at an origin in `perfect_at`, and
    misses by 10,000 everywhere else: if a choice saw the months from its origin on, this would win it."""

    def fit(train: np.ndarray, steps: int) -> Fit:
        origin = len(train)
        truth = sales[origin : origin + steps]
        if origin in perfect_at and truth.size == steps:
            return Fit(truth.copy())
        return Fit(np.full(steps, float(train[-1]) + 10_000))

    return Candidate(name, SARIMA, 1, fit)


def test_no_evaluation_origin_is_scored_on_a_choice_that_saw_its_months() -> None:
    """Deterministic (no seed decides it): a candidate perfect exactly at the evaluation origins and bad
    at every selection origin is never chosen there, and the scores are the baselines'. A choice that
    looked at an origin's own months, or any later one, would pick it and report RMSE 0."""
    sales = seasonal_series(0, 40)
    origins = rolling_origins(40, 6, 3, 4, 1)
    oracle = peeker(sales, set(origins.evaluation))
    selection = choose(sales, [*BASELINES, oracle], origins, labels(40), 6, 0.0)
    evaluation = selection.decision.evaluation
    assert [s.shipped_model for s in evaluation.origins] != [oracle.name] * 4
    assert all(s.shipped_model != oracle.name and s.rmse > 0 for s in evaluation.origins)
    for score, origin in zip(evaluation.origins, origins.evaluation, strict=True):
        assert score.choice_saw_until < score.origin == labels(40)[origin]


def test_a_choice_is_scored_at_its_origin_even_when_it_does_badly_there() -> None:
    """The converse: perfect at every selection origin and bad at the evaluation origins, it is chosen at
    each (by the rule, on months before the origin) and its bad score is what the report gives."""
    sales = seasonal_series(0, 40)
    origins = rolling_origins(40, 6, 3, 4, 1)
    selecting = {o for at in origins.evaluation for o in origins.selection_for(at)} - set(origins.evaluation)
    flatterer = peeker(sales, selecting)
    evaluation = choose(sales, [*BASELINES, flatterer], origins, labels(40), 6, 0.0).decision.evaluation
    assert [s.shipped_model for s in evaluation.origins] == [flatterer.name] * 4
    assert all(s.rmse > 5_000 for s in evaluation.origins)
    assert evaluation.mean_rmse == pytest.approx(np.mean([s.rmse for s in evaluation.origins]))
    assert evaluation.mean_difference > 0 and evaluation.difference_sd is not None


def test_an_exact_tie_goes_to_the_baseline_and_the_message_says_so() -> None:
    selection = run(seasonal_series(0, 40), [*BASELINES, copy_of_seasonal_naive()])
    decision = selection.decision
    assert decision.selection_rmse[SEASONAL_NAIVE] == decision.selection_rmse["SARIMA(0,0,0)(0,1,0,12)"]
    assert decision.shipped_model == SEASONAL_NAIVE and decision.shipped_kind == BASELINE
    assert decision.reason.startswith("Shipping seasonal_naive (baseline): ")
    assert decision.reason == decision_reason(decision)


def test_a_margin_keeps_the_simpler_model_unless_the_complex_one_beats_it_by_that_much() -> None:
    sales = 1000 + 400 * np.sin(np.arange(40) * np.pi / 6) + np.random.default_rng(1).normal(0, 20, 40)

    def closer_to_the_truth(train: np.ndarray, steps: int) -> Fit:
        # 10% of the way from seasonal naive to the actual months: 10% lower RMSE, exactly.
        truth = sales[len(train) : len(train) + steps]
        naive = forecast_seasonal_naive(train, steps)
        return Fit(naive + 0.1 * (truth - naive) if truth.size == steps else naive)

    better = Candidate("SARIMA(1,0,0)(0,1,0,12)", SARIMA, 1, closer_to_the_truth)
    without_margin = run(sales, [*BASELINES, better], min_improvement=0.05).decision
    with_margin = run(sales, [*BASELINES, better], min_improvement=0.2).decision
    rmse = without_margin.selection_rmse
    assert rmse[better.name] == pytest.approx(0.9 * rmse[SEASONAL_NAIVE])
    assert without_margin.shipped_model == better.name and without_margin.best_on_selection == better.name
    assert with_margin.shipped_model == SEASONAL_NAIVE and with_margin.best_on_selection == better.name
    assert "by less than the 20% margin a more complex model needs" in with_margin.reason


def test_a_fit_that_estimated_nothing_never_ships_even_when_it_scores_best() -> None:
    sales = seasonal_series(2, 40)
    perfect_but_degenerate = Candidate(
        "SARIMA(0,0,0)(1,1,0,12)",
        SARIMA,
        1,
        lambda train, steps: Fit(sales[len(train) : len(train) + steps], ("too few observations",)),
    )
    decision = run(sales, [*BASELINES, perfect_but_degenerate]).decision
    assert decision.shipped_model != perfect_but_degenerate.name
    assert perfect_but_degenerate.name in decision.not_eligible
    assert perfect_but_degenerate.name not in decision.selection_rmse
    assert "Not eligible (a fit failed or estimated nothing): SARIMA(0,0,0)(1,1,0,12)." in decision.reason


def test_a_model_whose_fit_on_all_months_is_degenerate_gives_way_to_the_next() -> None:
    sales = seasonal_series(3, 40)

    def sound_on_backtest_only(train: np.ndarray, steps: int) -> Fit:
        perfect = sales[len(train) : len(train) + steps]
        return Fit(np.zeros(steps), ("coefficients left at 0",)) if len(train) == len(sales) else Fit(perfect)

    candidate = Candidate("SARIMA(1,0,0)(0,1,0,12)", SARIMA, 1, sound_on_backtest_only)
    selection = run(sales, [*BASELINES, candidate])
    assert candidate.name not in selection.decision.selection_rmse
    assert selection.decision.shipped_model != candidate.name
    assert selection.decision.not_eligible[candidate.name].startswith(
        "fit at origin 40: coefficients left at 0"
    )
    assert selection.final_fit.problems == ()


def test_a_model_that_cannot_be_fitted_at_the_evaluation_origin_gives_way_to_the_next() -> None:
    sales = seasonal_series(5, 40)
    first_evaluation_origin = rolling_origins(40, 6, 3, 4, 1).evaluation[0]

    def fails_at_evaluation(train: np.ndarray, steps: int) -> Fit:
        if len(train) == first_evaluation_origin:
            raise np.linalg.LinAlgError("singular")
        return Fit(sales[len(train) : len(train) + steps] if len(train) < len(sales) else np.ones(steps))

    candidate = Candidate("SARIMA(1,0,0)(0,1,0,12)", SARIMA, 1, fails_at_evaluation)
    chosen_there = run(sales, [*BASELINES, candidate]).at_origins[0]
    assert chosen_there.shipped.name != candidate.name
    assert chosen_there.not_eligible[candidate.name].startswith(
        f"fit at origin {first_evaluation_origin}: RuntimeError: origin {first_evaluation_origin}: LinAlgError"
    )


def test_real_degenerate_statsmodels_fits_are_not_eligible_on_a_short_series() -> None:
    """29 months: at the first evaluation origin the choice rests on fits on 12 to 14 months, where seasonal
    SARIMA fits cannot estimate anything; a baseline is chosen there."""
    sales = seasonal_series(4, 29)
    first = run(sales, candidates_from_settings(SARIMA_CANDIDATES, 50, WarningLog())).at_origins[0]
    assert first.shipped.kind == BASELINE
    assert {"SARIMA(1,0,0)(0,1,0,12)", "SARIMA(0,0,0)(1,1,0,12)"} <= set(first.not_eligible)


@pytest.mark.parametrize("seed", [0, 1])
def test_sarima_wins_on_a_seasonal_series_and_is_scored_on_later_origins(seed: int) -> None:
    sales = seasonal_series(seed)
    decision = run(sales, candidates_from_settings(SARIMA_CANDIDATES, 200, WarningLog()), 0.05).decision
    assert decision.shipped_kind == SARIMA
    assert decision.reason.startswith(f"Shipping {decision.shipped_model} (sarima): ")
    evaluation = decision.evaluation
    assert [s.origin for s in evaluation.origins] == labels(72)[63:67]  # the last four origins of 72 months
    assert decision.chosen_on_origins == labels(72)[64:67]  # the shipped choice: the last three origins
    assert evaluation.origins[0].chosen_on_origins == labels(72)[55:58]  # they end before month 63
    assert evaluation.points == 24
    assert evaluation.mean_rmse < evaluation.seasonal_naive_mean_rmse


@pytest.mark.parametrize("seed", [0, 1])
def test_the_mean_wins_on_white_noise(seed: int) -> None:
    """At every evaluation origin the rule picks the mean (the shipped choice rests on three origins only,
    where a seasonal SARIMA can beat the margin by chance: the per-origin choices are the measure)."""
    evaluation = run(
        white_noise(seed), candidates_from_settings(SARIMA_CANDIDATES, 200, WarningLog()), 0.05
    ).decision.evaluation
    assert [s.shipped_model for s in evaluation.origins] == [TRAINING_MEAN] * 4
    assert evaluation.mean_rmse < evaluation.seasonal_naive_mean_rmse


def test_no_eligible_candidate_is_an_error_naming_the_failures() -> None:
    broken = Candidate(
        "broken", BASELINE, 0, lambda train, steps: (_ for _ in ()).throw(RuntimeError("no fit"))
    )
    with pytest.raises(ValueError, match="no candidate is eligible.*RuntimeError: no fit"):
        run(white_noise(0, 40), [broken])
