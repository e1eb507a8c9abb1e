"""Ctrl-C in the quickstart and in the backfill, and SIGTERM (`kill`) or SIGHUP (a closed terminal) as
well: the run stops and is marked canceled, the state of the outputs and the command that finishes the job
are printed, and no traceback reaches the user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.ingest.generator import generate_sales_csv
from sales_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(600)


def interrupt_when(
    command: list[str],
    env: dict[str, str],
    marker: str,
    timeout: float = 300,
    delay: float = 0.5,
    number: int = signal.SIGINT,
) -> tuple[int, str]:
    """Start `command` as a terminal would (its own process group), send `number` (SIGINT: what the
    terminal does on Ctrl-C) to the group when a line containing `marker` appears, and return (exit code,
    whole output)."""
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    sent = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if marker in line and not sent.is_set():
                time.sleep(delay)
                os.killpg(process.pid, number)
                sent.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    reader.join(timeout=10)
    output = "".join(lines)
    assert sent.is_set(), f"{marker!r} never appeared:\n{output[-3000:]}"
    return code, output


def runs_by_status(env: dict[str, str]) -> dict[dg.DagsterRunStatus, int]:
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            counts: dict[dg.DagsterRunStatus, int] = {}
            for run in instance.get_runs():
                counts[run.status] = counts.get(run.status, 0) + 1
            return counts
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous


STOPS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
STOP_IDS = ["ctrl-c", "SIGTERM", "SIGHUP"]


@pytest.mark.parametrize("number", STOPS, ids=STOP_IDS)
def test_ctrl_c_in_the_quickstart_cancels_the_run_and_says_how_to_finish(project_env, tmp_path, number):
    raw = tmp_path / "export.csv"
    generate_sales_csv(raw, rows=300_000)
    settings_file = tmp_path / "sales-settings.yaml"
    settings_file.touch()
    env = {**project_env, "SALES_RAW_CSV": str(raw), "SALES_SETTINGS_FILE": str(settings_file)}

    code, output = interrupt_when(
        [sys.executable, "scripts/quickstart.py", "--no-install"],
        env,
        marker="clean_parquet - ",
        number=number,
    )

    assert code == 130, output[-3000:]
    assert "Traceback" not in output and "InterruptedError" not in output, output[-3000:]
    assert "run(s) marked canceled: " in output and "canceled: none" not in output
    assert "State of the outputs" in output
    assert "To finish the job, run again: python3 scripts/quickstart.py" in output
    # The refresh reads raw_csv in a run of its own first (sales_assets.refresh); the run it interrupted is
    # the next one.
    assert runs_by_status(env) == {dg.DagsterRunStatus.SUCCESS: 1, dg.DagsterRunStatus.CANCELED: 1}
    # The choice it was given lasts: the settings file names the export.
    assert str(raw) in settings_file.read_text()


@pytest.mark.parametrize("number", STOPS, ids=STOP_IDS)
def test_ctrl_c_in_the_backfill_cancels_and_says_how_to_finish(
    project_env, warehouse_data_dir, tmp_path, number
):
    # Every product line x country pair with a year of history is a segment: the one run of the backfill
    # then lasts long enough (tens of segments) for the interrupt to land while it is in progress.
    env = {
        **project_env,
        "SALES_DATA_DIR": str(tmp_path / "data"),
        "SALES_TIMESERIES__SEGMENT_MIN_MONTHS": "12",
    }
    import shutil

    shutil.copytree(warehouse_data_dir, env["SALES_DATA_DIR"], symlinks=True)

    code, output = interrupt_when(
        # A segment's report logs while its run is in progress (SARIMA and GARCH fits take seconds).
        [sys.executable, "-m", "sales_assets.timeseries.backfill"],
        env,
        marker=" - ts_risk_reports - ",
        delay=0.0,
        number=number,
    )

    assert code == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "To finish the job: python -m sales_assets.timeseries.backfill" in output
    statuses = runs_by_status(env)
    assert dg.DagsterRunStatus.CANCELED in statuses, statuses
    in_progress = {dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING}
    assert not in_progress & set(statuses), statuses
    assert dg.DagsterRunStatus.FAILURE not in statuses, statuses
    assert Path(env["SALES_DATA_DIR"], "duckdb", "sales.duckdb").is_file()
