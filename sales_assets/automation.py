"""Automation of the whole graph: the refresh job, the daily schedule, the sensor that refreshes when the raw
CSV's content changes, and the hand-over from the unpartitioned refresh to one run over every segment partition.

With a folder of exports (`SALES_RAW_DIR`, "folder mode"), the input arrives as files, each a partition of
`raw_export`/`clean_export` keyed by name and content hash. The sensor `raw_export_files` (off by default)
registers each new key once (and unregisters keys whose file is gone or changed) and requests ONE
`ingest_exports` run over only the new keys; in folder mode, when that run succeeds,
`warehouse_after_exports` (on by default, it only follows those runs; it takes the place of
`raw_csv_change`) starts `refresh_all`, which rebuilds the warehouse from the exports now in the folder.
In folder mode the daily schedule does the same registration and targets `ingest_exports`, so a day
without new files cleans and refreshes nothing. Each mode's location defines only its own input assets
(`raw_csv`, `clean_parquet` or `raw_export`, `clean_export`), so the refresh selects no asset of the other.

Built per mode by `build_automation` from small functions, one per job, schedule and sensor; nothing here
reads the settings at import: `sales_assets.definitions` passes them in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from sales_assets.export_layer import ExportFile, scan_exports
from sales_assets.ingest.partitions import EXPORTS_PARTITIONS
from sales_assets.io import sha256_file
from sales_assets.recovery import recovering
from sales_assets.resources import SalesSettingsResource
from sales_assets.settings import AutomationSettings
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS, partition_range_tags

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
RAW_EXPORT_FILES_SENSOR = "raw_export_files"
WAREHOUSE_AFTER_EXPORTS_SENSOR = "warehouse_after_exports"
# The assets of the single CSV, defined in single-CSV mode only.
SINGLE_CSV_ASSETS = ("raw_csv", "clean_parquet")
RAW_EXPORT_ASSET = "raw_export"
# The run tag Dagster stores an asset's data version under (the top-level package does not export it).
DATA_VERSION_TAG = "dagster/data_version"

# Tags that say why a run was started; the UI can filter runs by them.
TRIGGER_TAG = "sales/trigger"
RAW_CSV_SHA256_TAG = "sales/raw_csv_sha256"
UPSTREAM_RUN_TAG = "sales/refresh_all_run"
EXPORTS_RUN_TAG = "sales/ingest_exports_run"
NEW_EXPORTS_TAG = "sales/new_exports"


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


@dataclass(frozen=True)
class ExportRegistration:
    """What one look at the folder of exports decided: keys to register (oldest first), keys to
    unregister (file gone or changed), the run over the new keys (None when there is none), the
    `raw_export` events of the new keys, and the exports seen."""

    new_keys: list[str]
    stale_keys: list[str]
    run_request: dg.RunRequest | None
    raw_export_events: list[dg.AssetMaterialization]
    exports: list[ExportFile]


def register_exports(
    exports: Sequence[ExportFile], registered: Sequence[str], trigger: str
) -> ExportRegistration:
    """Compare the exports in the folder with the registered partition keys: each export whose current key
    is not registered is new (in rank order: modification time, then name, the order the warehouse
    ranks them), each registered key no export has now is stale. The run request covers exactly the new
    keys: registered together, they are the last keys of the dynamic partitions, one range."""
    current = {export.key: export for export in exports}
    new = sorted(
        (e for k, e in current.items() if k not in set(registered)), key=lambda e: (e.mtime_ns, e.name)
    )
    stale = [key for key in registered if key not in current]
    request = None
    if new:
        request = dg.RunRequest(
            tags={
                TRIGGER_TAG: trigger,
                NEW_EXPORTS_TAG: str(len(new)),
                **partition_range_tags(new[0].key, new[-1].key),
            }
        )
    events = [
        dg.AssetMaterialization(
            asset_key=RAW_EXPORT_ASSET,
            partition=e.key,
            metadata={
                "name": e.name,
                "path": dg.MetadataValue.path(str(e.path)),
                "bytes": e.bytes,
                "sha256_prefix": e.sha256[:16],
                "mtime_ns": e.mtime_ns,
            },
        )
        for e in new
    ]
    return ExportRegistration([e.key for e in new], stale, request, events, list(exports))


def refresh_request(
    instance: dg.DagsterInstance, repository: dg.RepositoryDefinition | None, raw_csv_path: Path, trigger: str
) -> dg.RunRequest | dg.SkipReason:
    """What a scheduled refresh of `refresh_all` should run: everything when the raw CSV's sha256 is not the
    data version of the last `raw_csv` materialisation (or there is none, or no `repository` to plan on);
    otherwise the assets `sales_assets.refresh.plan_refresh` finds stale (code or settings changed, and
    what is below them) as one run, or a skip that names the runs whose outputs are still current."""
    tags = {TRIGGER_TAG: trigger}
    raw_csv = dg.AssetKey(SINGLE_CSV_ASSETS[0])
    last = instance.get_latest_materialization_event(raw_csv)
    last_version = last.asset_materialization.tags.get(DATA_VERSION_TAG) if last else None
    if repository is None or not raw_csv_path.is_file() or sha256_file(raw_csv_path) != last_version:
        return dg.RunRequest(tags=tags)
    from sales_assets.refresh import plan_refresh  # it imports this module

    keys = set(repository.get_job(REFRESH_ALL_JOB).asset_layer.executable_asset_keys) - {raw_csv}
    plan = plan_refresh(instance, repository.asset_graph, keys)
    if not plan.run:
        runs = sorted(set(plan.unchanged.values()))
        return dg.SkipReason(
            f"raw CSV {raw_csv_path} unchanged (sha256 {last_version[:12]}) and no code or setting changed: "
            f"inputs unchanged since run(s) {', '.join(runs)}"
        )
    return dg.RunRequest(tags=tags, asset_selection=plan.run)


def _hash_cache(cursor: str | None) -> dict[str, tuple[int, int, str]]:
    """The sensor cursor's (bytes, mtime_ns, sha256) per export name; empty when unreadable."""
    try:
        return {name: tuple(value) for name, value in json.loads(cursor or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _dynamic_partitions(
    job: dg.UnresolvedAssetJobDefinition | None, selected: dg.PartitionsDefinition
) -> dg.DynamicPartitionsDefinition | None:
    """The partitions of the job's runs (None for no job): those it declares (Dagster deprecates declaring
    them, they follow from the selected assets), else `selected`, the partitions of the assets its group
    selects. Raises ValueError unless they are dynamic."""
    if job is None:
        return None
    partitions_def = job.partitions_def or selected
    if not isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        raise ValueError(
            f"job {job.name!r} must be partitioned by a DynamicPartitionsDefinition, got {partitions_def!r}"
        )
    return partitions_def


def not_refreshed_selection(
    segments_job: dg.UnresolvedAssetJobDefinition | None, exports_job: dg.UnresolvedAssetJobDefinition | None
) -> dg.AssetSelection:
    """What a refresh run leaves out: what needs the segment partitions (they and what reads them run after
    them) and the export partitions with the external `raw_export` above them (they run in `exports_job`)."""
    partitioned = segments_job.selection if segments_job is not None else dg.AssetSelection.assets()
    not_refreshed = partitioned.downstream()
    if exports_job is not None:
        not_refreshed = not_refreshed | exports_job.selection.upstream()
    return not_refreshed


def refresh_jobs(not_refreshed: dg.AssetSelection) -> list[dg.UnresolvedAssetJobDefinition]:
    """`refresh_all`, then the same refresh in two runs for commands (the quickstart, CI): the cheap chain in
    one process (each step's own work is about a second, a step process costs seconds to start), the heavy
    steps each in their own process (memory returned after each, a crash kills one step). BENCHMARKS.md has
    the figures."""
    refresh_all = dg.define_asset_job(
        REFRESH_ALL_JOB,
        selection=dg.AssetSelection.all() - not_refreshed,
        description="Materialises every unpartitioned asset (and its checks) in dependency order. When it "
        f"succeeds, sensor `{SEGMENTS_AFTER_REFRESH_SENSOR}` refreshes each segment partition.",
        tags={TRIGGER_TAG: "manual"},
    )
    cheap_chain = dg.define_asset_job(
        CHEAP_CHAIN_JOB,
        selection=dg.AssetSelection.tag(COST_TAG, "cheap") - not_refreshed,
        executor_def=recovering(dg.in_process_executor),
        description="Every cheap unpartitioned asset (ingest, warehouse, analytics, the segment catalogue) "
        "in one process.",
        tags={TRIGGER_TAG: "manual"},
    )
    heavy = dg.define_asset_job(
        HEAVY_JOB,
        selection=dg.AssetSelection.tag(COST_TAG, "heavy") - not_refreshed,
        executor_def=recovering(dg.multiprocess_executor),
        description=f"Training, SHAP and ONNX export, each step in its own process; run after `{CHEAP_CHAIN_JOB}`.",
        tags={TRIGGER_TAG: "manual"},
    )
    return [refresh_all, cheap_chain, heavy]


def single_csv_schedule(
    settings: AutomationSettings, refresh_all: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """Single-CSV mode: the daily refresh of what is new in the one CSV (or in the code and settings)."""

    @dg.schedule(
        name=DAILY_REFRESH_SCHEDULE,
        job=refresh_all,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every day ({settings.schedule_cron}, {settings.schedule_timezone}) "
        "refreshes what is new: everything when the raw CSV's bytes changed, else only the assets whose "
        "code or settings changed and what is below them; a day with nothing new starts nothing and says "
        "since which run. Off until switched on.",
    )
    def daily_refresh(
        context: dg.ScheduleEvaluationContext, sales_settings: SalesSettingsResource
    ) -> dg.RunRequest | dg.SkipReason:
        """The whole refresh when the raw CSV's sha256 is not the data version of the last `raw_csv`
        materialisation (or there is none); otherwise the plan of `sales_assets.refresh.plan_refresh`
        over the rest of `refresh_all`, as one run of the assets to run, or a skip with the reason."""
        try:
            repository = context.repository_def
        except dg.DagsterInvariantViolationError:  # a context built without one (tests)
            repository = None
        return refresh_request(
            context.instance, repository, sales_settings.get().raw_csv_path, DAILY_REFRESH_SCHEDULE
        )

    return daily_refresh


def export_folder_schedule(
    settings: AutomationSettings, exports_job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """Folder mode: the daily registration of the new exports and one run of `exports_job` over them."""
    exports_def = _dynamic_partitions(exports_job, EXPORTS_PARTITIONS)

    @dg.schedule(
        name=DAILY_REFRESH_SCHEDULE,
        job=exports_job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every day ({settings.schedule_cron}, {settings.schedule_timezone}) "
        "registers the exports that are new in SALES_RAW_DIR and cleans only them in one run; sensor "
        f"`{WAREHOUSE_AFTER_EXPORTS_SENSOR}` then refreshes the graph. Off until switched on.",
    )
    def daily_refresh(
        context: dg.ScheduleEvaluationContext, sales_settings: SalesSettingsResource
    ) -> dg.RunRequest | dg.SkipReason:
        """Folder mode: registers the new export keys (a schedule result cannot carry partition
        requests, so it adds them to the instance itself, with their `raw_export` events) and
        requests one run over them; a day without new exports starts nothing."""
        settings = sales_settings.get()
        registration = register_exports(
            scan_exports(settings.raw_dir_path, settings.ingest.export_glob),
            context.instance.get_dynamic_partitions(exports_def.name),
            DAILY_REFRESH_SCHEDULE,
        )
        for key in registration.stale_keys:
            context.instance.delete_dynamic_partition(exports_def.name, key)
        if registration.run_request is None:
            return dg.SkipReason(f"no new export in {settings.raw_dir_path}")
        context.instance.add_dynamic_partitions(exports_def.name, registration.new_keys)
        for event in registration.raw_export_events:
            context.instance.report_runless_asset_event(event)
        return registration.run_request

    return daily_refresh


def raw_csv_change_sensor(
    settings: AutomationSettings, refresh_all: dg.UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    """Single-CSV mode: `refresh_all` when the CSV's bytes change (off by default)."""

    @dg.sensor(
        name=RAW_CSV_CHANGE_SENSOR,
        job=refresh_all,
        minimum_interval_seconds=settings.sensor_interval_seconds,
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

    return raw_csv_change


def raw_export_files_sensor(
    settings: AutomationSettings, exports_job: dg.UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    """Folder mode: registers new exports and requests one run of `exports_job` over them (off by default)."""
    exports_def = _dynamic_partitions(exports_job, EXPORTS_PARTITIONS)

    @dg.sensor(
        name=RAW_EXPORT_FILES_SENSOR,
        job=exports_job,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def raw_export_files(
        context: dg.SensorEvaluationContext, sales_settings: SalesSettingsResource
    ) -> dg.SensorResult | dg.SkipReason:
        """Registers each export of SALES_RAW_DIR whose name and content are new (partition key
        `<name>@<sha256[:12]>`) and requests ONE run of the export job over only those keys; keys whose
        file is gone or changed are unregistered (the warehouse does not read them). The cursor keeps
        each file's size, modification time and sha256, so an unchanged file is not read again."""
        settings = sales_settings.get()
        if settings.raw_dir_path is None:
            return dg.SkipReason("SALES_RAW_DIR is not set: the input is one CSV (see raw_csv_change)")
        try:
            exports = scan_exports(
                settings.raw_dir_path, settings.ingest.export_glob, _hash_cache(context.cursor)
            )
        except FileNotFoundError as error:
            return dg.SkipReason(str(error))
        registration = register_exports(
            exports, context.instance.get_dynamic_partitions(exports_def.name), RAW_EXPORT_FILES_SENSOR
        )
        cursor = json.dumps({e.name: [e.bytes, e.mtime_ns, e.sha256] for e in exports}, sort_keys=True)
        requests = []
        if registration.new_keys:
            requests.append(exports_def.build_add_request(registration.new_keys))
            context.log.info(f"new exports: {', '.join(registration.new_keys)}")
        if registration.stale_keys:
            requests.append(exports_def.build_delete_request(registration.stale_keys))
            context.log.info(f"no longer in the folder: {', '.join(registration.stale_keys)}")
        return dg.SensorResult(
            run_requests=[registration.run_request] if registration.run_request else [],
            dynamic_partitions_requests=requests,
            asset_events=registration.raw_export_events,
            cursor=cursor,
            skip_reason=None
            if registration.new_keys
            else f"no new export in {settings.raw_dir_path} ({len(exports)} registered)",
        )

    return raw_export_files


def warehouse_after_exports_sensor(
    settings: AutomationSettings,
    exports_job: dg.UnresolvedAssetJobDefinition,
    refresh_all: dg.UnresolvedAssetJobDefinition,
) -> dg.SensorDefinition:
    """Folder mode: `refresh_all` after each successful export run. On by default, like the segment
    hand-over: it only follows export runs someone started."""

    @dg.run_status_sensor(
        name=WAREHOUSE_AFTER_EXPORTS_SENSOR,
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[exports_job],
        request_job=refresh_all,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.sensor_interval_seconds,
    )
    def warehouse_after_exports(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        """After an export run succeeds, requests `refresh_all` (the warehouse from the exports now in
        the folder, then everything downstream), keyed on that run so it starts once."""
        run_id = context.dagster_run.run_id
        return dg.RunRequest(
            run_key=run_id, tags={TRIGGER_TAG: WAREHOUSE_AFTER_EXPORTS_SENSOR, EXPORTS_RUN_TAG: run_id}
        )

    return warehouse_after_exports


def segments_after_refresh_sensor(
    settings: AutomationSettings,
    segments_job: dg.UnresolvedAssetJobDefinition,
    refresh_all: dg.UnresolvedAssetJobDefinition,
) -> dg.SensorDefinition:
    """One `segments_job` run over every registered segment after each successful `refresh_all`. On by
    default: it only acts after a refresh someone (or the schedule or the CSV sensor, both off by default)
    started, and finishes what "refresh all" promises."""
    partitions_def = _dynamic_partitions(segments_job, SEGMENTS_PARTITIONS)

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
        minimum_interval_seconds=settings.sensor_interval_seconds,
    )
    def segments_after_refresh(context: dg.RunStatusSensorContext) -> list[dg.RunRequest] | dg.SkipReason:
        """After `refresh_all` succeeds (the warehouse is fresh and the segments are registered),
        requests one run of the per-segment job over every registered segment partition."""
        requests = segment_run_requests(context.instance, partitions_def, context.dagster_run.run_id)
        if not requests:
            return dg.SkipReason(f"no partitions registered in {partitions_def.name!r}")
        return requests

    return segments_after_refresh


def build_automation(
    automation_settings: AutomationSettings,
    segments_job: dg.UnresolvedAssetJobDefinition | None = None,
    exports_job: dg.UnresolvedAssetJobDefinition | None = None,
) -> Automation:
    """The refresh jobs, schedule and sensors of one input mode: folder mode when `exports_job` (the job
    over the export partitions) is given, single-CSV mode otherwise. `segments_job` selects the
    dynamically partitioned part of the graph (None: nothing is partitioned).

    A run holds assets of one partitions definition only, so "refresh everything" is `refresh_all` (every
    other asset) and, after it succeeds, one `segments_job` run over every registered partition. Raises
    ValueError when a given job is not dynamically partitioned.
    """
    _dynamic_partitions(segments_job, SEGMENTS_PARTITIONS)
    _dynamic_partitions(exports_job, EXPORTS_PARTITIONS)
    jobs = refresh_jobs(not_refreshed_selection(segments_job, exports_job))
    refresh_all = jobs[0]
    if exports_job is None:
        schedule = single_csv_schedule(automation_settings, refresh_all)
        sensors = [raw_csv_change_sensor(automation_settings, refresh_all)]
    else:
        schedule = export_folder_schedule(automation_settings, exports_job)
        sensors = [
            raw_export_files_sensor(automation_settings, exports_job),
            warehouse_after_exports_sensor(automation_settings, exports_job, refresh_all),
        ]
    if segments_job is not None:
        sensors.append(segments_after_refresh_sensor(automation_settings, segments_job, refresh_all))
    # The segment and export jobs belong to their groups, which export them; only the refresh jobs are new.
    return Automation(jobs=jobs, schedules=[schedule], sensors=sensors)


def cheap_in_one_process(base: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """`base` (Dagster's `multi_or_in_process_executor`: same name, config and requirements) running a run
    whose every selected asset is cheap (`COST_TAG`) in the run's own process, as the refresh's cheap chain
    runs: a step process costs seconds to start (it imports the code location) and a cheap step's own work
    is about that, and steps in one process share what they read (`raw_csv` hands `clean_parquet` the
    export it inspected). A run with a heavy asset, or whose config sets `max_concurrent`, keeps a process
    per step; `{"execution": {"config": {"in_process": {}}}}` still picks one process for any run."""
    create_base = base.executor_creation_fn
    if create_base is None:
        raise ValueError(f"executor {base.name} has no creation function")

    def create(init_context: dg.InitExecutorContext):
        config = init_context.executor_config
        multiprocess = config.get("multiprocess")
        if isinstance(multiprocess, dict) and multiprocess.get("max_concurrent") is None:
            job = init_context.job.get_definition()
            layer = job.asset_layer
            keys = layer.executable_asset_keys
            if keys and all(layer.get(key).tags.get(COST_TAG) == "cheap" for key in keys):
                one_process = {
                    "in_process": {
                        k: multiprocess[k] for k in ("retries", "step_dependency_config") if k in multiprocess
                    }
                }
                init_context = init_context._replace(executor_config=one_process)
        return create_base(init_context)

    return dg.ExecutorDefinition(
        name=base.name,
        config_schema=base.config_schema,
        requirements=base.get_requirements,
        executor_creation_fn=create,
        description=f"{base.description or base.name}; a run of cheap assets only runs in one process.",
    )
