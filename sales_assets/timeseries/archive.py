"""Reports of segments that no longer exist (the data changed, a pair lost its history) move to an
`archive/` folder beside the current ones, so the dashboard, which reads only the current folder, never
shows them as today's numbers. Standard library only."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sales_assets.timeseries.series import Segment

REPORT_GLOB = "sales_ts_risk_*.json"
ARCHIVE_DIR = "archive"


def archive_stale_reports(directory: Path, current_keys: Iterable[str]) -> list[str]:
    """Move every report (JSON and its PNG) under `directory` whose segment is not in `current_keys` to
    `directory/archive/`, replacing an older archived copy; returns the moved file stems, sorted."""
    current = {Segment.from_key(key).file_stem for key in current_keys}
    stale = sorted(p.stem for p in directory.glob(REPORT_GLOB) if p.stem not in current)
    if not stale:
        return []
    archive = directory / ARCHIVE_DIR
    archive.mkdir(exist_ok=True)
    for stem in stale:
        # The JSON first: once it is gone the dashboard no longer lists the segment, then its picture.
        for path in (directory / f"{stem}.json", directory / f"{stem}.png"):
            if path.exists():
                os.replace(path, archive / path.name)  # a rename: atomic on one file system
    return stale
