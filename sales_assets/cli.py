"""`sales-dagster`: the `dagster` CLI with DAGSTER_HOME defaulting to the project's `dagster_home/`, after
recovering runs of that instance whose process is gone (one line when there were any).

sales-dagster dev -w workspace.yaml
sales-dagster asset materialize --select 'not key:ts_risk_reports' -m sales_assets.definitions
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def default_dagster_home() -> Path:
    """`dagster_home/` in the working directory when there is one, else the source checkout's."""
    here = Path.cwd() / "dagster_home"
    return here if (here / "dagster.yaml").is_file() else PROJECT_ROOT / "dagster_home"


def dagster_executable() -> str:
    """The `dagster` script of this environment (beside this Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("dagster")
    found = str(beside) if beside.is_file() else shutil.which("dagster")
    if found is None:
        raise SystemExit("sales-dagster: the `dagster` command is not installed in this environment")
    return found


def main() -> None:
    os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    from sales_assets.recovery import recover_on_start

    recover_on_start()
    # The public CLI, as its own executable: this process becomes `dagster`, with its exit code and signals.
    executable = dagster_executable()
    os.execv(executable, [executable, *sys.argv[1:]])
