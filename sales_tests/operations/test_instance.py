"""The project's Dagster instance (dagster_home/dagster.yaml): run monitoring recovers runs the daemon
launched, and the console shows INFO lines, not the framework's DEBUG events."""

from __future__ import annotations

import shutil

import dagster as dg

from sales_assets.recovery import START_TIMEOUT_SECONDS
from sales_tests.conftest import REPO_ROOT


def test_run_monitoring_is_on_with_start_and_cancel_timeouts(tmp_path, monkeypatch):
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == START_TIMEOUT_SECONDS
        assert instance.run_monitoring_cancel_timeout_seconds > 0
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.python_log_level == "INFO"
