import json
import logging
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.automation import SEGMENTS_AFTER_REFRESH_SENSOR, build_automation
from sales_assets.resources import build_resources
from sales_assets.settings import AutomationSettings, Settings
from sales_assets.timeseries import defs as timeseries_defs
from sales_assets.timeseries.assets import (
    HIERARCHY_IS_COHERENT,
    REPORT_AGREES_WITH_ITSELF,
    SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE,
    combine_check_results,
    ts_risk_reports,
    ts_segments,
)
from sales_assets.timeseries.backfill import backfill_segments
from sales_assets.timeseries.cli import main
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS, contiguous_ranges, partition_range_tags
from sales_assets.timeseries.reads import SEGMENTS_FILE, SegmentCatalogue
from sales_assets.timeseries.report_model import HierarchyReport, TimeseriesReport

EXPECTED_SEGMENTS = [
    "ALL",
    "Classic Cars",
    "Motorcycles",
    "Classic Cars|France",
    "Classic Cars|USA",
    "Motorcycles|USA",
]


def test_defs_is_one_definitions_object_and_keeps_the_lists() -> None:
    defs = timeseries_defs.defs
    assert isinstance(defs, dg.Definitions)
    keys = {a.key.to_user_string() for a in defs.assets}
    assert keys == {"ts_segments", "ts_risk_reports"}
    assert {j.name for j in defs.jobs} == {"ts_segments_job", "ts_risk_reports_job"}
    for name in ("assets", "asset_checks", "jobs", "schedules", "sensors"):
        assert isinstance(getattr(timeseries_defs, name), list)
    assert {a.key.to_user_string() for a in timeseries_defs.assets} == keys
    checks = {spec.name: spec.blocking for a in defs.assets for spec in a.check_specs}
    assert checks == {
        REPORT_AGREES_WITH_ITSELF: True,
        SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE: False,
        HIERARCHY_IS_COHERENT: True,
    }


def test_loading_the_group_imports_no_modelling_library() -> None:
    """Issue 14: the code location's import must not pay for numpy, pandas, statsmodels, arch, matplotlib;
    and the backfill loads the timeseries group only, not the whole code location (issue 10)."""
    heavy = ("numpy", "pandas", "scipy", "statsmodels", "arch", "matplotlib", "sales_assets.definitions")
    code = (
        "import sys, sales_assets.timeseries.defs, sales_assets.timeseries.backfill;"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def registered_segments(settings: Settings) -> dg.DagsterInstance:
    """An instance whose segment partitions and catalogue file `ts_segments` has just written."""
    instance = dg.DagsterInstance.ephemeral()
    resources = build_resources(settings.data_dir)
    assert dg.materialize([ts_segments], instance=instance, resources=resources).success
    return instance


def test_segments_register_partitions_and_drop_stale_ones(warehouse: Settings) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["Planes|Norway"])
    # Reports of a segment that no longer exists, one that still does, and the hierarchy's file.
    warehouse.timeseries_dir.mkdir(parents=True)
    for name in ("sales_ts_risk_Planes_Norway", "sales_ts_risk_Classic_Cars_USA"):
        (warehouse.timeseries_dir / f"{name}.json").write_text("{}")
        (warehouse.timeseries_dir / f"{name}.png").write_bytes(b"png")
    (warehouse.timeseries_dir / "sales_ts_hierarchy.json").write_text("{}")
    result = dg.materialize([ts_segments], instance=instance, resources=build_resources(warehouse.data_dir))
    assert result.success
    assert instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name) == EXPECTED_SEGMENTS
    metadata = result.asset_materializations_for_node("ts_segments")[0].metadata
    assert metadata["segments"].value == 6 and metadata["added"].value == 6 and metadata["removed"].value == 1
    assert metadata["archived_reports"].value == ["sales_ts_risk_Planes_Norway"]
    current = sorted(p.name for p in warehouse.timeseries_dir.iterdir() if p.is_file())
    assert current == [
        "sales_ts_hierarchy.json",
        "sales_ts_risk_Classic_Cars_USA.json",
        "sales_ts_risk_Classic_Cars_USA.png",
        SEGMENTS_FILE,
    ]
    # The catalogue the report partitions read instead of scanning the table (issue 15).
    catalogue = SegmentCatalogue.read(warehouse.timeseries_dir / SEGMENTS_FILE)
    assert catalogue.partition_keys == EXPECTED_SEGMENTS
    assert catalogue.product_lines == ["Classic Cars", "Motorcycles"]
    assert catalogue.window == (datetime(2003, 1, 6), datetime(2005, 5, 31))
    # Paths in metadata are relative to SALES_DATA_DIR, so they fit the UI's metadata column.
    assert warehouse.root / metadata["catalogue_path"].value == warehouse.timeseries_dir / SEGMENTS_FILE
    archived = sorted(p.name for p in (warehouse.timeseries_dir / "archive").iterdir())
    assert archived == ["sales_ts_risk_Planes_Norway.json", "sales_ts_risk_Planes_Norway.png"]


@pytest.mark.usefixtures("quick_candidates")
def test_one_partition_materialises_its_report(warehouse: Settings) -> None:
    instance = registered_segments(warehouse)
    result = dg.materialize(
        [ts_risk_reports],
        instance=instance,
        partition_key="Classic Cars|USA",
        resources=build_resources(warehouse.data_dir),
    )
    assert result.success
    metadata = result.asset_materializations_for_node("ts_risk_reports")[0].metadata
    assert metadata["status"].value == "ok" and metadata["months"].value == 29
    assert metadata["plot"].value.startswith("**Classic Cars|USA: monthly SALES, the shipped forecast (")
    assert "![sales_ts_risk_Classic_Cars_USA](data:image/png;base64," in metadata["plot"].value
    assert "seasonal_naive" in [row.data["model"] for row in metadata["candidates"].value.records]
    report_path = warehouse.timeseries_dir / "sales_ts_risk_Classic_Cars_USA.json"
    report = TimeseriesReport.read(report_path)
    assert report.segment.model_dump() == {
        "key": "Classic Cars|USA",
        "product_line": "Classic Cars",
        "country": "USA",
    }
    assert warehouse.root / metadata["report_path"].value == report_path
    assert metadata["shipped_model"].value == report.decision.shipped_model == report.forecast.model
    assert metadata["decision"].value == report.decision.reason
    assert metadata["coverage_points"].value == 24 and metadata["evaluation_origins"].value == 4
    assert [row.data["origin"] for row in metadata["origin_scores"].value.records] == [
        s.origin for s in report.decision.evaluation.origins
    ]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[REPORT_AGREES_WITH_ITSELF].passed
    assert checks[SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE].check_name == SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE
    # Issue 16: statsmodels' expected warnings are counted once in the metadata, not logged as WARNINGs.
    # A Markdown list (it wraps in the UI), one line per distinct warning with its count.
    lines = metadata["fitting_warnings"].value.splitlines()
    assert any("Too few observations" in line for line in lines)
    assert lines == [f"- {w.count} x {w.warning}" for w in report.warnings]
    logged = [entry for entry in instance.all_logs(result.run_id) if entry.level >= logging.WARNING]
    assert not [entry.user_message for entry in logged if "observations" in entry.user_message]


def test_unknown_partition_fails_with_the_valid_segments(warehouse: Settings) -> None:
    instance = registered_segments(warehouse)
    instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["Motorcycles|Japan"])
    result = dg.materialize(
        [ts_risk_reports],
        instance=instance,
        partition_key="Motorcycles|Japan",
        resources=build_resources(warehouse.data_dir),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "'Motorcycles|Japan'" in message
    assert (
        "valid segments: ALL, Classic Cars, Motorcycles, Classic Cars|France, Classic Cars|USA, Motorcycles|USA"
        in message
    )
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


@pytest.mark.usefixtures("quick_candidates")
def test_cli_writes_the_report_with_the_seed_flags(
    warehouse: Settings, capsys: pytest.CaptureFixture
) -> None:
    argv = [
        "--product-line",
        "Classic Cars",
        "--country",
        "USA",
        "--forecast-steps",
        "3",
        "--garch-horizon",
        "2",
    ]
    assert main([*argv, "--data-dir", str(warehouse.data_dir)]) == 0
    payload = json.loads((warehouse.timeseries_dir / "sales_ts_risk_Classic_Cars_USA.json").read_text())
    assert len(payload["forecast"]["points"]) == 3
    assert len(payload["risk"]["conditional_variance_forecast"]) == 2
    assert "Classic Cars|USA: status ok" in capsys.readouterr().out


def test_cli_rejects_an_unknown_segment_listing_valid_ones(
    warehouse: Settings, capsys: pytest.CaptureFixture
) -> None:
    assert (
        main(["--product-line", "Planes", "--country", "Norway", "--data-dir", str(warehouse.data_dir)]) == 2
    )
    error = capsys.readouterr().err
    assert "'Planes|Norway'" in error and "valid segments: ALL, Classic Cars, Motorcycles" in error
    assert not warehouse.timeseries_dir.exists()


@pytest.mark.usefixtures("quick_candidates")
def test_backfill_materialises_every_segment_and_all_reconciles_the_hierarchy(warehouse: Settings) -> None:
    defs = dg.Definitions.merge(
        timeseries_defs.defs, dg.Definitions(resources=build_resources(warehouse.data_dir))
    )
    instance = dg.DagsterInstance.ephemeral()
    outcome = backfill_segments(defs, instance)
    assert outcome == dict.fromkeys(EXPECTED_SEGMENTS, True)
    # Every segment's report from ONE run of the report job (issue 15), after the ts_segments run.
    runs = instance.get_runs()
    assert sorted(run.job_name for run in runs) == ["ts_risk_reports_job", "ts_segments_job"]
    written = sorted(p.name for p in warehouse.timeseries_dir.glob("sales_ts_risk_*.json"))
    assert len(written) == 6 and "sales_ts_risk_ALL_ALL.json" in written
    with pytest.raises(ValueError, match="unknown segment"):
        backfill_segments(defs, instance, ["Trains"])

    hierarchy = HierarchyReport.read(warehouse.timeseries_dir / "sales_ts_hierarchy.json")
    assert hierarchy.nodes == ["ALL", "Classic Cars", "Motorcycles"]
    by_node = {f.segment: [p.forecast for p in f.points] for f in hierarchy.forecasts}
    assert by_node["ALL"] == [
        a + b for a, b in zip(by_node["Classic Cars"], by_node["Motorcycles"], strict=True)
    ]
    # The product lines' base models are the ones their own partitions shipped.
    for key in ("Classic Cars", "Motorcycles"):
        own = TimeseriesReport.read(
            warehouse.timeseries_dir / f"sales_ts_risk_{key.replace(' ', '_')}_ALL.json"
        )
        assert hierarchy.base_models[key] == own.decision.shipped_model
    coherent = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey("ts_risk_reports"), HIERARCHY_IS_COHERENT)
    )
    assert coherent is not None


@pytest.mark.usefixtures("quick_candidates")
def test_the_all_partition_checks_that_the_product_lines_sum_to_it(warehouse: Settings) -> None:
    instance = registered_segments(warehouse)
    resources = build_resources(warehouse.data_dir)
    result = dg.materialize([ts_risk_reports], instance=instance, partition_key="ALL", resources=resources)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[HIERARCHY_IS_COHERENT].passed
    assert checks[HIERARCHY_IS_COHERENT].metadata["max_relative_difference"].value <= 1e-9
    assert checks[REPORT_AGREES_WITH_ITSELF].passed
    metadata = result.asset_materializations_for_node("ts_risk_reports")[0].metadata
    assert metadata["hierarchy_method"].value in ("bottom_up", "mint_shrink")
    assert metadata["hierarchy_decision"].value.startswith(f"Shipping {metadata['hierarchy_method'].value}: ")


@pytest.mark.usefixtures("quick_candidates")
def test_reports_on_the_generated_warehouse(warehouse_data_dir: Path, tmp_path: Path) -> None:
    """The contract with `duckdb_table`: the table it builds from the generated sample feeds a report."""
    settings = Settings(data_dir=tmp_path / "data")
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copy(Settings(data_dir=warehouse_data_dir).duckdb_path, settings.duckdb_path)
    instance = dg.DagsterInstance.ephemeral()
    resources = build_resources(settings.data_dir)
    assert dg.materialize([ts_segments], instance=instance, resources=resources).success
    keys = instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name)
    assert keys[0] == "ALL" and "Classic Cars" in keys
    result = dg.materialize([ts_risk_reports], instance=instance, partition_key="ALL", resources=resources)
    assert result.success
    payload = json.loads((settings.timeseries_dir / "sales_ts_risk_ALL_ALL.json").read_text())
    assert payload["status"] == "ok" and payload["data"]["months"] >= 24
    # Issue 26: ALL shipped the training mean (RMSE 287k against seasonal naive's 73k) with a 95% band to
    # $4.45M around $332k; chosen on several origins it ships a seasonal model, its band pooled over segments.
    assert payload["decision"]["shipped_model"] != "training_mean"
    peak = max(point["sales"] for point in payload["history"])
    assert all(point["upper_95"] < 3 * peak for point in payload["forecast"]["points"])
    assert len(payload["forecast"]["calibration_segments"]) == len(keys)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks[REPORT_AGREES_WITH_ITSELF] and checks[HIERARCHY_IS_COHERENT]
    hierarchy = HierarchyReport.read(settings.timeseries_dir / "sales_ts_hierarchy.json")
    assert hierarchy.nodes == ["ALL", *(k for k in keys[1:] if "|" not in k)]  # ALL, then the product lines


# ---- issue 15: one run for every segment, the segment list from ts_segments' file ---------------------


def test_a_partition_run_reads_the_segments_from_the_catalogue_file_not_the_table(
    warehouse: Settings,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = build_resources(warehouse.data_dir)
    instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["Classic Cars|USA"])
    missing = dg.materialize(
        [ts_risk_reports],
        instance=instance,
        partition_key="Classic Cars|USA",
        resources=resources,
        raise_on_error=False,
    )
    assert not missing.success
    [failure] = [e for e in missing.all_events if e.is_step_failure]
    assert "materialise ts_segments first" in failure.step_failure_data.error.message
    # The table still has the pair; a catalogue that lacks it is what the partition goes by.
    assert dg.materialize([ts_segments], instance=instance, resources=resources).success
    path = warehouse.timeseries_dir / SEGMENTS_FILE
    catalogue = SegmentCatalogue.read(path)
    kept = [row for row in catalogue.segments if row.segment != "Classic Cars|USA"]
    path.write_text(catalogue.model_copy(update={"segments": kept}).model_dump_json())
    stale = dg.materialize(
        [ts_risk_reports],
        instance=instance,
        partition_key="Classic Cars|USA",
        resources=resources,
        raise_on_error=False,
    )
    assert not stale.success
    [failure] = [e for e in stale.all_events if e.is_step_failure]
    assert "'Classic Cars|USA' is not a segment" in failure.step_failure_data.error.message


@pytest.mark.usefixtures("quick_candidates")
def test_the_sensor_requests_one_run_that_reports_every_segment(warehouse: Settings) -> None:
    automation = build_automation(AutomationSettings(), segments_job=timeseries_defs.ts_risk_reports_job)
    defs = dg.Definitions.merge(
        timeseries_defs.defs,
        dg.Definitions(jobs=automation.jobs, sensors=automation.sensors),
        dg.Definitions(resources=build_resources(warehouse.data_dir)),
    )
    instance = registered_segments(warehouse)
    sensor = defs.resolve_sensor_def(SEGMENTS_AFTER_REFRESH_SENSOR)
    upstream = defs.resolve_job_def("ts_segments_job").execute_in_process(instance=instance)
    context = dg.build_run_status_sensor_context(
        sensor_name=SEGMENTS_AFTER_REFRESH_SENSOR,
        dagster_event=upstream.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=upstream.dagster_run,
    )
    [request] = sensor(context)
    assert request.partition_key is None and request.run_key == upstream.run_id
    assert partition_range_tags("ALL", "Motorcycles|USA").items() <= request.tags.items()
    result = defs.resolve_job_def(sensor.job_name).execute_in_process(instance=instance, tags=request.tags)
    assert result.success
    # One run, one materialisation per segment with that segment's own metadata: the UI shows partitions.
    by_partition = {
        e.event_specific_data.materialization.partition: e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert list(by_partition) == EXPECTED_SEGMENTS
    for key, metadata in by_partition.items():
        assert TimeseriesReport.read(warehouse.root / metadata["report_path"].value).segment.key == key
    assert instance.get_materialized_partitions(dg.AssetKey("ts_risk_reports")) == set(EXPECTED_SEGMENTS)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[REPORT_AGREES_WITH_ITSELF].passed
    assert checks[REPORT_AGREES_WITH_ITSELF].metadata["segments"].value == 6


def test_a_failing_segment_does_not_cost_the_others_their_reports(warehouse: Settings) -> None:
    instance = registered_segments(warehouse)
    instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["Motorcycles|Japan"])  # too little history
    resources = build_resources(warehouse.data_dir)
    job = dg.Definitions.merge(timeseries_defs.defs, dg.Definitions(resources=resources)).resolve_job_def(
        "ts_risk_reports_job"
    )
    result = job.execute_in_process(
        instance=instance,
        tags=partition_range_tags("Motorcycles|USA", "Motorcycles|Japan"),
        raise_on_error=False,
    )
    assert not result.success
    assert [
        e.event_specific_data.materialization.partition for e in result.get_asset_materialization_events()
    ] == ["Motorcycles|USA"]
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "1 of 2 segment(s) failed: Motorcycles|Japan: segment 'Motorcycles|Japan' is not a segment" in (
        failure.step_failure_data.error.message
    )


def test_requested_segments_run_in_as_few_ranges_as_possible() -> None:
    registered = ["ALL", "A", "B", "C", "A|X", "B|Y"]
    assert contiguous_ranges(registered, set(registered)) == [("ALL", "B|Y")]
    assert contiguous_ranges(registered, {"A", "B", "B|Y"}) == [("A", "B"), ("B|Y", "B|Y")]
    assert contiguous_ranges(registered, set()) == []


def test_one_result_per_check_fails_when_any_segment_fails_and_names_it() -> None:
    ok = dg.AssetCheckResult(check_name=REPORT_AGREES_WITH_ITSELF, passed=True, metadata={"problems": []})
    bad = dg.AssetCheckResult(
        check_name=REPORT_AGREES_WITH_ITSELF,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"problems": dg.MetadataValue.json(["legend names seasonal_naive"])},
    )
    assert combine_check_results({"ALL": ok}) is ok
    combined = combine_check_results({"ALL": ok, "Trains": bad, "Ships": ok})
    assert not combined.passed and combined.severity == dg.AssetCheckSeverity.ERROR
    assert combined.metadata["segments"].value == 3
    assert combined.metadata["failed_segments"].value == ["Trains"]
    assert combined.metadata["failures"].value == {"Trains": {"problems": ["legend names seasonal_naive"]}}
    assert combine_check_results({"ALL": ok, "Ships": ok}).passed
    # The quickstart's summary prints the description: which segments failed, and why.
    assert combined.description == "1 of 3 segments failed: Trains"
    why = bad._replace(description="Trains: the rule's choices average RMSE 9 against seasonal naive's 7")
    assert combine_check_results({"ALL": ok, "Trains": why}).description == (
        "1 of 2 segments failed: Trains: the rule's choices average RMSE 9 against seasonal naive's 7"
    )


def test_the_seasonal_naive_check_says_why_it_failed(tmp_path: Path) -> None:
    """Issue 26: 11 of 13 segments failed this check on the generated sample with no word in the
    quickstart's summary; the failing result's description (what the summary prints) gives the figures."""
    from sales_assets.timeseries.assets import versus_seasonal_naive_check
    from sales_tests.timeseries.samples import write_sample_report

    report = write_sample_report(tmp_path).report
    evaluation = report.decision.evaluation
    worse = evaluation.model_copy(update={"mean_rmse": evaluation.seasonal_naive_mean_rmse * 2})
    failing = report.model_copy(update={"decision": report.decision.model_copy(update={"evaluation": worse})})
    check = versus_seasonal_naive_check(failing)
    assert not check.passed
    assert check.description.startswith("Classic Cars|USA: the rule's choices (")
    assert f"against seasonal naive's {evaluation.seasonal_naive_mean_rmse:,.0f} over 4 origin(s)" in (
        check.description
    )
    assert versus_seasonal_naive_check(report).passed == (
        evaluation.mean_rmse <= evaluation.seasonal_naive_mean_rmse
    )


@pytest.mark.usefixtures("quick_candidates")
def test_on_the_generated_sample_all_is_not_worse_than_seasonal_naive(
    warehouse_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 26: on the generated sample the rule's choices for ALL scored 3.6x seasonal naive's RMSE
    (the training mean, chosen on selection forecasts of January to August, missed November), and the
    quickstart's summary (`sales-admin summary`) listed the check as failed. Now the choices before the
    peak are seasonal naive's and the check passes; `test_the_seasonal_naive_check_says_why_it_failed`
    covers the description of a failure."""
    from sales_assets.admin import failed_checks

    settings = Settings(data_dir=tmp_path / "data")
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copy(Settings(data_dir=warehouse_data_dir).duckdb_path, settings.duckdb_path)
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    resources = build_resources(settings.data_dir)
    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([ts_segments], instance=instance, resources=resources).success
        result = dg.materialize(
            [ts_risk_reports], instance=instance, partition_key="ALL", resources=resources
        )
    report = TimeseriesReport.read(settings.timeseries_dir / "sales_ts_risk_ALL_ALL.json")
    evaluation = report.decision.evaluation
    assert result.success
    assert evaluation.mean_rmse <= evaluation.seasonal_naive_mean_rmse
    assert not [c for c in failed_checks(0.0) if c["check"].endswith(SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE)]
