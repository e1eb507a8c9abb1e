"""The dynamic partitions of group `timeseries`: one key per sales segment, registered from the data by the
`ts_segments` asset (`ALL`, each PRODUCTLINE, and `PRODUCTLINE|COUNTRY` pairs with enough history)."""

import dagster as dg

SEGMENTS_PARTITIONS = dg.DynamicPartitionsDefinition(name="sales_segments")
