"""The one-command backfill as a user runs it: the real Definitions, a real instance in DAGSTER_HOME."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from sales_tests.conftest import REPO_ROOT
from sales_tests.timeseries.conftest import QUICK_CANDIDATES


def test_backfill_command_records_runs_in_the_instance(warehouse_data_dir, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_data_dir, data_dir)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home)
    env = {
        **os.environ,
        "SALES_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(home),
        "SALES_TIMESERIES__SARIMA_CANDIDATES": QUICK_CANDIDATES,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sales_assets.timeseries.backfill",
            "--segment",
            "Classic Cars",
            "--segment",
            "Motorcycles",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2/2 segments materialised" in result.stdout
    reports = sorted(p.name for p in Path(data_dir, "output", "timeseries").glob("sales_ts_risk_*.json"))
    assert reports == ["sales_ts_risk_Classic_Cars_ALL.json", "sales_ts_risk_Motorcycles_ALL.json"]
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # dagster.yaml roots its sqlite storage there
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        # ts_segments, then ONE run for both segments (neighbours in the registration order; issue 15).
        assert sorted(run.job_name for run in runs) == ["ts_risk_reports_job", "ts_segments_job"]
        assert all(run.is_success for run in runs)
        assert instance.get_materialized_partitions(dg.AssetKey("ts_risk_reports")) == {
            "Classic Cars",
            "Motorcycles",
        }
