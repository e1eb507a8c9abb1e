"""`sales-dagster`: the `dagster` CLI with DAGSTER_HOME defaulting to the project's `dagster_home/`.

sales-dagster dev -w workspace.yaml
sales-dagster asset materialize --select 'not key:ts_risk_reports' -m sales_assets.definitions
"""

import os
import sys
from pathlib import Path


def default_dagster_home() -> Path:
    """`dagster_home/` in the working directory when there is one, else the source checkout's."""
    here = Path.cwd() / "dagster_home"
    return here if (here / "dagster.yaml").is_file() else Path(__file__).resolve().parents[1] / "dagster_home"


def main() -> None:
    os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    from dagster._cli import main as dagster_main

    sys.argv[0] = "dagster"
    dagster_main()
