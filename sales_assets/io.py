"""Atomic file output: everything the pipeline writes goes to a temp path first and is renamed into place,
so a run that fails part-way leaves the last good output untouched."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp file path beside `target`; on success it replaces `target` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(target: Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def write_text_atomic(target: Path, text: str) -> Path:
    return write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: Path, payload: Any) -> Path:
    return write_text_atomic(target, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_frame_atomic(frame: pl.DataFrame, target: Path) -> Path:
    """Write a frame as Parquet or CSV (by suffix) atomically."""
    with atomic_path(target) as tmp:
        if target.suffix == ".parquet":
            frame.write_parquet(tmp)
        elif target.suffix == ".csv":
            frame.write_csv(tmp)
        else:
            raise ValueError(f"{target}: expected a .parquet or .csv target")
    return target


def write_table_pair(frame: pl.DataFrame, directory: Path, stem: str) -> dict[str, Path]:
    """The CSV and Parquet copies of one summary table, both written atomically."""
    return {
        "csv": write_frame_atomic(frame, directory / f"{stem}.csv"),
        "parquet": write_frame_atomic(frame, directory / f"{stem}.parquet"),
    }


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory beside `target`; on success swap it in place of `target`.

    The old directory is renamed aside first and removed only after the new one is in place, so at
    every moment either the old or the new complete tree is at `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        retired = target.parent / f".{target.name}.retired-{uuid.uuid4().hex[:8]}"
        if target.exists():
            os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
