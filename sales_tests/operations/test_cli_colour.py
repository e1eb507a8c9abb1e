"""`sales-dagster` off a terminal: no ANSI colour codes in what it prints (issue 16), exit codes kept; under
`dev`, each idle sensor's per-tick "skipped" line once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sales_assets.cli import PROJECT_ROOT, IdleSensorLines, strip_ansi

SALES_DAGSTER = str(Path(sys.executable).with_name("sales-dagster"))
# A child that colours both streams and fails, as Dagster's coloredlogs formatter does on any stream.
COLOURED_CHILD = (
    "import sys; print('\\x1b[32m2026-01-01\\x1b[0m - \\x1b[34mINFO\\x1b[0m - started');"
    "sys.stderr.write('\\x1b[1;31merror\\x1b[0m\\n'); sys.exit(3)"
)


def test_strip_ansi_removes_control_sequences_and_keeps_the_text():
    line = b"\x1b[32m2026-11-30 09:25:04 +0000\x1b[0m - dagster - \x1b[34mINFO\x1b[0m - caf\xc3\xa9 [ok]\n"
    assert strip_ansi(line) == "2026-11-30 09:25:04 +0000 - dagster - INFO - café [ok]\n".encode()
    assert strip_ansi(b"\x1b[2K\x1b[1;31;40mred\x1b[?25l") == b"red"


def test_a_piped_child_loses_its_colours_on_both_streams_and_keeps_its_exit_code():
    script = (
        "import sys; from sales_assets.cli import run_filtered; "
        f"raise SystemExit(run_filtered([sys.executable, '-c', {COLOURED_CHILD!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 3
    assert done.stdout == b"2026-01-01 - INFO - started\n"
    assert done.stderr == b"error\n"


def test_sales_dagster_sensor_list_piped_prints_no_ansi_codes(tmp_path):
    """The real command: it starts Dagster's code server, whose log lines are coloured by default."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SALES_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("NO_COLOR", None)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("")
    done = subprocess.run(
        [SALES_DAGSTER, "sensor", "list", "-w", "workspace.yaml"],
        capture_output=True,
        timeout=300,
        cwd=PROJECT_ROOT,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output.decode(errors="replace")[-2000:]
    assert b"Sensor: segments_after_refresh" in done.stdout
    assert b"dagster.code_server" in output, "the code server's log lines are what carried colour codes"
    assert b"\x1b[" not in output, output.decode(errors="replace")[:2000]


# What Dagster's sensor daemon prints at idle ticks (coloured, with a timestamp), between other lines.
IDLE_TICKS = [
    b"\x1b[32m2026-11-30 09:00:00 +0000\x1b[0m - dagster.daemon.SensorDaemon - INFO - Checking for new runs "
    b"for sensor: segments_after_refresh\n",
    b"\x1b[32m2026-11-30 09:00:00 +0000\x1b[0m - dagster.daemon.SensorDaemon - INFO - Sensor segments_after_refresh "
    b"skipped: Sensor function returned an empty result\n",
    b"2026-11-30 09:00:01 +0000 - dagster.daemon.SensorDaemon - INFO - Sensor raw_csv_change skipped: raw CSV "
    b"/d/raw.csv unchanged (sha256 0123456789ab)\n",
    b"2026-11-30 09:00:30 +0000 - dagster.daemon.SensorDaemon - INFO - Sensor segments_after_refresh "
    b"skipped: Sensor function returned an empty result\n",
    b"2026-11-30 09:00:31 +0000 - dagster.daemon.SensorDaemon - INFO - Sensor raw_csv_change skipped: raw CSV "
    b"/d/raw.csv unchanged (sha256 0123456789ab)\n",
    b"2026-11-30 09:01:01 +0000 - dagster.daemon.SensorDaemon - INFO - Sensor raw_csv_change skipped: raw CSV "
    b"/d/raw.csv unchanged (sha256 fedcba987654)\n",
    b"2026-11-30 09:01:02 +0000 - dagster.daemon.SensorDaemon - INFO - No run requests returned for "
    b"daily_check, skipping\n",
    b"2026-11-30 09:01:32 +0000 - dagster.daemon.SensorDaemon - INFO - No run requests returned for "
    b"daily_check, skipping\n",
]


def test_idle_sensor_lines_are_shown_once_per_sensor_and_again_when_the_reason_changes():
    idle = IdleSensorLines()
    kept = [index for index, line in enumerate(IDLE_TICKS) if idle.keep(line)]
    # The per-tick "Checking for new runs" line (0) and the 30 s repeats (3, 4, 7) are dropped; a new reason
    # (5: the file changed) and other lines are shown.
    assert kept == [1, 2, 5, 6]


def test_dev_output_passes_through_the_idle_sensor_filter_with_its_colours_on_request():
    child = f"import sys; sys.stderr.buffer.write(b''.join({IDLE_TICKS!r}))"
    script = (
        "import sys; from sales_assets.cli import run_filtered; "
        f"raise SystemExit(run_filtered([sys.executable, '-c', {child!r}], strip_colour=False, "
        "idle_sensors_once=True))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"".join(IDLE_TICKS[i] for i in (1, 2, 5, 6))  # colour kept on a terminal
