"""Jobs, schedule and sensors of `sales_assets.automation`: what they select, when they fire, and that
they are off by default."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from sales_assets import automation
from sales_assets.automation import (
    CHEAP_CHAIN_JOB,
    DAILY_REFRESH_SCHEDULE,
    HEAVY_JOB,
    RAW_CSV_CHANGE_SENSOR,
    RAW_CSV_SHA256_TAG,
    REFRESH_ALL_JOB,
    SEGMENTS_AFTER_REFRESH_SENSOR,
    build_automation,
    refresh_request,
    segment_run_requests,
)
from sales_assets.io import sha256_file
from sales_assets.resources import build_resources
from sales_assets.settings import AutomationSettings, Settings
from sales_assets.timeseries.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

try:
    from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS
except ImportError:  # the timeseries group declares it; the tests only need one of the same name
    SEGMENTS_PARTITIONS = dg.DynamicPartitionsDefinition(name="sales_segments")

SEGMENTS = ["Classic Cars", "Motorcycles", "Vintage Cars"]
SEGMENTS_JOB = "segments_job"


def _design_stand_ins() -> list[dg.AssetsDefinition]:
    """No-op assets shaped like the design's graph: the automation only sees keys, deps and partitions."""

    @dg.asset(check_specs=[dg.AssetCheckSpec("row_count", asset="raw_csv")])
    def raw_csv() -> dg.MaterializeResult:
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])

    @dg.asset(deps=[raw_csv])
    def clean_parquet() -> None:
        pass

    @dg.asset(deps=[clean_parquet])
    def duckdb_table() -> None:
        pass

    @dg.asset(deps=[duckdb_table])
    def summaries() -> None:
        pass

    @dg.asset(deps=[duckdb_table], partitions_def=SEGMENTS_PARTITIONS)
    def ts_risk_reports() -> None:
        pass

    @dg.asset(deps=[ts_risk_reports])
    def ts_reconciliation() -> None:
        pass

    return [raw_csv, clean_parquet, duckdb_table, summaries, ts_risk_reports, ts_reconciliation]


@pytest.fixture
def stand_in_defs() -> dg.Definitions:
    assets = _design_stand_ins()
    segments_job = dg.define_asset_job(
        SEGMENTS_JOB, selection=["ts_risk_reports"], partitions_def=SEGMENTS_PARTITIONS
    )
    built = build_automation(
        AutomationSettings(schedule_cron="30 2 * * *", schedule_timezone="Europe/Berlin"), segments_job
    )
    return dg.Definitions(
        assets=assets,
        jobs=[*built.jobs, segments_job],
        schedules=built.schedules,
        sensors=built.sensors,
        resources=build_resources(),
    )


def _selected_keys(defs: dg.Definitions, job_name: str) -> set[str]:
    job = defs.resolve_job_def(job_name)
    return {key.to_user_string() for key in job.asset_layer.selected_asset_keys}


def test_refresh_all_selects_every_asset_but_the_partitioned_one_and_its_downstream(stand_in_defs):
    assert _selected_keys(stand_in_defs, REFRESH_ALL_JOB) == {
        "raw_csv",
        "clean_parquet",
        "duckdb_table",
        "summaries",
    }
    assert _selected_keys(stand_in_defs, SEGMENTS_JOB) == {"ts_risk_reports"}


def test_daily_schedule_cron_timezone_status_and_target(stand_in_defs):
    schedule = stand_in_defs.resolve_schedule_def(DAILY_REFRESH_SCHEDULE)
    assert schedule.cron_schedule == "30 2 * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == REFRESH_ALL_JOB

    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=dt.datetime(2025, 3, 1, 2, 30, tzinfo=dt.UTC),
            resources=build_resources(),
        )
        tick = schedule.evaluate_tick(context)
    # Nothing materialised yet: the whole refresh.
    assert len(tick.run_requests) == 1
    assert tick.run_requests[0].tags[automation.TRIGGER_TAG] == DAILY_REFRESH_SCHEDULE
    assert tick.run_requests[0].asset_selection is None


def test_a_scheduled_refresh_starts_nothing_new_and_everything_when_the_csv_changed(tmp_path):
    """Real data versions: raw_csv's is the file's sha256, the others' follow from their code versions."""
    csv = tmp_path / "sales.csv"
    csv.write_text("ORDERNUMBER,SALES\n10100,1.0\n")

    @dg.asset(code_version="1")
    def raw_csv() -> dg.MaterializeResult:
        return dg.MaterializeResult(data_version=dg.DataVersion(sha256_file(csv)))

    @dg.asset(deps=[raw_csv], code_version="1")
    def clean_parquet() -> None:
        pass

    defs = dg.Definitions(assets=[raw_csv, clean_parquet], jobs=build_automation(AutomationSettings()).jobs)
    repository = defs.get_repository_def()
    with dg.DagsterInstance.ephemeral() as instance:
        first = defs.resolve_job_def(REFRESH_ALL_JOB).execute_in_process(instance=instance)
        unchanged = refresh_request(instance, repository, csv, DAILY_REFRESH_SCHEDULE)
        assert isinstance(unchanged, dg.SkipReason)
        assert f"inputs unchanged since run(s) {first.run_id}" in unchanged.skip_message
        csv.write_text("ORDERNUMBER,SALES\n10100,2.0\n")
        changed = refresh_request(instance, repository, csv, DAILY_REFRESH_SCHEDULE)
    assert isinstance(changed, dg.RunRequest) and changed.asset_selection is None
    assert changed.tags[automation.TRIGGER_TAG] == DAILY_REFRESH_SCHEDULE


def test_the_locations_schedule_and_sensor_follow_settings():
    from sales_assets.definitions import defs

    settings = Settings().automation
    schedule = defs.resolve_schedule_def(DAILY_REFRESH_SCHEDULE)
    assert schedule.cron_schedule == settings.schedule_cron
    assert schedule.execution_timezone == settings.schedule_timezone
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    raw_sensor = defs.resolve_sensor_def(RAW_CSV_CHANGE_SENSOR)
    assert raw_sensor.minimum_interval_seconds == settings.sensor_interval_seconds
    assert raw_sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_importing_the_automation_reads_no_settings():
    """The graph's shape comes from the settings `sales_assets.definitions` passes in, never from the
    environment at import: with settings that cannot load, the module still imports and holds no jobs."""
    probe = "import sales_assets.automation as a; print(hasattr(a, 'jobs') or hasattr(a, 'schedules'))"
    env = os.environ | {"SALES_RAW_DIR": "s3://bucket/exports"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SALES_RAW_DIR", env["SALES_RAW_DIR"])
        with pytest.raises(ValueError, match="SALES_RAW_DIR"):  # what a Settings() at import would raise
            Settings()


def _definitions(folder_mode: bool, tmp_path: Path) -> dg.Definitions:
    from sales_assets.definitions import build_definitions

    return build_definitions(Settings(raw_dir=tmp_path) if folder_mode else Settings())


@pytest.mark.parametrize("folder_mode", [False, True])
def test_the_locations_jobs_split_the_real_graph_by_partitioning(folder_mode, tmp_path):
    """Against the real code location of each input mode: refresh_all holds every unpartitioned asset that
    does not need the segment partitions, the segment sensor requests the timeseries job that holds every
    segment-partitioned one, the export partitions (folder mode) run in their own job, and the two-run
    refresh (cheap chain in one process, heavy steps each in their own) covers refresh_all."""
    from sales_assets.ingest.defs import ingest_exports_job
    from sales_assets.ingest.partitions import EXPORTS_PARTITIONS
    from sales_assets.timeseries.defs import ts_risk_reports_job

    defs = _definitions(folder_mode, tmp_path)
    graph = defs.resolve_asset_graph()
    partitioned = {k for k in graph.materializable_asset_keys if graph.get(k).partitions_def is not None}
    by_export = {k for k in partitioned if graph.get(k).partitions_def == EXPORTS_PARTITIONS}
    by_segment = partitioned - by_export
    after_segments = {
        k.to_user_string() for k in dg.AssetSelection.assets(*by_segment).downstream().resolve(graph)
    }
    unpartitioned = {k.to_user_string() for k in graph.materializable_asset_keys - partitioned}
    assert dg.AssetKey("ts_risk_reports") in by_segment
    assert {"duckdb_table", "trained_models", "ts_segments"} <= unpartitioned
    refresh_all = _selected_keys(defs, REFRESH_ALL_JOB)
    assert refresh_all == unpartitioned - after_segments
    assert _selected_keys(defs, ts_risk_reports_job.name) == {k.to_user_string() for k in by_segment}
    if folder_mode:
        assert by_export == {dg.AssetKey("clean_export")}
        assert _selected_keys(defs, ingest_exports_job.name) == {"clean_export"}
    else:
        assert not by_export and "raw_csv" in unpartitioned
    cheap, heavy = _selected_keys(defs, CHEAP_CHAIN_JOB), _selected_keys(defs, HEAVY_JOB)
    assert cheap | heavy == refresh_all and not cheap & heavy
    assert heavy == {"trained_models", "shap_importance", "onnx_model"}
    assert defs.resolve_job_def(CHEAP_CHAIN_JOB).executor_def.name == "in_process"
    assert defs.resolve_job_def(HEAVY_JOB).executor_def.name == "multiprocess"
    segment_sensor = defs.resolve_sensor_def(SEGMENTS_AFTER_REFRESH_SENSOR)
    assert segment_sensor.job_name == ts_risk_reports_job.name
    assert segment_sensor.default_status == dg.DefaultSensorStatus.RUNNING


@pytest.mark.parametrize(
    ("folder_mode", "defined", "absent", "sensors"),
    [
        (False, {"raw_csv", "clean_parquet"}, {"raw_export", "clean_export"}, {RAW_CSV_CHANGE_SENSOR}),
        (
            True,
            {"raw_export", "clean_export"},
            {"raw_csv", "clean_parquet"},
            {"raw_export_files", "warehouse_after_exports"},
        ),
    ],
)
def test_a_location_defines_only_its_input_modes_assets(folder_mode, defined, absent, sensors, tmp_path):
    """A single-CSV location shows no never-materialised `raw_export`/`clean_export` (and a folder location
    no `raw_csv`/`clean_parquet`, not even as an external stub of a dep); only the mode's sensors exist."""
    defs = _definitions(folder_mode, tmp_path)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert defined <= keys and not keys & absent
    external = {k.to_user_string() for k in graph.get_all_asset_keys() - graph.materializable_asset_keys}
    assert external == ({"raw_export"} if folder_mode else set())
    names = {sensor.name for sensor in defs.sensors}
    assert names == sensors | {SEGMENTS_AFTER_REFRESH_SENSOR}


def test_segments_job_must_be_dynamically_partitioned():
    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["x"]))
    def static() -> None:
        pass

    # A job that declares its partitions (Dagster deprecates it; the project's jobs take their assets') must
    # declare dynamic ones; one that does not is taken as partitioned like its group's assets.
    static_job = dg.define_asset_job(
        "static_job", selection=[static], partitions_def=dg.StaticPartitionsDefinition(["x"])
    )
    with pytest.raises(ValueError, match="must be partitioned by a DynamicPartitionsDefinition"):
        build_automation(AutomationSettings(), static_job)
    unpartitioned = build_automation(AutomationSettings())
    assert [s.name for s in unpartitioned.sensors] == [RAW_CSV_CHANGE_SENSOR]


# ---- raw CSV content sensor ---------------------------------------------------------------------------


@pytest.fixture
def raw_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "raw" / "sales.csv"
    path.parent.mkdir()
    path.write_text("ORDERNUMBER,SALES\n10107,2871.0\n")
    monkeypatch.setenv("SALES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SALES_RAW_CSV", str(path))
    return path


def _tick(sensor: dg.SensorDefinition, cursor: str | None, instance: dg.DagsterInstance):
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources=build_resources())
    return sensor.evaluate_tick(context)


def test_sensor_fires_on_new_content_not_on_touch_and_not_twice(stand_in_defs, raw_csv):
    sensor = stand_in_defs.resolve_sensor_def(RAW_CSV_CHANGE_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == REFRESH_ALL_JOB
    first_digest = sha256_file(raw_csv)

    with dg.instance_for_test() as instance:
        # Switching the sensor on records the file; it does not refresh from it.
        first = _tick(sensor, None, instance)
        assert first.run_requests == []
        assert first.cursor == first_digest
        assert "recorded" in first.skip_message and str(raw_csv) in first.skip_message

        again = _tick(sensor, first.cursor, instance)
        assert again.run_requests == []
        assert "unchanged" in again.skip_message

        stat = raw_csv.stat()
        os.utime(raw_csv, ns=(stat.st_atime_ns + 10**9, stat.st_mtime_ns + 10**9))
        assert raw_csv.stat().st_mtime_ns != stat.st_mtime_ns
        touched = _tick(sensor, first.cursor, instance)
        assert touched.run_requests == []

        raw_csv.write_text("ORDERNUMBER,SALES\n10107,2871.0\n10121,2765.9\n")
        changed = _tick(sensor, first.cursor, instance)
        assert len(changed.run_requests) == 1
        assert changed.cursor == sha256_file(raw_csv) != first_digest
        assert changed.run_requests[0].tags[RAW_CSV_SHA256_TAG] == changed.cursor

        assert _tick(sensor, changed.cursor, instance).run_requests == []


def test_sensor_skips_with_the_path_when_the_csv_is_missing(stand_in_defs, raw_csv):
    raw_csv.unlink()
    sensor = stand_in_defs.resolve_sensor_def(RAW_CSV_CHANGE_SENSOR)
    with dg.instance_for_test() as instance:
        tick = _tick(sensor, "previous-digest", instance)
    assert tick.run_requests == []
    assert str(raw_csv) in tick.skip_message
    assert tick.cursor in (None, "previous-digest")


# ---- segment runs after a successful refresh ------------------------------------------------------------


def test_segment_run_requests_one_run_over_every_registered_partition():
    with dg.instance_for_test() as instance:
        assert segment_run_requests(instance, SEGMENTS_PARTITIONS, "run-1") == []
        instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, SEGMENTS)
        requests = segment_run_requests(instance, SEGMENTS_PARTITIONS, "run-1")
    # One run (issue 15: a refresh's segments share one process), over the range first..last registered.
    [request] = requests
    assert request.run_key == "run-1" and request.partition_key is None
    assert request.tags[PARTITION_RANGE_START_TAG] == SEGMENTS[0]
    assert request.tags[PARTITION_RANGE_END_TAG] == SEGMENTS[-1]
    assert request.tags[automation.UPSTREAM_RUN_TAG] == "run-1"


def test_the_segment_sensor_ticks_at_the_configured_interval_not_the_30_s_default():
    """Dagster's daemon logs a "skipped" line on every tick without a new refresh_all success: the
    configured interval keeps those lines as rare as the CSV sensor's (issue 16)."""
    segments_job = dg.define_asset_job(
        SEGMENTS_JOB, selection=["ts_risk_reports"], partitions_def=SEGMENTS_PARTITIONS
    )
    built = build_automation(AutomationSettings(sensor_interval_seconds=300), segments_job)
    intervals = {sensor.name: sensor.minimum_interval_seconds for sensor in built.sensors}
    assert intervals == {RAW_CSV_CHANGE_SENSOR: 300, SEGMENTS_AFTER_REFRESH_SENSOR: 300}


def test_successful_refresh_all_requests_every_segment_partition(stand_in_defs):
    sensor = stand_in_defs.resolve_sensor_def(SEGMENTS_AFTER_REFRESH_SENSOR)
    assert sensor.job_name == SEGMENTS_JOB
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, SEGMENTS)
        result = stand_in_defs.resolve_job_def(REFRESH_ALL_JOB).execute_in_process(instance=instance)
        assert result.success
        # The checks of a selected asset run with it.
        assert [e.check_name for e in result.get_asset_check_evaluations()] == ["row_count"]
        context = dg.build_run_status_sensor_context(
            sensor_name=SEGMENTS_AFTER_REFRESH_SENSOR,
            dagster_event=result.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        [request] = sensor(context)
    assert (request.tags[PARTITION_RANGE_START_TAG], request.tags[PARTITION_RANGE_END_TAG]) == (
        SEGMENTS[0],
        SEGMENTS[-1],
    )
    assert request.tags[automation.UPSTREAM_RUN_TAG] == result.run_id
