"""The clean Parquet layer's shape, shared by the stages that read it (ingest's checks, the warehouse):
a hive-partitioned tree of `*.parquet` files under one directory."""

from __future__ import annotations

from pathlib import Path


def parquet_glob(parquet_dir: Path) -> str:
    """The glob (DuckDB/Polars syntax, recursive) matching every Parquet file of the layer at `parquet_dir`."""
    return str(parquet_dir / "**" / "*.parquet")
