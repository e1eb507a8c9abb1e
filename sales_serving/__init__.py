"""HTTP service and CLI over the newest sales model bundle; reads only the bundle files, never dagster."""
