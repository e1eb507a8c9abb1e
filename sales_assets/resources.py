"""Resources the assets share: the settings object, the DuckDB writer and reader, and their wiring."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from sales_assets.settings import Settings

# The DuckDB file has one writer; assets that write it run in this pool (limit 1 in dagster.yaml).
DUCKDB_WRITER_POOL = "duckdb_writer"

# A step that finds the DuckDB file locked by another process waits inside `DuckDBResource.get_connection`:
# it retries opening on `duckdb.IOException` ten times with exponential backoff (0.1 s doubling, about
# 100 s in all). No asset has a Dagster RetryPolicy: Dagster turns a Ctrl-C (an interrupt) in a step that
# has one into a retry of that step (dagster/_core/execution/plan/utils.py, "respect retry policy when
# interrupts occur"), so an interrupted run would carry on instead of stopping.


class SalesSettingsResource(dg.ConfigurableResource):
    """The settings object as a resource. Empty fields fall back to the environment and defaults;
    tests set `data_dir` (and `raw_csv` or `raw_dir`) to run the graph on temp folders."""

    data_dir: str | None = None
    raw_csv: str | None = None
    raw_dir: str | None = None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Every step starts by sweeping what dead runs left in the data folder and by watching its run's
        process (a step worker exits when the run's process dies; see `sales_assets.recovery`), with the
        log filters of `sales_assets.quiet_logs` installed."""
        from sales_assets import quiet_logs
        from sales_assets.recovery import prepare_step

        quiet_logs.install()
        run_id = context.run.run_id if context.run is not None else None
        swept = prepare_step(context.instance, run_id, self.get().root)
        if swept.removed:
            context.log.info(
                f"removed {len(swept.removed)} temp file(s)/folder(s) that dead runs left: {swept.removed[:5]}"
            )
        if swept.left:
            context.log.warning(
                f"{len(swept.left)} temp file(s)/folder(s) that dead runs left could not be removed: "
                f"{swept.left[:5]}"
            )

    def get(self) -> Settings:
        """The settings object with the fields set here; raises pydantic's ValidationError for a location
        that is not a local path (`sales_assets.settings.local_location`). The texts go to the settings
        object as given: a `Path` would turn `s3://bucket` into the local `s3:/bucket` first."""
        overrides = {
            name: value
            for name, value in (
                ("data_dir", self.data_dir),
                ("raw_csv", self.raw_csv),
                ("raw_dir", self.raw_dir),
            )
            if value
        }
        return Settings(**overrides)


def run_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of jobs that do not choose their own, by `settings.cluster.executor`: Dagster's
    multiprocess-or-in-process executor locally; `dagster-celery`'s, on the configured broker, in the
    cluster profile (every step a task any worker may take; a step whose worker died fails the run,
    `sales_assets.cluster`)."""
    if settings.cluster.executor == "celery":
        from dagster_celery import celery_executor

        from sales_assets.cluster import CELERY_CONFIG_SOURCE, watching_workers

        configured = celery_executor.configured(
            {
                "broker": settings.cluster.celery_broker,
                "backend": settings.cluster.celery_backend,
                "config_source": CELERY_CONFIG_SOURCE,
            },
            name="celery",
        )
        return watching_workers(configured, settings.cluster.worker_lost_seconds)
    return dg.multi_or_in_process_executor


def build_resources(
    data_dir: str | Path | None = None,
    raw_csv: str | Path | None = None,
    raw_dir: str | Path | None = None,
) -> dict:
    """Every resource the graph needs, rooted at `data_dir` (default: the settings object's); `raw_dir`
    switches the input to a folder of exports."""
    settings_resource = SalesSettingsResource(
        data_dir=str(data_dir) if data_dir is not None else None,
        raw_csv=str(raw_csv) if raw_csv is not None else None,
        raw_dir=str(raw_dir) if raw_dir is not None else None,
    )
    settings = settings_resource.get()
    database = str(settings.duckdb_path)
    limits = {"memory_limit": settings.warehouse.memory_limit, "threads": settings.warehouse.threads}
    return {
        "sales_settings": settings_resource,
        "duckdb": DuckDBResource(database=database, connection_config=limits),
        "duckdb_reader": DuckDBResource(
            database=database, connection_config={**limits, "access_mode": "READ_ONLY"}
        ),
    }
