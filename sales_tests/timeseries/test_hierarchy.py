"""Reconciliation of ALL and the product lines: coherent to the last digit, non-negative, MinT's
projection reproduces coherent forecasts, and the method is chosen on selection origins only."""

import numpy as np
import pytest

from sales_assets.timeseries.hierarchy import (
    BASE,
    BOTTOM_UP,
    MINT_SHRINK,
    HierarchyInputs,
    bottom_up_projection,
    coherence_error,
    mint_projection,
    pick_reconciliation,
    reconcile,
    reconcile_hierarchy,
    shrunk_covariance,
    summing_matrix,
)


def test_summing_matrix_and_bottom_up() -> None:
    summing = summing_matrix(3)
    assert summing.tolist() == [[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    base = np.array([[100.0, 100.0], [10.0, 20.0], [30.0, 40.0], [5.0, 6.0]])  # ALL incoherent
    coherent = reconcile(base, bottom_up_projection(3), summing)
    assert coherent[0].tolist() == [45.0, 66.0] and coherent[1:].tolist() == base[1:].tolist()


def test_mint_keeps_coherent_forecasts_and_sums_exactly() -> None:
    rng = np.random.default_rng(0)
    summing = summing_matrix(4)
    covariance, intensity = shrunk_covariance(rng.normal(0, [40, 10, 20, 5, 30], (18, 5)))
    assert 0 <= intensity <= 1
    projection = mint_projection(covariance, summing)
    assert np.allclose(projection @ summing, np.eye(4))  # unbiased: coherent input comes back unchanged
    base = rng.uniform(50, 150, (3, 5, 6))  # (origins, nodes, horizon), ALL not the sum
    coherent = reconcile(base, projection, summing)
    assert np.array_equal(coherent[:, 0], coherent[:, 1:].sum(axis=1))  # exact, not approximately
    assert (coherent >= 0).all()


def test_negative_reconciled_product_lines_are_floored_and_all_re_summed() -> None:
    summing = summing_matrix(2)
    # A MinT-like projection that would move the second product line below 0.
    projection = np.array([[0.0, 1.0, 0.0], [1.0, -1.0, 0.0]])
    coherent = reconcile(np.array([[10.0], [50.0], [5.0]]), projection, summing)
    assert coherent[:, 0].tolist() == [50.0, 50.0, 0.0]


def test_shrinkage_is_strong_for_independent_errors_and_weak_for_correlated_ones() -> None:
    rng = np.random.default_rng(1)
    _, independent = shrunk_covariance(rng.normal(size=(30, 4)))
    common = rng.normal(size=(30, 1))
    _, correlated = shrunk_covariance(common + 0.05 * rng.normal(size=(30, 4)))
    assert correlated < 0.1 < independent


def synthetic_inputs(seed: int = 0, bias: float = 300.0) -> HierarchyInputs:
    """Three product lines and ALL; ALL's own base forecast is biased, the product lines' are not."""
    rng = np.random.default_rng(seed)
    origins, horizon = 3, 6
    actual = {}
    base = {}
    for phase in ("selection", "evaluation"):
        bottom = rng.uniform(800, 1200, (origins, 3, horizon))
        actual[phase] = np.concatenate([bottom.sum(axis=1, keepdims=True), bottom], axis=1)
        noisy = bottom + rng.normal(0, 50, bottom.shape)
        base[phase] = np.concatenate([noisy.sum(axis=1, keepdims=True) + bias, noisy], axis=1)
    return HierarchyInputs(
        nodes=["ALL", "Classic Cars", "Motorcycles", "Planes"],
        base_models=dict.fromkeys(["ALL", "Classic Cars", "Motorcycles", "Planes"], "seasonal_naive"),
        base=base,
        actual=actual,
        final=np.vstack([[3300.0] * 4, rng.uniform(900, 1100, (3, 4))]),
        forecast_months=["2005-06-01", "2005-07-01", "2005-08-01", "2005-09-01"],
    )


def test_reconciled_hierarchy_sums_exactly_and_reports_every_method() -> None:
    report = reconcile_hierarchy(synthetic_inputs())
    assert {s.method for s in report.scores} == {BASE, BOTTOM_UP, MINT_SHRINK}
    assert report.shipped_method in (BOTTOM_UP, MINT_SHRINK)
    assert report.reason.startswith(f"Shipping {report.shipped_method}: ")
    assert coherence_error(report) == 0.0
    by_node = {f.segment: [p.forecast for p in f.points] for f in report.forecasts}
    assert by_node["ALL"] == [
        sum(v) for v in zip(by_node["Classic Cars"], by_node["Motorcycles"], by_node["Planes"], strict=True)
    ]
    for forecast in report.forecasts:
        for p in forecast.points:
            assert 0 <= p.lower_95 <= p.lower_80 <= p.forecast <= p.upper_80 <= p.upper_95
    assert [(c.level, c.points) for c in report.coverage] == [(80, 72), (95, 72)]
    scores = {s.method: s for s in report.scores}
    # ALL's base forecast is biased by 300; coherent forecasts built from the product lines are not.
    assert scores[BOTTOM_UP].evaluation_by_node["ALL"] < scores[BASE].evaluation_by_node["ALL"]


def test_the_method_is_chosen_on_selection_origins_not_on_the_reported_ones() -> None:
    inputs = synthetic_inputs(seed=2)
    report = reconcile_hierarchy(inputs)
    scores = {s.method: s for s in report.scores}
    assert report.shipped_method == min((BOTTOM_UP, MINT_SHRINK), key=lambda m: scores[m].selection_rmse)
    # Whatever happens on the evaluation origins, the choice stays: only their scores move.
    rng = np.random.default_rng(3)
    other_evaluation = {
        **inputs.base,
        "evaluation": inputs.base["evaluation"] * rng.uniform(0.5, 1.5, (3, 4, 6)),
    }
    changed = reconcile_hierarchy(HierarchyInputs(**{**inputs.__dict__, "base": other_evaluation}))
    assert changed.shipped_method == report.shipped_method
    assert changed.scores != report.scores


def test_coherence_error_sees_a_broken_sum() -> None:
    report = reconcile_hierarchy(synthetic_inputs())
    broken = report.model_copy(deep=True)
    broken.forecasts[0].points[0].forecast += 10.0
    assert coherence_error(broken) == pytest.approx(10.0 / broken.forecasts[0].points[0].forecast)


def test_without_origins_before_the_evaluation_bottom_up_ships_and_says_why() -> None:
    """On 29 months a node's shipped SARIMA may have no fit before the first evaluation origin: MinT then
    has nothing honest to estimate its covariance on, and bottom-up ships, still coherent."""
    inputs = synthetic_inputs()
    empty = np.empty((0, 4, 6))
    report = reconcile_hierarchy(
        HierarchyInputs(
            **{
                **inputs.__dict__,
                "base": {**inputs.base, "selection": empty},
                "actual": {**inputs.actual, "selection": empty},
            }
        )
    )
    assert report.shipped_method == BOTTOM_UP and report.shrinkage is None
    assert report.reason.startswith("Shipping bottom_up: no origin before the first evaluation origin")
    assert {s.method for s in report.scores} == {BASE, BOTTOM_UP}
    assert all(s.selection_rmse is None for s in report.scores)
    assert coherence_error(report) == 0.0 and report.coverage == []


def test_a_tie_within_float_noise_goes_to_bottom_up_as_the_message_says() -> None:
    """On the generated sample MinT and bottom-up both summed to 251,178 and MinT shipped under a message
    saying ties go to bottom-up."""
    assert pick_reconciliation(251_178.0, 251_178.0 * (1 - 1e-12)) == BOTTOM_UP
    assert pick_reconciliation(251_178.0, 251_178.0) == BOTTOM_UP
    assert pick_reconciliation(251_178.0, 251_177.0) == MINT_SHRINK
