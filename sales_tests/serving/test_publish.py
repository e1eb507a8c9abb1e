"""The one publication primitive (`sales_serving.contract.publish`) at every site that publishes: a writer
killed (SIGKILL, a real process) between writing aside and the rename leaves the published thing as it was,
and what it wrote aside is named after it, so the sweep removes it once it is dead."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from sales_assets.io import OWNED_TEMP, staged_database, staged_directory
from sales_assets.recovery import sweep_debris
from sales_serving.contract.owner import Owner

ROOT = Path(__file__).resolve().parents[2]
# Every rename in the child kills it: the aside copy is complete, the publishing rename never happens.
KILL_AT_RENAME = """
import os, signal
def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = _die
os.rename = _die
"""


def _database_value(path: Path) -> int:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        return connection.execute("select v from t").fetchone()[0]
    finally:
        connection.close()


SITES = {
    "io.atomic_path": (
        "from sales_assets.io import write_json_atomic\nwrite_json_atomic(ROOT / 'out.json', {'new': 1})",
        lambda root: json.loads((root / "out.json").read_text()) == {"old": 1},
    ),
    "bundle.point_current": (
        "from sales_serving.contract.bundle import point_current\npoint_current(ROOT, 'v2')",
        lambda root: (root / "CURRENT").read_text() == "v1\n",
    ),
    "bundle.write_bundle": (
        "from sales_tests.serving.bundle_factory import write_bundle\n"
        "write_bundle(ROOT, 'v3', [0], b'graph', make_current=False)",
        lambda root: not (root / "v3").exists(),
    ),
    "io.staged_database": (
        "import duckdb\nfrom sales_assets.io import staged_database\n"
        "with staged_database(ROOT / 'sales.duckdb') as build:\n"
        "    connection = duckdb.connect(str(build))\n"
        "    connection.execute('create table t as select 2 as v')\n"
        "    connection.close()",
        lambda root: _database_value(root / "sales.duckdb") == 1,
    ),
    "io.staged_directory": (
        "from sales_assets.io import staged_directory\n"
        "with staged_directory(ROOT / 'layer') as staging:\n    (staging / 'part.txt').write_text('new')",
        lambda root: (root / "layer" / "part.txt").read_text() == "old",
    ),
    "cli.atomic_output": (
        "from sales_serving.cli import atomic_output\n"
        "with atomic_output(ROOT / 'scored.csv') as out:\n    out.write('new\\n')",
        lambda root: (root / "scored.csv").read_text() == "old\n",
    ),
}


@pytest.mark.parametrize("site", sorted(SITES))
def test_a_writer_killed_between_aside_and_rename_publishes_nothing(tmp_path: Path, site: str) -> None:
    root = tmp_path / "published"
    root.mkdir()
    (root / "out.json").write_text(json.dumps({"old": 1}))
    (root / "scored.csv").write_text("old\n")
    (root / "v1").mkdir()
    (root / "v2").mkdir()
    (root / "CURRENT").write_text("v1\n")
    with staged_database(root / "sales.duckdb") as build:
        connection = duckdb.connect(str(build))
        connection.execute("create table t as select 1 as v")
        connection.close()
    with staged_directory(root / "layer") as staging:
        (staging / "part.txt").write_text("old")
    before = sorted(path.name for path in root.iterdir())
    code, unchanged = SITES[site]
    script = (
        f"from pathlib import Path\nROOT = Path({str(root)!r})\n" + KILL_AT_RENAME + textwrap.dedent(code)
    )
    child = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert unchanged(root)
    left = sorted(path.name for path in root.iterdir() if path.name not in before)
    # The aside copy was complete and is there, named after the dead writer ...
    assert len(left) == 1
    writer = Owner.parse(OWNED_TEMP.match(left[0])["owner"])
    assert writer.on_this_host() and writer.pid != os.getpid()
    # ... so the sweep removes it and nothing else.
    assert [path.name for path in sweep_debris(root).removed] == left
    assert sorted(path.name for path in root.iterdir()) == before
    assert unchanged(root)
