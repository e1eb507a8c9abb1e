"""`python -m sales_assets.refresh [--force] [--max-segments N]`: refresh the whole graph doing only the
work that is new ("nothing new, nothing run"), from one command process.

`raw_csv` always runs first: it reads the input's bytes, and their sha256 is its Dagster data version.
Every other unpartitioned asset then gets Dagster's stale status (its code version, which covers the code
and the settings it reads, see `sales_assets.code_versions`, and the data versions of its inputs, against
those its last materialisation recorded): stale or never materialised assets, and everything below them,
run (the cheap ones in this process, the heavy ones each in its own step process); then the segment
partitions of `ts_risk_reports` that are missing or stale, in one run. What is left alone gets an
observation on the asset ("not rerun: inputs unchanged since run X") for the UI, and a log line. `--force`
runs everything, as the UI's Materialize does. In folder mode (`SALES_RAW_DIR`) there is no single CSV
to read first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from sales_assets.automation import CHEAP_CHAIN_JOB, HEAVY_JOB, SINGLE_CSV_ASSETS, TRIGGER_TAG
from sales_assets.supervise import supervised
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS

RAW_CSV = dg.AssetKey(SINGLE_CSV_ASSETS[0])
SEGMENT_REPORTS = dg.AssetKey("ts_risk_reports")
# Metadata key of the observation left on an asset a refresh did not rerun.
NOT_RERUN = "refresh"
REFRESH_TAG_VALUE = "sales_assets.refresh"


@dataclass(frozen=True)
class RefreshPlan:
    """What a refresh does: `run` the stale or never materialised assets (in graph order), and leave
    `unchanged` alone, each with the run id of the materialisation that is still current and why; the same
    for the segment partitions of `ts_risk_reports` (`segments_run`, `segments_unchanged`)."""

    run: list[dg.AssetKey]
    unchanged: dict[dg.AssetKey, str]
    segments_run: list[str] = field(default_factory=list)
    segments_unchanged: list[str] = field(default_factory=list)

    def reason(self, key: dg.AssetKey) -> str:
        return (
            f"inputs unchanged since run {self.unchanged[key]}: same input data versions, code and settings"
        )


def plan_refresh(
    instance: dg.DagsterInstance, asset_graph: dg.AssetGraph, keys: Collection[dg.AssetKey]
) -> RefreshPlan:
    """Split `keys` (unpartitioned assets of `asset_graph`) by Dagster's stale status on `instance`: an
    asset runs when it is MISSING or STALE (its code version changed, or an input's data version differs
    from the one its last materialisation recorded) or when an asset upstream of it runs; the others are
    left alone.

    The propagation is ours: Dagster's status looks at the inputs' current data versions only, so an asset
    below one that is about to rerun still reads FRESH. Dagster's `RunRequest(stale_assets_only=True)` has
    the same blind spot and only serves the daemon; this uses the resolver behind it for a command.
    """
    resolver = _stale_status_resolver(instance, asset_graph)
    wanted = set(keys)
    run: list[dg.AssetKey] = []
    unchanged: dict[dg.AssetKey, str] = {}
    for key in asset_graph.toposorted_asset_keys:
        if key not in wanted:
            continue
        upstream_runs = any(parent in run for parent in asset_graph.get(key).parent_keys)
        if upstream_runs or resolver.get_status(key) != StaleStatus.FRESH:
            run.append(key)
        else:
            record = instance.get_latest_materialization_event(key)
            unchanged[key] = record.run_id if record is not None else "?"
    return RefreshPlan(run, unchanged)


def _stale_status_resolver(
    instance: dg.DagsterInstance, asset_graph: dg.AssetGraph
) -> CachingStaleStatusResolver:
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=asset_graph,
    )
    return CachingStaleStatusResolver(instance, asset_graph, view)


def stale_segments(
    instance: dg.DagsterInstance, asset_graph: dg.AssetGraph, keys: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(to run, unchanged): the segment partitions of `ts_risk_reports` among `keys` that are missing or
    stale, and those that are fresh, each in the order of `keys`."""
    resolver = _stale_status_resolver(instance, asset_graph)
    run, unchanged = [], []
    for key in keys:
        fresh = resolver.get_status(SEGMENT_REPORTS, key) == StaleStatus.FRESH
        (unchanged if fresh else run).append(key)
    return run, unchanged


def refresh(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    force: bool = False,
    heavy_job: dg.ReconstructableJob | None = None,
    max_segments: int | None = None,
    log=print,
) -> RefreshPlan:
    """Run the refresh of `defs` on `instance` (see the module): the cheap chain's selection in this process,
    then the heavy job's, through `heavy_job` (its reconstructable form, so each step gets its own
    process; None runs it in this process too), then the segment partitions of `ts_risk_reports` that are
    missing or stale (the first `max_segments` registered ones; None: all) in one run. Returns the plan
    that was carried out.

    Raises:
        RuntimeError: a run or a segment failed (named in the message).
    """
    cheap = defs.resolve_job_def(CHEAP_CHAIN_JOB)
    heavy = defs.resolve_job_def(HEAVY_JOB)
    asset_graph = defs.resolve_asset_graph()
    cheap_keys = set(cheap.asset_layer.executable_asset_keys)
    heavy_keys = set(heavy.asset_layer.executable_asset_keys)
    tags = {TRIGGER_TAG: REFRESH_TAG_VALUE}
    if RAW_CSV in cheap_keys and not force:
        _check(cheap.execute_in_process(instance=instance, asset_selection=[RAW_CSV], tags=tags))
    if force:
        plan = RefreshPlan([k for k in asset_graph.toposorted_asset_keys if k in cheap_keys | heavy_keys], {})
    else:
        plan = plan_refresh(instance, asset_graph, (cheap_keys | heavy_keys) - {RAW_CSV})
    for key in plan.unchanged:
        log(f"{key.to_user_string()}: not rerun, {plan.reason(key)}")
        instance.report_runless_asset_event(
            dg.AssetObservation(asset_key=key, metadata={NOT_RERUN: f"not rerun: {plan.reason(key)}"})
        )
    cheap_run = [k for k in plan.run if k in cheap_keys]
    heavy_run = [k for k in plan.run if k in heavy_keys]
    if cheap_run:
        log(f"running in this process: {', '.join(k.to_user_string() for k in cheap_run)}")
        _check(cheap.execute_in_process(instance=instance, asset_selection=cheap_run, tags=tags))
    if heavy_run:
        log(f"running, a process each: {', '.join(k.to_user_string() for k in heavy_run)}")
        if heavy_job is None:
            _check(heavy.execute_in_process(instance=instance, asset_selection=heavy_run, tags=tags))
        else:
            with dg.execute_job(heavy_job, instance, tags=tags, asset_selection=heavy_run) as result:
                _check(result)
    if asset_graph.has(SEGMENT_REPORTS):
        registered = instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name)
        wanted = registered[:max_segments] if max_segments is not None else registered
        if force:
            plan.segments_run.extend(wanted)
        else:
            run, unchanged = stale_segments(instance, asset_graph, wanted)
            plan.segments_run.extend(run)
            plan.segments_unchanged.extend(unchanged)
        if plan.segments_unchanged:
            log(
                f"{SEGMENT_REPORTS.to_user_string()}: {len(plan.segments_unchanged)} segment(s) not rerun, inputs "
                "unchanged since their last report: " + ", ".join(plan.segments_unchanged)
            )
        if plan.segments_run:
            from sales_assets.timeseries.backfill import backfill_segments, timeseries_location

            log(f"segments to report: {', '.join(plan.segments_run)}")
            outcome = backfill_segments(timeseries_location(), instance, plan.segments_run)
            failed = [key for key, success in outcome.items() if not success]
            if failed:
                raise RuntimeError(f"segment(s) failed: {', '.join(failed)}")
    if not plan.run and not plan.segments_run:
        log("nothing to do: every asset is up to date with its inputs, code and settings")
    return plan


def _check(result: dg.ExecuteInProcessResult | dg.ExecuteJobResult) -> None:
    if not result.success:
        raise RuntimeError(f"run {result.run_id} of job {result.dagster_run.job_name} did not succeed")


@supervised("sales_assets.refresh", finish="python -m sales_assets.refresh")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sales_assets.refresh", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--force", action="store_true", help="run every asset, changed or not")
    parser.add_argument(
        "--max-segments", type=int, help="report only the first N registered segments (default: all)"
    )
    args = parser.parse_args(argv)
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from sales_assets.definitions import defs

    heavy_job = ReconstructableRepository.for_module(
        "sales_assets.definitions", "defs"
    ).get_reconstructable_job(HEAVY_JOB)
    with dg.DagsterInstance.get() as instance:
        try:
            refresh(defs, instance, force=args.force, heavy_job=heavy_job, max_segments=args.max_segments)
        except RuntimeError as error:
            print(f"refresh: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
