"""The code version of every asset: a digest of the code and the settings that shape its output, so Dagster
marks an asset unsynced exactly when one of them changed (and never with a run id, which is what Dagster
records for an asset without a code version)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from sales_assets.settings import Settings

PACKAGE = Path(__file__).resolve().parent

# Modules every group's outputs depend on besides its own folder: a change there changes every version.
SHARED_MODULES = ("settings.py", "io.py", "parquet_layer.py", "export_layer.py", "outliers.py", "metadata.py")

# The settings sections each group's assets read (the groups' code reads `settings.<section>`).
GROUP_SETTINGS = {
    "ingest": ("ingest", "warehouse"),
    "warehouse": ("ingest", "warehouse"),
    "analytics": ("analytics", "ingest", "warehouse"),
    "ml": ("ml", "analytics", "ingest", "warehouse"),
    "timeseries": ("timeseries",),
}
# Settings that change how fast a step runs, not what it writes: changing them reruns nothing.
SPEED_ONLY_SETTINGS = {"warehouse": {"memory_limit", "threads"}, "ml": {"n_jobs"}}


def settings_fingerprint(group: str, settings: Settings) -> dict:
    """The settings the assets of `group` read, as JSON-ready values (speed-only knobs left out)."""
    return {
        section: getattr(settings, section).model_dump(mode="json", exclude=SPEED_ONLY_SETTINGS.get(section))
        for section in GROUP_SETTINGS[group]
    }


@cache
def _source_digest(group: str) -> bytes:
    digest = hashlib.sha256()
    files = sorted((PACKAGE / group).rglob("*.py")) + [PACKAGE / name for name in SHARED_MODULES]
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.digest()


def group_code_version(group: str, settings: Settings | None = None) -> str:
    """sha256 (first 12 hex digits) of the group's Python sources, the shared modules and the settings the
    group reads (`settings_fingerprint`), so "code version changed" in the UI means code or a setting that
    shapes the output changed.

    Raises:
        KeyError: `group` is not one of `GROUP_SETTINGS`.
    """
    settings = settings or Settings()
    digest = hashlib.sha256(_source_digest(group))
    digest.update(json.dumps(settings_fingerprint(group, settings), sort_keys=True).encode())
    return digest.hexdigest()[:12]
