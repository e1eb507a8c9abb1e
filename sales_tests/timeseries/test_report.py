import json
from pathlib import Path

import pytest

from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.report import (
    build_report,
    candidate_table,
    report_problems,
    required_months,
    write_report,
)
from sales_assets.timeseries.report_model import INSUFFICIENT_DATA, OK, TimeseriesReport
from sales_assets.timeseries.series import Segment
from sales_tests.timeseries.samples import QUICK, series_of


def strict_json(path: Path) -> dict:
    def reject(constant: str) -> None:
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=reject)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    """A full report on 31 months whose last month is cut on the 15th, written to disk."""
    report = build_report(Segment("Classic Cars"), series_of(31, last_day=15), QUICK)
    return write_report(report, tmp_path_factory.mktemp("reports"))


def test_required_months_covers_one_evaluation_origin_and_seasonal_naive() -> None:
    config = TimeseriesSettings()
    assert required_months(config) == 12 + 2 + 6 + 0 + 6 == 26
    assert required_months(TimeseriesSettings(min_history_months=40)) == 40
    assert required_months(TimeseriesSettings(selection_origins=5)) == 12 + 4 + 6 + 0 + 6


def test_short_series_yields_insufficient_data_not_a_crash(tmp_path: Path) -> None:
    report = build_report(Segment("Planes", "Norway"), series_of(14), QUICK)
    assert report.status == INSUFFICIENT_DATA and "14 complete months" in report.reason
    assert report.forecast is None and report.backtest is None and report.decision is None
    assert report.risk.exploratory is True
    written = write_report(report, tmp_path)
    assert written.json_path.name == "sales_ts_risk_Planes_Norway.json"
    assert written.png_path.stat().st_size > 1000
    payload = strict_json(written.json_path)
    assert payload["status"] == INSUFFICIENT_DATA and len(payload["history"]) == 14
    assert TimeseriesReport.read(written.json_path) == written.report
    assert candidate_table(report).height == 0 and report_problems(written.report) == []


def test_full_report_sections_and_partial_month(written) -> None:
    report = written.report
    assert report.status == OK
    assert report.data.partial_last_month and report.data.partial_month_excluded == "2003-07"
    assert report.data.model_months == 30 and report.data.zero_months == ["2001-04"]
    assert [p.month for p in report.forecast.points] == [
        "2003-07-01",
        "2003-08-01",
        "2003-09-01",
        "2003-10-01",
    ]
    protocol = report.backtest.protocol
    # The last leaves exactly 6 months; 30 months hold all four, each with its own selection origins.
    assert protocol.evaluation_origins == ["2002-10", "2002-11", "2002-12", "2003-01"]
    # The shipped choice's: seven, so that their forecasts span a season.
    assert protocol.selection_origins == [
        "2002-07",
        "2002-08",
        "2002-09",
        "2002-10",
        "2002-11",
        "2002-12",
        "2003-01",
    ]
    assert protocol.selection_last_month == "2003-06"
    assert "whose forecast months all come before it" in protocol.description
    first = report.decision.evaluation.origins[0]
    assert (
        first.chosen_on_origins == ["2002-01", "2002-02", "2002-03", "2002-04"]
        and first.choice_saw_until == "2002-09"
    )
    assert [row.origin for row in report.backtest.chosen] == protocol.evaluation_origins
    models = {c.model for c in report.backtest.candidates}
    assert {"last_value", "seasonal_naive", "training_mean"} <= models
    assert report.decision.shipped_model in models
    assert len(report.risk.conditional_variance_forecast) == 3
    assert candidate_table(report).columns[:3] == ["model", "kind", "eligible"]


def test_every_shipped_model_has_intervals_with_measured_coverage(written) -> None:
    forecast = written.report.forecast
    assert forecast.interval_levels == [80, 95] and "conformal" in forecast.interval_method
    assert [(c.level, c.points) for c in forecast.coverage] == [(80, 24), (95, 24)]
    assert all(0 <= c.coverage <= 1 for c in forecast.coverage)
    # The calibration origins of the shipped baseline: the 4 evaluation origins and the last 3 selection
    # origins of each choice (13 to 18, 21 to 24), 6 months each.
    assert forecast.calibration_points == 60
    for p in forecast.points:
        assert 0 <= p.lower_95 <= p.lower_80 <= p.forecast <= p.upper_80 <= p.upper_95
        assert p.upper_95 > p.lower_95


def test_written_report_agrees_with_itself_and_reads_back(written) -> None:
    on_disk = TimeseriesReport.read(written.json_path)
    assert on_disk == written.report and on_disk.plot == "sales_ts_risk_Classic_Cars_ALL.png"
    assert f"forecast: {on_disk.decision.shipped_model}" in on_disk.plot_legend
    assert report_problems(on_disk) == []
    strict_json(written.json_path)


def contradict(report: TimeseriesReport, kind: str) -> TimeseriesReport:
    decision = report.decision
    other = next(c.model for c in report.backtest.candidates if c.model != decision.shipped_model)
    if kind == "message":
        return report.model_copy(
            update={
                "decision": decision.model_copy(update={"reason": f"No SARIMA beats it; shipping {other}."})
            }
        )
    if kind == "forecast":
        return report.model_copy(update={"forecast": report.forecast.model_copy(update={"model": other})})
    if kind == "legend":
        return report.model_copy(update={"plot_legend": ["monthly SALES", f"forecast: {other}"]})
    evaluation = decision.evaluation
    if kind == "peeked":
        # The first origin's choice claims to have seen its own months.
        first = evaluation.origins[0].model_copy(update={"choice_saw_until": evaluation.origins[0].origin})
        peeked = evaluation.model_copy(update={"origins": [first, *evaluation.origins[1:]]})
        return report.model_copy(update={"decision": decision.model_copy(update={"evaluation": peeked})})
    if kind == "mean":
        wrong = evaluation.model_copy(update={"mean_rmse": evaluation.origins[0].rmse * 0.5})
        return report.model_copy(update={"decision": decision.model_copy(update={"evaluation": wrong})})
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["message", "forecast", "legend", "peeked", "mean"])
def test_report_problems_catch_each_kind_of_contradiction(written, kind: str) -> None:
    assert report_problems(contradict(written.report, kind))


def test_a_report_of_another_shape_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "sales_ts_risk_ALL_ALL.json"
    path.write_text(json.dumps({"segment": "ALL", "risk": {"annualised_volatility": 7.66}}))
    with pytest.raises(
        ValueError,
        match=r"ALL_ALL.json: not a TimeseriesReport .*\(\+\d+ more\)\); rematerialise ts_risk_reports",
    ):
        TimeseriesReport.read(path)


@pytest.mark.parametrize("months", [1, 2])
def test_tiny_series_still_report(months: int) -> None:
    report = build_report(Segment(), series_of(months), QUICK)
    assert report.status == INSUFFICIENT_DATA
    assert report.risk.status == INSUFFICIENT_DATA


def test_a_short_history_is_scored_on_fewer_origins_and_the_report_says_how_many() -> None:
    report = build_report(Segment("Planes"), series_of(27), QUICK)
    evaluation = report.decision.evaluation
    assert report.status == OK and len(evaluation.origins) == 2 and evaluation.configured_origins == 4
    assert evaluation.note == (
        "scored on 2 of the 4 configured evaluation origins: the history is too short for more (each needs "
        "its own selection origins before it)"
    )
    assert (
        evaluation.note in report.decision.reason and evaluation.note in report.backtest.protocol.description
    )
    assert evaluation.difference_sd is not None  # two origins: a spread, however rough
