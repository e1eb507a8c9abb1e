"""A folder of exports as partitions: the shape shared by the stages that meet it (ingest writes it, the
warehouse reads it, the automation registers it). No Dagster here, only files.

With `SALES_RAW_DIR` set, every file of that folder matching `ingest.export_glob` is one export. Its
partition key is `<name>@<sha256[:12]>` (`name`: the path relative to the folder, `2005-03.csv@1f0c…`),
so a file whose content changes gets a new key and is cleaned again, alone; a key whose file is gone or
holds other bytes now is superseded and its output is not read. The name in the key is escaped
(`key_name`) so that every file name gives a key Dagster and its UI accept: letters and digits of any
script and `- _ . ( ) + = @ / ~` stay, every other character (spaces, commas, brackets, `%`, control
characters) becomes `%XX` per UTF-8 byte, and so does a dot that follows a dot (`...` separates the ends of
a partition range). The escaping is reversible, so two names never share a key.

The clean layer of the exports lives under `Settings.exports_clean_dir`, one published folder per key
(swapped in whole by `io.staged_directory`, like the single-file layer). The folder is named by the quoted
key, or, when that name with the publication's own suffixes would not fit the file system's name limit (a
long name in a non-Latin script triples in length when escaped), by a digest of the key
(`key-sha256-<32 hex>`); the manifest keeps the key and the full name either way:

```
processed/sales_exports/<folder>/       symlink to its current version folder
    sales/YEAR=<y>/*.parquet            the cleaned order lines (hive-partitioned, as `clean_parquet`)
    rejects.parquet                     the quarantine of this export (line and reason per row)
    export.json                         the manifest: key, name, sha256, bytes, mtime_ns, row counts
```

"Newest export" is decided from the manifests, deterministically: the file's modification time when it
was cleaned (nanoseconds), then its name. The rank is written once, when the partition is cleaned, so
touching a file later changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from sales_assets.io import sha256_file, write_json_atomic
from sales_assets.parquet_layer import parquet_glob

KEY_SEPARATOR = "@"
KEY_HASH_CHARS = 12
DATA_FOLDER = "sales"
REJECTS_FILE = "rejects.parquet"
MANIFEST_FILE = "export.json"
# The longest file name the common Linux file systems take (ext4, xfs, btrfs, tmpfs: NAME_MAX); a smaller
# limit the folder's own file system reports wins.
NAME_MAX = 255
# What publishing a folder adds to its name: `.<name>.v<20 digits>`, `.<name>.staging-<pid>-<10 hex>`.
PUBLISHED_NAME_OVERHEAD = 40
# Folder names for keys too long to quote: no `@`, so never equal to a quoted key (which always has one).
DIGEST_FOLDER_PREFIX = "key-sha256-"
DIGEST_FOLDER_CHARS = 32


# Characters kept as they are in a key's name besides letters and digits (of any script).
KEY_NAME_CHARACTERS = frozenset("-_.()+=@/~")


def _escaped(character: str) -> str:
    return "".join(f"%{byte:02X}" for byte in character.encode("utf-8"))


def key_name(name: str) -> str:
    """`name` as it appears in a partition key: letters, digits and `KEY_NAME_CHARACTERS` kept, any other
    character `%XX`-escaped (UTF-8 bytes), and a dot right after a dot escaped too, so the key never holds
    `...`, a control character, a space, a comma or a bracket (Dagster refuses `...` and control characters
    in keys, and its UI reads `,` `[` `]` `...` as partition selections). Deterministic and reversible
    (`urllib.parse.unquote(key_name(n)) == n`), so distinct names give distinct keys; a plain name such as
    `2005-03.csv` stays as it is."""
    out = []
    for index, character in enumerate(name):
        keep = character.isalnum() or character in KEY_NAME_CHARACTERS
        if character == "." and index > 0 and name[index - 1] == ".":
            keep = False
        out.append(character if keep else _escaped(character))
    return "".join(out)


def export_key(name: str, sha256: str) -> str:
    """The partition key of export `name` with content digest `sha256`: `<key_name(name)>@<sha256[:12]>`."""
    return f"{key_name(name)}{KEY_SEPARATOR}{sha256[:KEY_HASH_CHARS]}"


def split_key(key: str) -> tuple[str, str]:
    """(escaped name, sha256 prefix) of a partition key (the name as `key_name` wrote it). Raises
    ValueError when `key` is not `<name>@<hex>`."""
    name, sep, digest = key.rpartition(KEY_SEPARATOR)
    if not sep or not name or len(digest) != KEY_HASH_CHARS:
        raise ValueError(f"{key!r} is not an export partition key (<name>{KEY_SEPARATOR}<sha256[:12]>)")
    return name, digest


@dataclass(frozen=True)
class ExportFile:
    """One export as it is in the folder now: name (relative path), absolute path, content digest, size
    in bytes and modification time in nanoseconds."""

    name: str
    path: Path
    sha256: str
    bytes: int
    mtime_ns: int

    @property
    def key(self) -> str:
        return export_key(self.name, self.sha256)


def export_paths(raw_dir: Path, pattern: str) -> list[tuple[str, Path]]:
    """(name, path) of every regular file under `raw_dir` matching `pattern`, sorted by name; hidden
    files (a copy in progress such as `.x.csv.tmp`) are left out. Raises FileNotFoundError when
    `raw_dir` is not a folder."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"SALES_RAW_DIR {raw_dir} is not a folder")
    found = []
    for path in raw_dir.glob(pattern):
        name = path.relative_to(raw_dir).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in name.split("/")):
            found.append((name, path))
    return sorted(found)


def scan_exports(
    raw_dir: Path, pattern: str, known: Mapping[str, tuple[int, int, str]] | None = None
) -> list[ExportFile]:
    """Every export of the folder with its digest, sorted by name. `known` maps a name to the
    (bytes, mtime_ns, sha256) seen before: a file whose size and modification time are unchanged is not
    read again (a sensor keeps this in its cursor), any other file is hashed."""
    known = known or {}
    exports = []
    for name, path in export_paths(raw_dir, pattern):
        stat = path.stat()
        seen = known.get(name)
        if seen is not None and (seen[0], seen[1]) == (stat.st_size, stat.st_mtime_ns):
            digest = seen[2]
        else:
            digest = sha256_file(path)
        exports.append(ExportFile(name, path, digest, stat.st_size, stat.st_mtime_ns))
    return exports


def name_limit(folder: Path) -> int:
    """The longest file name allowed in `folder` (its nearest existing ancestor's file system), at most
    NAME_MAX, in bytes."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return min(NAME_MAX, os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def partition_folder_name(key: str, limit: int = NAME_MAX) -> str:
    """The folder name of partition `key`: the key quoted (a plain `2005-03.csv@1f0c…` stays as it is), or,
    when that name plus PUBLISHED_NAME_OVERHEAD exceeds `limit` bytes, `key-sha256-<32 hex of the key>`:
    short, the same for the same key, and distinct for distinct keys (128 bits of SHA-256)."""
    quoted = urllib.parse.quote(key, safe=KEY_SEPARATOR + "._-")
    if len(quoted) + PUBLISHED_NAME_OVERHEAD <= limit:
        return quoted
    return DIGEST_FOLDER_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:DIGEST_FOLDER_CHARS]


def partition_dir(clean_dir: Path, key: str) -> Path:
    """The published folder of partition `key` under the exports' clean layer (`partition_folder_name`)."""
    return Path(clean_dir) / partition_folder_name(key, name_limit(clean_dir))


def partition_glob(clean_dir: Path, key: str) -> str:
    """The glob of the cleaned Parquet files of partition `key`, resolved to its current version."""
    return parquet_glob(partition_dir(clean_dir, key) / DATA_FOLDER)


@dataclass(frozen=True)
class ExportManifest:
    """What `clean_export` recorded about one cleaned partition (`export.json`)."""

    key: str
    name: str
    sha256: str
    bytes: int
    mtime_ns: int
    rows_in: int
    rows_clean: int
    rows_rejected: int
    duplicates_removed: int

    def write(self, folder: Path) -> Path:
        return write_json_atomic(Path(folder) / MANIFEST_FILE, asdict(self))

    @property
    def rank_order(self) -> tuple[int, str]:
        """The order of "newer": modification time, then name (then the key, for two equal names)."""
        return (self.mtime_ns, self.name, self.key)


def read_manifest(clean_dir: Path, key: str) -> ExportManifest | None:
    """The manifest of a cleaned partition; None when `key` was never cleaned (or its folder is not
    whole). Raises ValueError when the manifest is not the one of `key`."""
    path = partition_dir(clean_dir, key) / MANIFEST_FILE
    if not path.is_file():
        return None
    manifest = ExportManifest(**json.loads(path.read_text(encoding="utf-8")))
    if manifest.key != key:
        raise ValueError(f"{path}: manifest of {manifest.key!r}, expected {key!r}")
    return manifest


def newest_last(manifests: list[ExportManifest]) -> list[ExportManifest]:
    """The manifests ordered oldest first, so an export's index in the list is its rank (higher wins)."""
    return sorted(manifests, key=lambda m: m.rank_order)
