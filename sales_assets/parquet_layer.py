"""The clean Parquet layer's shape, shared by the stages that read it (ingest's checks, the warehouse, the
dashboard): a hive-partitioned tree of `*.parquet` files under one directory.

The directory is a symlink to the current version folder, swapped whole by `io.staged_directory`. A
reader resolves it once per read (`resolve_layer`) and reads only below the result: a query that opened
`processed/sales_parquet/...` twice (Polars reads a file's footer when planning and its pages when
executing) could otherwise meet two versions of one file across a swap.
"""

from __future__ import annotations

import os
from pathlib import Path


def resolve_layer(parquet_dir: Path) -> Path:
    """The version folder `parquet_dir` points at now (itself when it is a plain directory)."""
    return Path(os.path.realpath(parquet_dir))


def parquet_glob(parquet_dir: Path) -> str:
    """The glob (DuckDB/Polars syntax, recursive) matching every Parquet file of the layer at `parquet_dir`,
    resolved to one version (see `resolve_layer`)."""
    return str(resolve_layer(parquet_dir) / "**" / "*.parquet")
