"""The dynamic partitions of a folder of exports (`SALES_RAW_DIR`): one key per export file and content,
`<name>@<sha256[:12]>` (see `sales_assets.export_layer`), registered by the sensor `raw_export_files`
or by the daily schedule in folder mode, each only once."""

import dagster as dg

EXPORTS_PARTITIONS = dg.DynamicPartitionsDefinition(name="sales_exports")
