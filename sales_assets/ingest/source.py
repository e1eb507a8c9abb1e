"""Which bytes the ingest group reads: the configured input checked before anything is written, and
landed as an immutable, content-addressed copy that every later step reads (so lineage and data name the
same bytes, whatever happens to the original afterwards)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from sales_assets.io import owned_temp_name, sha256_file, write_json_atomic

CURRENT_FILE = "CURRENT.json"  # the copy `raw_csv` landed last, which `clean_parquet` reads


class InputPathError(ValueError):
    """The configured input is not a readable regular file; the message names the path, what it is and
    the setting that names another."""


@dataclass(frozen=True)
class Landed:
    """A landed copy of the input: where it is, what it was copied from, its sha256 and size."""

    path: Path
    source: Path
    sha256: str
    bytes: int
    mtime_ns: int  # of the copy, so a copy touched after landing is refused

    def record(self) -> dict[str, str | int]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def check_input_file(path: Path, setting: str) -> None:
    """Raise InputPathError unless `path` is a regular file this process can read (symlinks followed):
    missing, a dangling symlink, a symlink loop, a directory, a FIFO, a device or socket, unreadable."""
    try:
        info = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            what = "is a symlink loop (a link that leads back to itself)"
        elif isinstance(error, FileNotFoundError) and path.is_symlink():
            what = f"is a symlink to {os.readlink(path)}, which does not exist"
        elif isinstance(error, FileNotFoundError):
            what = "does not exist (has the export arrived? is the name spelled right?)"
        else:
            what = f"cannot be examined: {error.strerror}"
        raise InputPathError(f"{path}: {what}; set {setting} to the export's file") from error
    if stat.S_ISDIR(info.st_mode):
        raise InputPathError(
            f"{path}: is a directory, not a CSV file; set {setting} to a file, or SALES_RAW_DIR to read a "
            "folder of exports"
        )
    if stat.S_ISFIFO(info.st_mode):
        raise InputPathError(
            f"{path}: is a FIFO (a pipe such as <(zcat x.gz)), which can be read only once; write it to a "
            f"file first and set {setting} to that file"
        )
    if not stat.S_ISREG(info.st_mode):
        raise InputPathError(
            f"{path}: is not a regular file (a device or socket); set {setting} to a CSV file"
        )
    try:
        with open(path, "rb"):
            pass
    except PermissionError as error:
        raise InputPathError(
            f"{path}: is not readable by this user (uid {os.getuid()}, mode {stat.filemode(info.st_mode)}); "
            f"grant read access or set {setting} to a readable copy"
        ) from error


def land(path: Path, folder: Path) -> Landed:
    """Copy `path` into `folder` as `<sha256>.csv` (read-only): copied first, then the copy hashed, so
    the digest names exactly the bytes of the copy, whatever happens to `path` meanwhile. A copy of the
    same content already there is kept (content-addressed). `make_current` then names it the input of the
    later steps. The copy is made by the kernel (`shutil.copyfile`: sendfile on Linux) and hashed through
    a memory map (`sha256_file`): at 1 GB about a third of the CPU of reading, hashing and writing it in
    chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    # A temp name that names this process, so the sweep knows a dead writer's leftovers.
    tmp = owned_temp_name(folder / "landing.csv", "tmp")
    try:
        shutil.copyfile(path, tmp)
        hexdigest, size = sha256_file(tmp), tmp.stat().st_size
        target = folder / f"{hexdigest}.csv"
        if not target.is_file() or target.stat().st_size != size:
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return Landed(target, path, hexdigest, size, target.stat().st_mtime_ns)


def make_current(landed: Landed) -> None:
    """Record `landed` as the copy every later step reads (after `raw_csv` has read it right)."""
    write_json_atomic(landed.path.parent / CURRENT_FILE, landed.record())


def current_landed(folder: Path) -> Landed:
    """The copy `raw_csv` landed last. Raises InputPathError when there is none, or when its size no
    longer matches the record (a copy changed after landing is not the bytes the lineage names)."""
    pointer = folder / CURRENT_FILE
    if not pointer.is_file():
        raise InputPathError(
            f"{folder}: no landed copy of the export ({CURRENT_FILE} missing); materialise raw_csv first"
        )
    record = json.loads(pointer.read_text())
    landed = Landed(
        Path(record["path"]),
        Path(record["source"]),
        record["sha256"],
        int(record["bytes"]),
        int(record["mtime_ns"]),
    )
    found = landed.path.stat() if landed.path.is_file() else None
    if found is None or (found.st_size, found.st_mtime_ns) != (landed.bytes, landed.mtime_ns):
        raise InputPathError(
            f"{landed.path}: the landed copy of {landed.source} (sha256 {landed.sha256[:12]}) is missing or "
            "changed; materialise raw_csv again"
        )
    return landed


def prune_landed(folder: Path) -> list[tuple[Path, int]]:
    """Delete landed copies other than the one CURRENT_FILE names (all are kept when it names none);
    returns (path, bytes) of each deleted."""
    pointer = folder / CURRENT_FILE
    if not pointer.is_file():
        return []
    keep = Path(json.loads(pointer.read_text())["path"]).name
    deleted = [(p, p.stat().st_size) for p in folder.glob("*.csv") if p.name != keep]
    for path, _ in deleted:
        path.unlink()
    return deleted


def landed_or_configured(landed_dir: Path, configured: Path) -> Path:
    """The file a step that reads the raw export should read: the copy `raw_csv` landed last (the bytes the
    lineage names), or the configured file itself when nothing was landed yet (a step run on its own
    before `raw_csv`)."""
    try:
        return current_landed(landed_dir).path
    except InputPathError:
        return configured
