"""The one Definitions object of the code location: every group's `defs` merged, the automation over the
whole graph, the resources they share, and the catalogue attributes every asset gets here, in one place
(owners, tags, a code version, a freshness policy matching the daily schedule) instead of in each group.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import dagster as dg

from sales_assets.analytics import defs as analytics
from sales_assets.automation import (
    COST_TAG,
    HEAVY_ASSETS,
    SINGLE_CSV_ASSETS,
    build_automation,
    cheap_in_one_process,
)
from sales_assets.code_versions import group_code_version
from sales_assets.ingest import defs as ingest
from sales_assets.ml import defs as ml
from sales_assets.recovery import recovering
from sales_assets.resources import build_resources, run_executor
from sales_assets.settings import Settings
from sales_assets.timeseries import defs as timeseries
from sales_assets.warehouse import defs as warehouse

# Who answers for a group's assets (Dagster owners: "team:<name>" or an e-mail address).
GROUP_OWNERS = {
    "ingest": "team:ingest",
    "warehouse": "team:platform",
    "analytics": "team:analytics",
    "ml": "team:ml",
    "timeseries": "team:timeseries",
}


def daily_freshness(settings: Settings) -> dg.FreshnessPolicy:
    """Fresh while materialised since the previous tick of the daily refresh schedule: at each tick the
    last materialisation must be at most a day older than the tick (same cron and time zone)."""
    return dg.FreshnessPolicy.cron(
        deadline_cron=settings.automation.schedule_cron,
        lower_bound_delta=timedelta(days=1),
        timezone=settings.automation.schedule_timezone,
    )


def with_catalogue_attributes(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """`defs` with owners, tags, a code version and the daily freshness policy on every asset; what a
    group set itself wins."""
    versions = {group: group_code_version(group, settings) for group in GROUP_OWNERS}
    freshness = daily_freshness(settings)

    def attributes(spec: dg.AssetSpec) -> dg.AssetSpec:
        group = spec.group_name or "default"
        name = spec.key.to_user_string()
        spec = spec.replace_attributes(
            owners=spec.owners or [GROUP_OWNERS.get(group, "team:platform")],
            tags={
                "domain": "sales",
                COST_TAG: "heavy" if name in HEAVY_ASSETS else "cheap",
                **spec.tags,
            },
            code_version=spec.code_version or versions.get(group),
            freshness_policy=spec.freshness_policy or freshness,
        )
        return spec

    # map_asset_specs is the documented way to set attributes across a Definitions; its "preview" status
    # is Dagster's, and the warning would print on every import of the code location.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(func=attributes)


def without_single_csv_deps(defs: dg.Definitions) -> dg.Definitions:
    """`defs` with no drawn upstream on the single CSV's assets, which a folder-mode location does not
    define (a dep on an undefined key would show it as a never-materialised external asset). `duckdb_table`
    is then drawn without an upstream: an edge from the partitioned `clean_export` would mix partitioned and
    unpartitioned assets in one selection (see `sales_assets.warehouse.assets`); the automation orders it
    after the export runs."""
    single_csv = {dg.AssetKey(name) for name in SINGLE_CSV_ASSETS}

    def drop(spec: dg.AssetSpec) -> dg.AssetSpec:
        kept = [dep for dep in spec.deps if dep.asset_key not in single_csv]
        return spec if len(kept) == len(spec.deps) else spec.replace_attributes(deps=kept)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(func=drop)


def local_or_cluster_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of runs whose job does not choose one: `run_executor`'s, and locally one process for a
    run of cheap assets only (`automation.cheap_in_one_process`)."""
    executor = run_executor(settings)
    if executor.name == dg.multi_or_in_process_executor.name:
        return cheap_in_one_process(executor)
    return executor


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Every group's `defs` merged with the automation and resources, catalogue attributes applied, for the
    input mode of `settings` (default: `Settings()`, read here and nowhere else at load): folder mode when
    `raw_dir` is set (`raw_export`, `clean_export` and their job and sensors), else single-CSV mode
    (`raw_csv`, `clean_parquet` and the CSV's sensor)."""
    settings = settings or Settings()
    folder_mode = settings.raw_dir is not None
    automation = build_automation(
        settings.automation,
        segments_job=timeseries.ts_risk_reports_job,
        exports_job=ingest.ingest_exports_job if folder_mode else None,
    )
    merged = dg.Definitions.merge(
        ingest.defs_for(folder_mode),
        warehouse.defs,
        analytics.defs,
        ml.defs,
        timeseries.defs,
        dg.Definitions(
            jobs=automation.jobs,
            schedules=automation.schedules,
            sensors=automation.sensors,
            resources=build_resources(),
            # Every run starts by recovering runs whose process died (pool slots, status, MLflow runs).
            # Locally a process per step, but one process for a run of cheap assets only
            # (`automation.cheap_in_one_process`); celery in the cluster profile; the jobs of
            # `sales_assets.automation` choose per job.
            executor=recovering(local_or_cluster_executor(settings)),
        ),
    )
    if folder_mode:
        merged = without_single_csv_deps(merged)
    return with_catalogue_attributes(merged, settings)


defs = build_definitions()


def resolved_job(name: str) -> dg.JobDefinition:
    """Job `name` of the code location, resolved: the reconstructor that `dg.execute_job` and re-execution
    take outside the UI, e.g. a re-execution from a failed run's failure:
    `dg.execute_job(dg.build_reconstructable_job("sales_assets.definitions", "resolved_job", ("refresh_all",)),
    instance, reexecution_options=dg.ReexecutionOptions.from_failure(run_id, instance))`."""
    return defs.resolve_job_def(name)
