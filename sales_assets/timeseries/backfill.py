"""`python -m sales_assets.timeseries.backfill`: refresh the segment partitions from the warehouse, then
materialise `ts_risk_reports` for every segment (the ALL partition also writes the coherent hierarchy) in
ONE run over the range of all partitions, in one command and without the daemon.

Runs execute in this process against the Dagster instance of `DAGSTER_HOME`, so they show in the UI like
any other run, each segment as its own materialised partition. With a daemon running, materialising all
partitions of `ts_risk_reports` in the UI does the same through the run queue (an asset backfill, one run
by the asset's single-run backfill policy).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import dagster as dg

from sales_assets.cli import default_dagster_home
from sales_assets.resources import build_resources
from sales_assets.supervise import supervised
from sales_assets.timeseries.defs import defs as timeseries_defs
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS, contiguous_ranges, partition_range_tags


def timeseries_location() -> dg.Definitions:
    """The timeseries group with the shared resources: all the backfill runs, without loading the other
    groups (and their training libraries) of the code location."""
    return dg.Definitions.merge(timeseries_defs, dg.Definitions(resources=build_resources()))


def backfill_segments(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: Sequence[str] | None = None
) -> dict[str, bool]:
    """Materialise `ts_segments`, then the requested segment partitions (default: all) in one run; with
    `keys` that are not neighbours in the registration order, one run per block of neighbours. Returns
    success per key: whether the run materialised that segment.

    Raises:
        RuntimeError: `ts_segments` failed.
        ValueError: a key is not a registered segment (the message lists the valid ones).
    """
    segments_run = defs.resolve_job_def("ts_segments_job").execute_in_process(instance=instance)
    if not segments_run.success:
        raise RuntimeError(
            "ts_segments failed: the segment partitions could not be refreshed from the warehouse"
        )
    registered = instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name)
    unknown = sorted(set(keys or []) - set(registered))
    if unknown:
        raise ValueError(f"unknown segment(s) {unknown}; valid segments: {', '.join(registered)}")
    job = defs.resolve_job_def("ts_risk_reports_job")
    materialised: set[str] = set()
    for first, last in contiguous_ranges(registered, set(keys or registered)):
        result = job.execute_in_process(
            instance=instance, tags=partition_range_tags(first, last), raise_on_error=False
        )
        materialised |= {
            event.event_specific_data.materialization.partition
            for event in result.get_asset_materialization_events()
        }
    outcome = {key: key in materialised for key in (keys or registered)}
    for key, success in outcome.items():
        print(f"{'ok    ' if success else 'FAILED'} {key}", flush=True)
    return outcome


# Recovers dead runs first; Ctrl-C marks the runs canceled and prints how to finish (sales_assets.supervise).
@supervised("sales_assets.timeseries.backfill", finish="python -m sales_assets.timeseries.backfill")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sales_assets.timeseries.backfill", description=__doc__)
    parser.add_argument("--segment", action="append", help="only this segment key (repeatable); default: all")
    args = parser.parse_args(argv)
    os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home()))
    with dg.DagsterInstance.get() as instance:
        outcome = backfill_segments(timeseries_location(), instance, args.segment)
    failed = [key for key, success in outcome.items() if not success]
    print(
        f"{len(outcome) - len(failed)}/{len(outcome)} segments materialised"
        + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
