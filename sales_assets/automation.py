"""Automation of the whole graph: the refresh job, the daily schedule, the sensor that refreshes when the raw
CSV's content changes, and the hand-over from the unpartitioned refresh to one run over every segment partition."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from sales_assets.io import sha256_file
from sales_assets.recovery import recovering
from sales_assets.resources import SalesSettingsResource
from sales_assets.settings import AutomationSettings, Settings
from sales_assets.timeseries.defs import ts_risk_reports_job
from sales_assets.timeseries.partitions import partition_range_tags

REFRESH_ALL_JOB = "refresh_all"
CHEAP_CHAIN_JOB = "refresh_cheap_chain"
HEAVY_JOB = "refresh_heavy"
# Tag on every asset (set in sales_assets.definitions): "heavy" for the steps whose own work dominates a
# refresh (HEAVY_ASSETS), "cheap" for the rest. It chooses the executor of the two-run refresh.
COST_TAG = "cost"
HEAVY_ASSETS = frozenset({"trained_models", "shap_importance", "onnx_model", "ts_risk_reports"})
DAILY_REFRESH_SCHEDULE = "daily_refresh"
RAW_CSV_CHANGE_SENSOR = "raw_csv_change"
SEGMENTS_AFTER_REFRESH_SENSOR = "segments_after_refresh"

# Tags that say why a run was started; the UI can filter runs by them.
TRIGGER_TAG = "sales/trigger"
RAW_CSV_SHA256_TAG = "sales/raw_csv_sha256"
UPSTREAM_RUN_TAG = "sales/refresh_all_run"


@dataclass(frozen=True)
class Automation:
    jobs: list[dg.UnresolvedAssetJobDefinition]
    schedules: list[dg.ScheduleDefinition]
    sensors: list[dg.SensorDefinition]


def segment_run_requests(
    instance: dg.DagsterInstance, partitions_def: dg.DynamicPartitionsDefinition, upstream_run_id: str
) -> list[dg.RunRequest]:
    """ONE run request over the range of every registered partition (none when none is registered), so
    the segments of one refresh run in one process (issue 15); keyed on the upstream run so a
    re-evaluation of the same finished run never launches them twice."""
    if partitions_def.name is None:
        raise ValueError("the segment partitions definition needs a name to be listed from the instance")
    keys = instance.get_dynamic_partitions(partitions_def.name)
    if not keys:
        return []
    return [
        dg.RunRequest(
            run_key=upstream_run_id,
            tags={
                TRIGGER_TAG: SEGMENTS_AFTER_REFRESH_SENSOR,
                UPSTREAM_RUN_TAG: upstream_run_id,
                **partition_range_tags(keys[0], keys[-1]),
            },
        )
    ]


def build_automation(
    automation_settings: AutomationSettings, segments_job: dg.UnresolvedAssetJobDefinition | None = None
) -> Automation:
    """The refresh job, schedule and sensors of a graph whose dynamically partitioned part is what
    `segments_job` selects (None: nothing is partitioned).

    A run holds assets of one partitions definition only, so "refresh everything" is `refresh_all` (every
    other asset) and, after it succeeds, one `segments_job` run over every registered partition.
    """
    partitions_def = segments_job.partitions_def if segments_job is not None else None
    if segments_job is not None and not isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        raise ValueError(
            f"job {segments_job.name!r} must be partitioned by a DynamicPartitionsDefinition, got {partitions_def!r}"
        )
    partitioned = segments_job.selection if segments_job is not None else dg.AssetSelection.assets()
    # What needs the segment partitions (they and what reads them) runs after them, not in a refresh run.
    after_segments = partitioned.downstream()
    refresh_all = dg.define_asset_job(
        REFRESH_ALL_JOB,
        selection=dg.AssetSelection.all() - after_segments,
        description="Materialises every unpartitioned asset (and its checks) in dependency order. When it "
        f"succeeds, sensor `{SEGMENTS_AFTER_REFRESH_SENSOR}` refreshes each segment partition.",
        tags={TRIGGER_TAG: "manual"},
    )
    # The same refresh in two runs, for commands (the quickstart, CI): the cheap chain in one process (each
    # step's own work is about a second, a step process costs seconds to start), the heavy steps each in
    # their own process (memory returned after each, a crash kills one step). BENCHMARKS.md has the figures.
    cheap_chain = dg.define_asset_job(
        CHEAP_CHAIN_JOB,
        selection=dg.AssetSelection.tag(COST_TAG, "cheap") - after_segments,
        executor_def=recovering(dg.in_process_executor),
        description="Every cheap unpartitioned asset (ingest, warehouse, analytics, the segment catalogue) "
        "in one process.",
        tags={TRIGGER_TAG: "manual"},
    )
    heavy = dg.define_asset_job(
        HEAVY_JOB,
        selection=dg.AssetSelection.tag(COST_TAG, "heavy") - after_segments,
        executor_def=recovering(dg.multiprocess_executor),
        description=f"Training, SHAP and ONNX export, each step in its own process; run after `{CHEAP_CHAIN_JOB}`.",
        tags={TRIGGER_TAG: "manual"},
    )

    daily_refresh = dg.ScheduleDefinition(
        name=DAILY_REFRESH_SCHEDULE,
        job=refresh_all,
        cron_schedule=automation_settings.schedule_cron,
        execution_timezone=automation_settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Refreshes the whole graph every day ({automation_settings.schedule_cron}, "
        f"{automation_settings.schedule_timezone}). Off until switched on.",
        tags={TRIGGER_TAG: DAILY_REFRESH_SCHEDULE},
    )

    @dg.sensor(
        name=RAW_CSV_CHANGE_SENSOR,
        job=refresh_all,
        minimum_interval_seconds=automation_settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def raw_csv_change(
        context: dg.SensorEvaluationContext, sales_settings: SalesSettingsResource
    ) -> dg.SensorResult | dg.SkipReason:
        """Starts `refresh_all` when the bytes of the raw CSV change. The cursor holds the sha256 of the
        content last acted on, so touching the file (new mtime, same bytes) starts nothing. The first
        evaluation after switching it on only records the file's hash: switching the sensor on is not a
        change of the data, and the outputs on disk may come from another file the user chose."""
        path = sales_settings.get().raw_csv_path
        if not path.is_file():
            return dg.SkipReason(f"raw CSV {path} does not exist")
        digest = sha256_file(path)
        if context.cursor is None:
            return dg.SensorResult(
                skip_reason=f"first evaluation: recorded raw CSV {path} (sha256 {digest[:12]}); "
                "a later change of its content starts a refresh",
                cursor=digest,
            )
        if digest == context.cursor:
            return dg.SkipReason(f"raw CSV {path} unchanged (sha256 {digest[:12]})")
        context.log.info(f"raw CSV {path} changed: sha256 {context.cursor} -> {digest}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(tags={TRIGGER_TAG: RAW_CSV_CHANGE_SENSOR, RAW_CSV_SHA256_TAG: digest})
            ],
            cursor=digest,
        )

    sensors: list[dg.SensorDefinition] = [raw_csv_change]
    if segments_job is not None:
        # On by default: it only acts after a successful `refresh_all`, which someone (or the schedule or
        # the CSV sensor, both off by default) started, and finishes what "refresh all" promises.
        @dg.run_status_sensor(
            name=SEGMENTS_AFTER_REFRESH_SENSOR,
            run_status=dg.DagsterRunStatus.SUCCESS,
            monitored_jobs=[refresh_all],
            request_job=segments_job,
            default_status=dg.DefaultSensorStatus.RUNNING,
            # Dagster's daemon logs "skipped: Sensor function returned an empty result" on every tick
            # without a new refresh_all success (the run-status wrapper yields nothing then, and the
            # daemon's logger cannot be filtered from the project): the configured interval, not the 30 s
            # default, keeps that line as rare as the CSV sensor's.
            minimum_interval_seconds=automation_settings.sensor_interval_seconds,
        )
        def segments_after_refresh(context: dg.RunStatusSensorContext) -> list[dg.RunRequest] | dg.SkipReason:
            """After `refresh_all` succeeds (the warehouse is fresh and the segments are registered),
            requests one run of the per-segment job over every registered segment partition."""
            requests = segment_run_requests(context.instance, partitions_def, context.dagster_run.run_id)
            if not requests:
                return dg.SkipReason(f"no partitions registered in {partitions_def.name!r}")
            return requests

        sensors.append(segments_after_refresh)

    # The segment job belongs to the timeseries group, which exports it; only refresh_all is new here.
    return Automation(jobs=[refresh_all, cheap_chain, heavy], schedules=[daily_refresh], sensors=sensors)


_automation = build_automation(Settings().automation, segments_job=ts_risk_reports_job)
jobs = _automation.jobs
schedules = _automation.schedules
sensors = _automation.sensors
