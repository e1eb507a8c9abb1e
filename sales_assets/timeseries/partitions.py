"""The dynamic partitions of group `timeseries`: one key per sales segment, registered from the data by the
`ts_segments` asset (`ALL`, each PRODUCTLINE, and `PRODUCTLINE|COUNTRY` pairs with enough history), and
the run tags that make one run cover a range of them."""

from collections.abc import Collection, Sequence

import dagster as dg

SEGMENTS_PARTITIONS = dg.DynamicPartitionsDefinition(name="sales_segments")

# Dagster's run tags for one run over a range of partitions (the values of
# `dagster._core.storage.tags.ASSET_PARTITION_RANGE_*_TAG`, which the top-level package does not export);
# the UI sets them when it launches a single-run backfill. A dynamic range runs in registration order.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Tags of one run over the registered partitions `first` to `last` (both included)."""
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}


def contiguous_ranges(registered: Sequence[str], wanted: Collection[str]) -> list[tuple[str, str]]:
    """(first, last) of each run of consecutive `registered` keys that are all `wanted`: every wanted key
    in as few ranges as possible, and no other key. All of them: one range."""
    ranges: list[list[str]] = []
    previous_wanted = False
    for key in registered:
        if key in wanted:
            if previous_wanted:
                ranges[-1][1] = key
            else:
                ranges.append([key, key])
        previous_wanted = key in wanted
    return [(first, last) for first, last in ranges]
