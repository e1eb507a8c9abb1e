"""Atomic file output: everything the pipeline writes goes to a temp path first and is renamed into place
(`sales_serving.contract.publish`, the one primitive), so a run that fails part-way leaves the last good
output untouched; plus database and layer staging built on it, and the sweep of what dead writers left.

Every temp name carries its writer as host id, boot id and pid (`.<name>.<kind>-<owner>-<random>`, see
`sales_serving.contract.owner`), so recovery's sweep can tell what a dead process of this host left from what a live
one, here or on another host, is still writing. Files are created with the mode the
umask allows (group-readable under the usual 022/002), not mkstemp's 0600, so a dashboard or API running as
another user of the group can read them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from sales_serving.contract.csv_out import write_frame_csv
from sales_serving.contract.owner import OWNER_PATTERN
from sales_serving.contract.publish import (
    ASIDE_KINDS,
    aside_name,
    current_umask,
    publication,
    published_file,
)
from sales_serving.contract.publish import (
    sha256_file as sha256_file,  # re-exported: the digest the pipeline records
)

# Versions of a published directory older than the one just replaced stay this long after they were
# replaced, so a reader that listed a layer's files just before two quick publishes can still open them.
VERSION_GRACE_SECONDS = 30.0

_KINDS = "|".join(ASIDE_KINDS)
# `.<name>.<kind>-<owner>-<random>[.<suffix>...]`: what `owned_temp_name` and `atomic_path` create.
OWNED_TEMP = re.compile(
    rf"^\.(?P<name>.+)\.(?P<kind>{_KINDS})-(?P<owner>{OWNER_PATTERN})-[A-Za-z0-9_]+(\..*)?$"
)
# `.<name>.v<ns>`: a published version of a directory, newest last when sorted by name.
VERSION_NAME = re.compile(r"^\.(?P<name>.+)\.v(?P<ns>\d{20})$")
# Temp names without a host and boot: earlier releases' (a bare pid, staging/retired folders, mkstemp
# temps) and the model bundle's `.<version>.partial` folder.
LEGACY_TEMP = re.compile(
    rf"^(\..+\.({_KINDS})-\d+-[A-Za-z0-9_]+(\..*)?|\..+\.(staging|retired)-[0-9a-f]{{8}}"
    r"|\..+\.[A-Za-z0-9_]{8}\.tmp|tmp[A-Za-z0-9_]{8}|\..+\.partial)$"
)


def owned_temp_name(target: Path, kind: str) -> Path:
    """A temp path beside `target` that names this process (host, boot, pid) as its owner."""
    return aside_name(target, kind)


def atomic_path(target: Path) -> contextlib.AbstractContextManager[Path]:
    """Yield a temp file path beside `target`; on success it replaces `target` in one rename (the one
    publication primitive, `sales_serving.contract.publish.published_file`)."""
    return published_file(target)


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
            write_frame_csv(frame, tmp)  # the one CSV writer: no cell runs as a spreadsheet formula
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
def scratch_directory(target: Path, kind: str = "tmp") -> Iterator[Path]:
    """Yield an empty folder beside `target` named as this process's temp of `kind` (recovery's sweep
    removes it if the process dies), removed with its contents when the block ends, whether or not it
    raised (unless the block moved it away)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = owned_temp_name(target, kind)
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def staged_database(target: Path) -> Iterator[Path]:
    """Yield a path (not yet created) beside the database file `target` to build a new database in; on
    success it replaces `target` in one rename (the one publication primitive,
    `sales_serving.contract.publish.publication`).

    Readers that open `target` read-only never meet the builder's write lock (the builder never opens
    `target`), and a reader that opened the old file keeps reading it. The caller closes its connection
    before the block ends, so the build's WAL is checkpointed into the file; RuntimeError otherwise, and
    `target` is untouched. A WAL left beside `target` belongs to the old file and would be replayed onto
    the new one, so it is removed first.
    """
    with publication(target, "build", commit=_replace_database) as build:
        try:
            yield build
        finally:
            _build_wal(build).unlink(missing_ok=True)  # left by a connection still open; never published


def _build_wal(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def _replace_database(build: Path, target: Path) -> None:
    if _build_wal(build).exists():
        raise RuntimeError(f"{build}: the connection was still open (WAL not checkpointed)")
    os.chmod(build, 0o666 & ~current_umask())
    _build_wal(target).unlink(missing_ok=True)
    os.replace(build, target)


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory beside `target`; on success publish it as `target`, both steps
    through the one publication primitive (`sales_serving.contract.publish.publication`).

    `target` is a symlink to a version folder `.<name>.v<ns>` beside it; publishing renames the staging
    folder to a new version and swaps the symlink with one `os.replace`, so a reader resolving `target` at
    any moment gets a whole layer, old or new, never a gap. Versions older than the one just replaced are
    removed once they were replaced more than `VERSION_GRACE_SECONDS` ago. A real directory at `target`
    (the layout before versions) is exchanged for the symlink atomically where the kernel can
    (renameat2 RENAME_EXCHANGE), else renamed aside for an instant, and kept as the replaced version.
    On an exception (or a kill before the swap) the staging folder is removed, or left for the sweep, and
    `target` is untouched.
    """
    with publication(target, "staging", create=Path.mkdir, commit=_publish_version) as staging:
        yield staging
    _remove_old_versions(Path(target))


def _publish_version(staging: Path, target: Path) -> None:
    """Rename the complete staging folder to a new version, then point `target` at it."""
    version = target.parent / f".{target.name}.v{time.time_ns():020d}"
    os.replace(staging, version)
    with publication(target, "link", commit=_swap_link) as link:
        os.symlink(version.name, link)  # relative, so the data folder can be moved or mounted elsewhere


def _swap_link(link: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        _retire_real_directory(target, link)
    else:
        os.replace(link, target)


def published_versions(target: Path) -> list[Path]:
    """The version folders of `target`, oldest first."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    return sorted(
        p
        for p in target.parent.iterdir()
        if (m := VERSION_NAME.match(p.name)) and m["name"] == target.name and not p.is_symlink()
    )


def _retire_real_directory(target: Path, link: Path) -> None:
    """Put the symlink `link` at `target`, where a real directory is now, keeping that directory as the
    oldest version."""
    legacy = target.parent / f".{target.name}.v{0:020d}"
    if _rename_exchange(link, target):
        os.replace(link, legacy)  # `link` now names the old directory
        return
    os.replace(target, legacy)
    os.replace(link, target)


def _rename_exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(second))


def _remove_old_versions(target: Path) -> None:
    current = (target.parent / os.readlink(target)).name
    versions = [v for v in published_versions(target) if v.name != current]
    now = time.time_ns()
    # versions[-1] is the one just replaced; older ones go once their successor is older than the grace.
    for version, successor in zip(versions[:-1], versions[1:], strict=True):
        replaced_ns = int(VERSION_NAME.match(successor.name)["ns"])
        if now - replaced_ns > VERSION_GRACE_SECONDS * 1e9:
            shutil.rmtree(version, ignore_errors=True)
