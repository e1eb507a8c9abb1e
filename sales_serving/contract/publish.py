"""Publication, the one primitive every writer of a published file, folder or pointer uses: write aside,
then rename into place, so a reader sees the old thing or the new one, never a part of either.

The aside name is `.<name>.<kind>-<owner>-<random>`, naming the writing process by host id, boot id and pid
(`sales_serving.contract.owner`), so recovery's sweep (`sales_assets.recovery.sweep_debris`) can tell what a
dead writer of this host left from what a live one, here or on another host, is still writing. Serving and
training both import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from sales_serving.contract.owner import Owner

# The kinds of aside names; `sales_assets.io` recognises exactly these.
ASIDE_KINDS = ("tmp", "staging", "link", "build")

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (os.umask can only be read by setting it, hence the lock)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def aside_prefix(target: Path, kind: str) -> str:
    """`.<name>.<kind>-<owner>-`: the start of every aside name beside `target`, naming this process's host,
    boot and pid as its writer."""
    if kind not in ASIDE_KINDS:
        raise ValueError(f"kind must be one of {ASIDE_KINDS}, got {kind!r}")
    return f".{Path(target).name}.{kind}-{Owner.this_process()}-"


def aside_name(target: Path, kind: str) -> Path:
    """A path beside `target` that names this process as its writer: `.<name>.<kind>-<owner>-<random>`."""
    target = Path(target)
    return target.parent / f"{aside_prefix(target, kind)}{uuid.uuid4().hex[:10]}"


def sha256_file(path: Path, chunk_bytes: int = 1 << 24) -> str:
    """Hex sha256 of the file's bytes, hashed through a memory map one window of about `chunk_bytes` at a
    time (no copy into the process: at 1 GB about half the CPU of reading it in chunks; each window is
    unmapped before the next, so the file's pages never count in this process's memory at once)."""
    digest = hashlib.sha256()
    window = max(
        mmap.ALLOCATIONGRANULARITY, chunk_bytes // mmap.ALLOCATIONGRANULARITY * mmap.ALLOCATIONGRANULARITY
    )
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        for start in range(0, size, window):  # an empty file has no window (and cannot be mapped)
            length = min(window, size - start)
            with mmap.mmap(handle.fileno(), length, access=mmap.ACCESS_READ, offset=start) as mapped:
                digest.update(mapped)
    return digest.hexdigest()


def _remove_aside(aside: Path) -> None:
    """Remove what a publication left at `aside` (a file, a symlink or a folder), if anything."""
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)


@contextlib.contextmanager
def publication(
    target: Path,
    kind: str,
    create: Callable[[Path], None] | None = None,
    commit: Callable[[Path, Path], None] | None = None,
) -> Iterator[Path]:
    """The primitive: yield a path beside `target` named after this process (`aside_name(target, kind)`),
    made by `create` (None: not created, the block creates it); when the block succeeds, `commit(aside,
    target)` publishes it: a rename (None: `os.replace`) or a pointer moved by one (see
    `sales_assets.io.staged_directory`). On an exception (or a kill) before the commit, `target` is
    untouched; what is left at the aside path is removed, or left for the sweep."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    aside = aside_name(target, kind)
    try:
        if create is not None:
            create(aside)
        yield aside
        (commit or os.replace)(aside, target)
    finally:
        _remove_aside(aside)


def _create_file(path: Path) -> None:
    # The mode an ordinary open() under the umask would give, not mkstemp's 0600.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~current_umask()))


@contextlib.contextmanager
def published_file(target: Path) -> Iterator[Path]:
    """Yield an empty file beside `target` (mode as an ordinary open() under the umask would give, not
    mkstemp's 0600); when the block succeeds it replaces `target` in one rename. On an exception (or a
    kill) `target` is untouched; the aside file is removed, or left for the sweep. (Not fsynced: the
    promise is against killed processes, not power loss.)"""
    with publication(target, "tmp", create=_create_file) as aside:
        yield aside


@contextlib.contextmanager
def published_directory(target: Path) -> Iterator[Path]:
    """Yield an empty folder beside `target`; when the block succeeds it is renamed to `target`, which must
    not exist yet (FileExistsError before the block runs, nothing written). On an exception (or a kill)
    `target` does not appear; the aside folder is removed, or left for the sweep."""
    if Path(target).exists():
        raise FileExistsError(f"{target}: already published")
    # rename(2) of a folder onto an existing non-empty folder fails, so a writer that lost a race cannot
    # replace what another published.
    with publication(target, "staging", create=Path.mkdir, commit=os.rename) as aside:
        yield aside


def publish_text(target: Path, text: str) -> Path:
    """`text` (UTF-8) as the whole content of `target`, published in one rename."""
    with published_file(target) as aside:
        aside.write_text(text, encoding="utf-8")
    return Path(target)
