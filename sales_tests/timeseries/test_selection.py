"""The choice: ties go to the simpler model, a fit that estimated nothing never ships, a real seasonal
signal makes a SARIMA win and white noise the mean, and the score reported is from later origins."""

import numpy as np
import pytest

from sales_assets.timeseries.backtest import nested_origins, required_months
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
    origins = nested_origins(len(sales), 6, 3, 3, 1)
    return choose(sales, candidates, origins, labels(len(sales)), steps, min_improvement)


def copy_of_seasonal_naive(
    name: str = "SARIMA(0,0,0)(0,1,0,12)", problems: tuple[str, ...] = ()
) -> Candidate:
    """A SARIMA whose forecasts are exactly seasonal naive's, as a seasonal random walk's are."""
    return Candidate(
        name, SARIMA, 1, lambda train, steps: Fit(forecast_seasonal_naive(train, steps), problems)
    )


def test_origins_are_nested_and_the_evaluation_months_come_after_every_selection_month() -> None:
    origins = nested_origins(29, 6, 3, 3, 1)
    assert origins.evaluation == [21, 22, 23] and origins.selection == [13, 14, 15]
    assert origins.selection[-1] + origins.horizon <= origins.evaluation[0]
    assert required_months(6, 3, 3, 1) == 28
    assert nested_origins(72, 6, 2, 3, 6).selection == [42, 48]
    with pytest.raises(ValueError, match="needs 28"):
        nested_origins(27, 6, 3, 3, 1)


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
        "fit on all 40 months: coefficients left at 0"
    )
    assert selection.final_fit.problems == ()


def test_a_model_that_cannot_be_fitted_at_the_evaluation_origin_gives_way_to_the_next() -> None:
    sales = seasonal_series(5, 40)
    first_evaluation_origin = nested_origins(40, 6, 3, 3, 1).evaluation[0]

    def fails_at_evaluation(train: np.ndarray, steps: int) -> Fit:
        if len(train) == first_evaluation_origin:
            raise np.linalg.LinAlgError("singular")
        return Fit(sales[len(train) : len(train) + steps] if len(train) < len(sales) else np.ones(steps))

    candidate = Candidate("SARIMA(1,0,0)(0,1,0,12)", SARIMA, 1, fails_at_evaluation)
    decision = run(sales, [*BASELINES, candidate]).decision
    assert decision.shipped_model != candidate.name
    assert decision.not_eligible[candidate.name].startswith(
        f"evaluation origin {first_evaluation_origin}: LinAlgError"
    )


def test_real_degenerate_statsmodels_fits_are_not_eligible_on_a_short_series() -> None:
    """29 months: seasonal SARIMA fits on 13 to 15 months cannot estimate anything; a baseline ships."""
    sales = seasonal_series(4, 29)
    decision = run(sales, candidates_from_settings(SARIMA_CANDIDATES, 50, WarningLog())).decision
    assert decision.shipped_kind == BASELINE
    assert {"SARIMA(1,0,0)(0,1,0,12)", "SARIMA(0,0,0)(1,1,0,12)"} <= set(decision.not_eligible)


@pytest.mark.parametrize("seed", [0, 1])
def test_sarima_wins_on_a_seasonal_series_and_is_scored_on_later_origins(seed: int) -> None:
    sales = seasonal_series(seed)
    decision = run(sales, candidates_from_settings(SARIMA_CANDIDATES, 200, WarningLog()), 0.05).decision
    assert decision.shipped_kind == SARIMA
    assert decision.reason.startswith(f"Shipping {decision.shipped_model} (sarima): ")
    assert decision.reported_on_origins == labels(72)[64:67]  # the last three origins of 72 months
    assert decision.chosen_on_origins == labels(72)[56:59]  # their windows end before month 64
    assert decision.reported_score.points == 18
    assert decision.reported_score.rmse < decision.seasonal_naive_score.rmse


@pytest.mark.parametrize("seed", [0, 1])
def test_the_mean_wins_on_white_noise(seed: int) -> None:
    decision = run(
        white_noise(seed), candidates_from_settings(SARIMA_CANDIDATES, 200, WarningLog()), 0.05
    ).decision
    assert decision.shipped_model == TRAINING_MEAN
    assert decision.selection_rmse[TRAINING_MEAN] < decision.selection_rmse[SEASONAL_NAIVE]


def test_no_eligible_candidate_is_an_error_naming_the_failures() -> None:
    broken = Candidate(
        "broken", BASELINE, 0, lambda train, steps: (_ for _ in ()).throw(RuntimeError("no fit"))
    )
    with pytest.raises(ValueError, match="no candidate is eligible.*RuntimeError: no fit"):
        run(white_noise(0, 40), [broken])
