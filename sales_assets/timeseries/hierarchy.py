"""Coherent forecasts for the hierarchy `ALL` = sum of the product lines, from each node's own report.

A node's base forecasts are its report's: at each evaluation origin, what its rule chose there on the
months before it; before the first evaluation origin, its shipped model's backtest forecasts. Two
reconciliations compete: bottom-up (ALL is the sum of the product lines' forecasts) and MinT with
shrinkage (Wickramasuriya, Athanasopoulos & Hyndman 2019, "Optimal forecast reconciliation for
hierarchical and grouped time series through trace minimization", JASA 114(526); the shrinkage estimator
of Schafer & Strimmer 2005 as in R's `hts::MinT`). MinT's error covariance comes from the base forecasts'
errors on the origins whose months all come before the first evaluation origin (all steps pooled). The
method ships that has the lower summed RMSE on those origins; the evaluation origins give the reported
scores of base, bottom-up and MinT.
Reconciled product lines below 0 are set to 0 and ALL re-summed (non-negative, still coherent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.intervals import HIERARCHY_INTERVAL_METHOD, ScaledErrors, backtest_intervals
from sales_assets.timeseries.report import SegmentBacktest, build_report
from sales_assets.timeseries.report_model import (
    Coverage,
    ForecastPoint,
    HierarchyReport,
    MethodScore,
    NodeForecast,
    TimeseriesReport,
)
from sales_assets.timeseries.selection import TIE_TOLERANCE
from sales_assets.timeseries.series import ALL, MonthlySeries, Segment

BASE = "base"
BOTTOM_UP = "bottom_up"
MINT_SHRINK = "mint_shrink"
RECONCILIATIONS = (BOTTOM_UP, MINT_SHRINK)


@dataclass(frozen=True)
class HierarchyInputs:
    """Base forecasts and actuals of every node (ALL first), arrays shaped (origins, nodes, horizon)."""

    nodes: list[str]
    base_models: dict[str, str]
    base: dict[str, np.ndarray]  # phase -> forecasts
    actual: dict[str, np.ndarray]  # phase -> actuals
    final: np.ndarray  # (nodes, steps)
    forecast_months: list[str]


def summing_matrix(bottom: int) -> np.ndarray:
    """S of a two-level hierarchy: the total over `bottom` series, then each series; shape (1 + bottom, bottom)."""
    return np.vstack([np.ones((1, bottom)), np.eye(bottom)])


def bottom_up_projection(bottom: int) -> np.ndarray:
    """P with bottom = P @ base: the product lines' own forecasts, ALL's ignored."""
    return np.hstack([np.zeros((bottom, 1)), np.eye(bottom)])


def shrunk_covariance(errors: np.ndarray) -> tuple[np.ndarray, float]:
    """Schafer-Strimmer shrinkage of the (uncentred) error covariance towards its diagonal, as `hts::MinT`.

    Args:
        errors: (points, nodes) forecast errors.
    Returns:
        The (nodes, nodes) covariance and the shrinkage intensity in [0, 1].
    """
    x = np.asarray(errors, dtype=float)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"MinT: {n} error row(s); the covariance needs at least 2")
    covariance = x.T @ x / n
    sd = np.sqrt(np.diag(covariance))
    sd = np.where(sd > 0, sd, 1.0)
    correlation = covariance / np.outer(sd, sd)
    standardised = x / sd
    variance_of_correlation = (
        (standardised**2).T @ (standardised**2) - (standardised.T @ standardised) ** 2 / n
    ) / (n * (n - 1))
    off_diagonal = ~np.eye(x.shape[1], dtype=bool)
    denominator = float(np.sum(correlation[off_diagonal] ** 2))
    intensity = (
        1.0
        if denominator == 0
        else float(np.clip(np.sum(variance_of_correlation[off_diagonal]) / denominator, 0, 1))
    )
    target = np.diag(np.diag(covariance))
    return intensity * target + (1 - intensity) * covariance, intensity


def mint_projection(covariance: np.ndarray, summing: np.ndarray) -> np.ndarray:
    """P = (S' W^-1 S)^-1 S' W^-1 (pseudo-inverse where W is singular)."""
    w_inverse = np.linalg.pinv(covariance)
    return np.linalg.solve(summing.T @ w_inverse @ summing, summing.T @ w_inverse)


def reconcile(base: np.ndarray, projection: np.ndarray, summing: np.ndarray) -> np.ndarray:
    """Coherent forecasts from `base` (..., nodes, horizon): bottom = P @ base floored at 0, then S @ bottom."""
    bottom = np.maximum(np.einsum("bn,...nh->...bh", projection, base), 0.0)
    return np.einsum("nb,...bh->...nh", summing, bottom)


def _node_rmse(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """RMSE per node of (origins, nodes, horizon) arrays."""
    return np.sqrt(np.mean((actual - forecast) ** 2, axis=(0, 2)))


def _by_origin(rows: list, horizon: int) -> np.ndarray:
    """(origins, nodes, horizon) from per node lists of per origin rows (possibly none)."""
    return np.transpose(np.array(rows, dtype=float).reshape(len(rows), -1, horizon), (1, 0, 2))


def inputs_from_reports(
    reports: dict[str, TimeseriesReport], product_lines: Sequence[str]
) -> HierarchyInputs:
    """Gather the nodes' base forecasts from their reports.

    Raises:
        ValueError: a node's report is missing, not ok, or built on other months than ALL's.
    """
    nodes = [ALL, *product_lines]
    missing = [node for node in nodes if node not in reports]
    if missing:
        raise ValueError(f"hierarchy: no report for {missing}")
    not_ok = {node: reports[node].status for node in nodes if reports[node].status != "ok"}
    if not_ok:
        raise ValueError(f"hierarchy: reports without a forecast: {not_ok}")
    reference = reports[ALL]
    protocol = reference.backtest.protocol
    months = [point.month[:7] for point in reference.history]
    first_evaluation = months.index(protocol.evaluation_origins[0])
    for node in nodes:
        report = reports[node]
        if report.backtest.protocol != protocol or report.data.model_months != reference.data.model_months:
            raise ValueError(
                f"hierarchy: the report of {node!r} was built on other months or origins than ALL's; "
                "rematerialise every segment from the same warehouse"
            )
    # Before the first evaluation origin, each node's shipped model's backtest forecasts at the origins
    # where every node's has one: the reconciliation is chosen (and MinT's covariance estimated) on these.
    earlier = {
        node: {
            row.origin: row.forecast
            for row in reports[node].backtest.forecasts[reports[node].decision.shipped_model]
            if months.index(row.origin) + protocol.horizon <= first_evaluation
        }
        for node in nodes
    }
    common = sorted(set.intersection(*(set(rows) for rows in earlier.values())))
    base: dict[str, list] = {"selection": [], "evaluation": []}
    actual: dict[str, list] = {"selection": [], "evaluation": []}
    for node in nodes:
        report = reports[node]
        sales = np.array([point.sales for point in report.history], dtype=float)
        # At each evaluation origin, what the node's rule chose there on the months before it.
        chosen = {row.origin: row.forecast for row in report.backtest.chosen}
        for phase, rows in (("selection", {o: earlier[node][o] for o in common}), ("evaluation", chosen)):
            base[phase].append(list(rows.values()))
            starts = [months.index(origin) for origin in rows]
            actual[phase].append([sales[start : start + protocol.horizon] for start in starts])
    return HierarchyInputs(
        nodes=nodes,
        base_models={node: reports[node].decision.shipped_model for node in nodes},
        base={phase: _by_origin(v, protocol.horizon) for phase, v in base.items()},
        actual={phase: _by_origin(v, protocol.horizon) for phase, v in actual.items()},
        final=np.array([[p.forecast for p in reports[node].forecast.points] for node in nodes], dtype=float),
        forecast_months=[point.month for point in reference.forecast.points],
    )


def pick_reconciliation(bottom_up_rmse: float, mint_rmse: float) -> str:
    """MinT ships only when its summed selection RMSE is lower by more than float noise (sums of the same
    errors in another order differ in the last bits); a tie goes to bottom-up, as the message says."""
    return MINT_SHRINK if mint_rmse < bottom_up_rmse * (1 - TIE_TOLERANCE) else BOTTOM_UP


def reconcile_hierarchy(inputs: HierarchyInputs) -> HierarchyReport:
    """Backtest bottom-up and MinT-shrink, ship the better on the selection origins, report all three on
    the evaluation origins, and give coherent forecasts with conformal intervals for every node.

    Without selection origins (no origin before the first evaluation origin where every node's shipped
    model has a forecast) MinT has no covariance to estimate: bottom-up ships, and the reason says why."""
    bottom = len(inputs.nodes) - 1
    summing = summing_matrix(bottom)
    selection_errors = inputs.actual["selection"] - inputs.base["selection"]  # (origins, nodes, horizon)
    projections = {BOTTOM_UP: bottom_up_projection(bottom)}
    intensity = None
    if selection_errors.shape[0] > 0:
        covariance, intensity = shrunk_covariance(
            np.transpose(selection_errors, (0, 2, 1)).reshape(-1, len(inputs.nodes))
        )
        projections[MINT_SHRINK] = mint_projection(covariance, summing)
    forecasts = {
        BASE: inputs.base,
        **{
            method: {phase: reconcile(values, projection, summing) for phase, values in inputs.base.items()}
            for method, projection in projections.items()
        },
    }
    scores = [
        MethodScore(
            method=method,
            selection_rmse=float(_node_rmse(by_phase["selection"], inputs.actual["selection"]).sum())
            if intensity is not None
            else None,
            evaluation_rmse=float(_node_rmse(by_phase["evaluation"], inputs.actual["evaluation"]).sum()),
            evaluation_by_node=dict(
                zip(
                    inputs.nodes,
                    map(float, _node_rmse(by_phase["evaluation"], inputs.actual["evaluation"])),
                    strict=True,
                )
            ),
        )
        for method, by_phase in forecasts.items()
    ]
    by_method = {score.method: score for score in scores}
    if intensity is None:
        shipped = BOTTOM_UP
        reason = (
            "Shipping bottom_up: no origin before the first evaluation origin where every node's shipped model "
            "has a forecast, so MinT's covariance cannot be estimated on months the score does not use; on "
            f"the evaluation origins {by_method[BOTTOM_UP].evaluation_rmse:,.0f}, base forecasts "
            f"{by_method[BASE].evaluation_rmse:,.0f}."
        )
    else:
        shipped = pick_reconciliation(
            by_method[BOTTOM_UP].selection_rmse, by_method[MINT_SHRINK].selection_rmse
        )
        other = next(m for m in RECONCILIATIONS if m != shipped)
        reason = (
            f"Shipping {shipped}: summed selection RMSE {by_method[shipped].selection_rmse:,.0f} vs "
            f"{other} {by_method[other].selection_rmse:,.0f} (ties go to bottom_up); on the later evaluation "
            f"origins {by_method[shipped].evaluation_rmse:,.0f} vs {by_method[other].evaluation_rmse:,.0f}, "
            f"base forecasts {by_method[BASE].evaluation_rmse:,.0f}."
        )
    coherent = reconcile(inputs.final, projections[shipped], summing)
    node_forecasts, coverage_hits = [], {}
    for index, node in enumerate(inputs.nodes):
        errors = {
            phase: inputs.actual[phase][:, index] - forecasts[shipped][phase][:, index]
            for phase in inputs.base
        }
        # Every evaluation origin's intervals are calibrated on the selection errors, all before it.
        intervals = backtest_intervals(
            [errors["selection"]] * len(errors["evaluation"]),
            errors["evaluation"],
            np.vstack([errors["selection"], errors["evaluation"]]),
            coherent[index],
        )
        for level, share in intervals.coverage.items():
            coverage_hits.setdefault(level, []).append((share, intervals.coverage_points))
        shipped_bounds = intervals.bounds
        node_forecasts.append(
            NodeForecast(
                segment=node,
                points=[
                    ForecastPoint(
                        month=month,
                        forecast=float(coherent[index, step]),
                        **{
                            f"{side}_{level}": float(bounds[0 if side == "lower" else 1][step])
                            for level, bounds in shipped_bounds.items()
                            for side in ("lower", "upper")
                        },
                    )
                    for step, month in enumerate(inputs.forecast_months)
                ],
            )
        )
    return HierarchyReport(
        nodes=inputs.nodes,
        base_models=inputs.base_models,
        protocol=(
            "each node's base forecast at an evaluation origin is what its own rule chose there; the "
            "reconciliation is chosen (and MinT's covariance estimated) on the nodes' backtest forecasts whose "
            "months all come before the first evaluation origin, and scored on the evaluation origins"
        ),
        scores=scores,
        shipped_method=shipped,
        reason=reason,
        shrinkage=intensity,
        interval_method=f"{HIERARCHY_INTERVAL_METHOD}; per node, on the reconciled forecasts' errors",
        coverage=[
            Coverage(
                level=level,
                coverage=float(np.average([s for s, _ in shares], weights=[n for _, n in shares])),
                points=sum(n for _, n in shares),
            )
            for level, shares in coverage_hits.items()
        ],
        forecasts=node_forecasts,
    )


def hierarchy_report(
    all_report: TimeseriesReport,
    product_lines: dict[str, MonthlySeries],
    config: TimeseriesSettings,
    backtests: dict[str, SegmentBacktest | None] | None = None,
    pool: Sequence[ScaledErrors] | None = None,
) -> HierarchyReport:
    """Coherent forecasts for ALL (its report) and `product_lines` (key -> series), whose reports are built
    here with the same settings, backtests (`backtests`, by key, when the run has them) and interval pool:
    the same code on the same months gives what their partitions ship."""
    backtests = backtests or {}
    reports = {
        ALL: all_report,
        **{
            key: build_report(Segment.from_key(key), series, config, backtests.get(key), pool)
            for key, series in product_lines.items()
        },
    }
    return reconcile_hierarchy(inputs_from_reports(reports, list(product_lines)))


def coherence_error(report: HierarchyReport) -> float:
    """Largest |ALL - sum of product lines| / max(|ALL|, 1) over the forecast months of a hierarchy report."""
    by_node = {forecast.segment: [p.forecast for p in forecast.points] for forecast in report.forecasts}
    total = np.array(by_node[ALL])
    parts = np.sum([values for node, values in by_node.items() if node != ALL], axis=0)
    return float(np.max(np.abs(total - parts) / np.maximum(np.abs(total), 1.0)))
