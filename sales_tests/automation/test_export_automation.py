"""Automation of a folder of exports: the sensor `raw_export_files` registers and requests only new files
(new name or new content), the daily schedule in folder mode cleans only what is new, and the refresh in
folder mode leaves the single-CSV assets and the export partitions out. Real sensor and schedule contexts
on a real temp Dagster instance; the files are small CSVs (the sensor reads bytes, not rows)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.automation import (
    DAILY_REFRESH_SCHEDULE,
    RAW_EXPORT_FILES_SENSOR,
    REFRESH_ALL_JOB,
    TRIGGER_TAG,
    WAREHOUSE_AFTER_EXPORTS_SENSOR,
    build_automation,
)
from sales_assets.export_layer import export_key
from sales_assets.ingest import defs as ingest
from sales_assets.ingest.defs import INGEST_EXPORTS_JOB, ingest_exports_job
from sales_assets.ingest.partitions import EXPORTS_PARTITIONS
from sales_assets.io import sha256_file
from sales_assets.resources import build_resources
from sales_assets.settings import AutomationSettings
from sales_assets.timeseries.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from sales_assets.warehouse import defs as warehouse

HEADER = "ORDERNUMBER,ORDERLINENUMBER,SALES\n"
BASE_NS = 1_700_000_000 * 10**9


def write(path: Path, body: str, age_seconds: int) -> str:
    """Write an export with a fixed modification time; returns its partition key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + body)
    os.utime(path, ns=(BASE_NS + age_seconds * 10**9,) * 2)
    return export_key(path.name, sha256_file(path))


def definitions(folder_mode: bool) -> dg.Definitions:
    built = build_automation(AutomationSettings(), exports_job=ingest_exports_job if folder_mode else None)
    return dg.Definitions.merge(
        ingest.defs_for(folder_mode),
        warehouse.defs,
        dg.Definitions(
            jobs=built.jobs, schedules=built.schedules, sensors=built.sensors, resources=build_resources()
        ),
    )


def tick(sensor: dg.SensorDefinition, cursor, instance, data_dir: Path, raw_dir: Path | None):
    context = dg.build_sensor_context(
        cursor=cursor, instance=instance, resources=build_resources(data_dir=data_dir, raw_dir=raw_dir)
    )
    return sensor.evaluate_tick(context)


def apply(instance: dg.DagsterInstance, result) -> None:
    """What the sensor daemon does with a tick's partition requests."""
    for request in result.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def requested_keys(instance: dg.DagsterInstance, request: dg.RunRequest) -> list[str]:
    """The registered keys the run's partition range covers."""
    keys = instance.get_dynamic_partitions(EXPORTS_PARTITIONS.name)
    first, last = request.tags[PARTITION_RANGE_START_TAG], request.tags[PARTITION_RANGE_END_TAG]
    return keys[keys.index(first) : keys.index(last) + 1]


def test_the_sensor_registers_and_requests_only_new_files(tmp_path: Path):
    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    keys = [
        write(raw_dir / f"2003-{m:02d}.csv", f"{10100 + m},1,{m}.5\n", age_seconds=m) for m in (10, 11, 12)
    ]
    sensor = definitions(folder_mode=True).resolve_sensor_def(RAW_EXPORT_FILES_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == INGEST_EXPORTS_JOB

    with dg.instance_for_test() as instance:
        first = tick(sensor, None, instance, data_dir, raw_dir)
        [request] = first.run_requests
        [added] = first.dynamic_partitions_requests
        assert list(added.partition_keys) == keys  # oldest first
        assert [e.partition for e in first.asset_events] == keys
        apply(instance, first)
        assert requested_keys(instance, request) == keys

        # Nothing new: no registration, no run. Touching a file (same bytes) is not new either.
        idle = tick(sensor, first.cursor, instance, data_dir, raw_dir)
        assert idle.run_requests == [] and idle.dynamic_partitions_requests == []
        os.utime(raw_dir / "2003-10.csv", ns=(BASE_NS + 99 * 10**9,) * 2)
        touched = tick(sensor, idle.cursor, instance, data_dir, raw_dir)
        assert touched.run_requests == [] and touched.dynamic_partitions_requests == []

        # A new file and a changed one: exactly their keys are registered and requested; the changed
        # file's old key is unregistered.
        changed = write(raw_dir / "2003-11.csv", "10111,1,11.5\n10111,2,3.0\n", age_seconds=200)
        added_file = write(raw_dir / "2004-01.csv", "10201,1,1.5\n", age_seconds=300)
        later = tick(sensor, touched.cursor, instance, data_dir, raw_dir)
        [request] = later.run_requests
        add, delete = later.dynamic_partitions_requests
        assert list(add.partition_keys) == [changed, added_file]
        assert list(delete.partition_keys) == [keys[1]]
        apply(instance, later)
        assert requested_keys(instance, request) == [changed, added_file]
        assert instance.get_dynamic_partitions(EXPORTS_PARTITIONS.name) == [
            keys[0],
            keys[2],
            changed,
            added_file,
        ]

        # A removed file: unregistered, nothing requested.
        (raw_dir / "2003-12.csv").unlink()
        removed = tick(sensor, later.cursor, instance, data_dir, raw_dir)
        assert removed.run_requests == []
        [delete] = removed.dynamic_partitions_requests
        assert list(delete.partition_keys) == [keys[2]]


def test_the_sensor_skips_without_a_folder(tmp_path: Path):
    sensor = definitions(folder_mode=True).resolve_sensor_def(RAW_EXPORT_FILES_SENSOR)
    with dg.instance_for_test() as instance:
        result = tick(sensor, None, instance, tmp_path / "data", None)
    assert result.run_requests == [] and "SALES_RAW_DIR is not set" in result.skip_message


def test_folder_mode_schedule_cleans_only_new_exports_and_refresh_skips_the_single_csv(tmp_path: Path):
    raw_dir, data_dir = tmp_path / "exports", tmp_path / "data"
    defs = definitions(folder_mode=True)
    refresh = defs.resolve_job_def(REFRESH_ALL_JOB)
    assert {k.to_user_string() for k in refresh.asset_layer.selected_asset_keys} == {"duckdb_table"}
    schedule = defs.resolve_schedule_def(DAILY_REFRESH_SCHEDULE)
    assert schedule.job_name == INGEST_EXPORTS_JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    first = write(raw_dir / "a.csv", "10100,1,2.5\n", age_seconds=1)

    def evaluate(instance):
        # As a context manager, so the context's resources and instance are released after the tick.
        with dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=dt.datetime(2025, 3, 1, 6, tzinfo=dt.UTC),
            resources=build_resources(data_dir=data_dir, raw_dir=raw_dir),
        ) as context:
            return schedule.evaluate_tick(context)

    with dg.instance_for_test() as instance:
        [request] = evaluate(instance).run_requests
        assert requested_keys(instance, request) == [first]
        assert evaluate(instance).run_requests == []  # a day without new exports starts nothing
        second = write(raw_dir / "b.csv", "10101,1,3.5\n", age_seconds=2)
        [request] = evaluate(instance).run_requests
        assert requested_keys(instance, request) == [second]
        assert request.tags[TRIGGER_TAG] == DAILY_REFRESH_SCHEDULE


def test_a_successful_export_run_starts_the_refresh_once(tmp_path: Path):
    defs = definitions(folder_mode=True)
    sensor = defs.resolve_sensor_def(WAREHOUSE_AFTER_EXPORTS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    @dg.asset(partitions_def=EXPORTS_PARTITIONS)
    def clean_export() -> None:
        pass

    stand_in = dg.Definitions(assets=[clean_export], jobs=[ingest_exports_job])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(EXPORTS_PARTITIONS.name, ["a.csv@000000000000"])
        result = stand_in.resolve_job_def(INGEST_EXPORTS_JOB).execute_in_process(
            instance=instance, partition_key="a.csv@000000000000"
        )
        context = dg.build_run_status_sensor_context(
            sensor_name=WAREHOUSE_AFTER_EXPORTS_SENSOR,
            dagster_event=result.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        request = sensor(context)
    assert request.run_key == result.run_id
    assert request.tags[TRIGGER_TAG] == WAREHOUSE_AFTER_EXPORTS_SENSOR


@pytest.mark.parametrize("folder_mode", [False, True])
def test_no_refresh_job_holds_an_export_partition(folder_mode: bool):
    defs = definitions(folder_mode)
    for job in (REFRESH_ALL_JOB, "refresh_cheap_chain", "refresh_heavy"):
        keys = {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}
        assert not keys & {"raw_export", "clean_export"}, job
        if job == REFRESH_ALL_JOB:
            assert ("raw_csv" in keys) == (not folder_mode)
