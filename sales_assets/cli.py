"""`sales-dagster`: the `dagster` CLI with DAGSTER_HOME defaulting to the project's `dagster_home/`, after
recovering runs of that instance whose process is gone (one line when there were any).

Off a terminal (output piped or written to a file) or with NO_COLOR set (https://no-color.org), the output
has no ANSI colour codes: Dagster's processes (the code server `schedule start` and `sensor list` start,
the daemon and webserver of `dagster dev`) log through coloredlogs' formatter, which colours whatever the
stream is, and their `--log-format` offers only `colored`, `json` and `rich` (also coloured). So there
`dagster` runs as a child whose output passes through `strip_ansi` line by line.

`sales-dagster dev` always runs `dagster dev` as a child whose output passes through `IdleSensorLines`:
Dagster's sensor daemon logs one "skipped" line at every tick of a sensor that has nothing to do (30-60 s),
whatever the sensor returns (it says "No run requests returned" when no reason is given), so the project
cannot quiet it from the sensor; the wrapper shows each sensor's skip reason once, and again when it changes,
and drops the "Checking for new runs for sensor" line the daemon logs before every tick's outcome.

sales-dagster dev -w workspace.yaml
sales-dagster asset materialize --select 'not key:ts_risk_reports and not key:clean_export' -m sales_assets.definitions
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from sales_assets.quiet_logs import quiet_environment

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


# ECMA-48 control sequences (CSI): ESC [ parameters intermediates final byte, e.g. `\x1b[32m`.
ANSI_SEQUENCE = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def strip_ansi(data: bytes) -> bytes:
    """`data` without ANSI control sequences (colours, cursor moves); other bytes unchanged."""
    return ANSI_SEQUENCE.sub(b"", data)


def colour_wanted(stream: BinaryIO | None = None) -> bool:
    """Colour only on a terminal (`stream`, default stdout, is a TTY) and while NO_COLOR is unset or
    empty (https://no-color.org)."""
    stream = stream or sys.stdout.buffer
    return stream.isatty() and not os.environ.get("NO_COLOR")


# The daemon's two idle-tick lines (dagster/_daemon/sensor.py): with a skip reason, and without one.
IDLE_SENSOR_LINE = re.compile(
    rb"Sensor (?P<name>\S+) skipped: (?P<reason>.*?)\s*$|No run requests returned for (?P<quiet>\S+), skipping"
)
# The line the daemon logs at every tick of every sensor (every 30-60 s) before its outcome: the outcome
# line (a skip reason, or "Launching run for ...") says all it says.
SENSOR_TICK_LINE = re.compile(rb"Checking for new runs for sensor: \S+")


class IdleSensorLines:
    """Decides which of Dagster's per-tick "sensor skipped" lines to show: each sensor's first one, and the
    next one whose reason differs from the last shown for that sensor. Every other line is shown."""

    def __init__(self) -> None:
        self._last_reason: dict[bytes, bytes] = {}
        self._lock = threading.Lock()  # stdout and stderr are copied by two threads

    def keep(self, line: bytes) -> bool:
        if SENSOR_TICK_LINE.search(strip_ansi(line)):
            return False
        match = IDLE_SENSOR_LINE.search(strip_ansi(line))
        if match is None:
            return True
        name, reason = match["name"] or match["quiet"], match["reason"] or b""
        with self._lock:
            if self._last_reason.get(name) == reason:
                return False
            self._last_reason[name] = reason
            return True


def _copy_lines(source: BinaryIO, sink: BinaryIO, strip: bool, idle: IdleSensorLines | None) -> None:
    for line in iter(source.readline, b""):
        if idle is not None and not idle.keep(line):
            continue
        sink.write(strip_ansi(line) if strip else line)
        sink.flush()


def run_filtered(argv: list[str], strip_colour: bool = True, idle_sensors_once: bool = False) -> int:
    """Run `argv` with its stdout and stderr copied to ours, without ANSI codes when `strip_colour`, and
    with repeated idle-sensor lines dropped when `idle_sensors_once`. The child runs in its own session,
    so a Ctrl-C at the terminal reaches it once, through us: SIGINT, SIGTERM and SIGHUP sent to us reach
    it as SIGINT, and if we are killed outright it gets SIGINT from the kernel (`supervise.die_with_parent`), so a
    `kill -9` of our process group stops it too. Returns its exit code (128 + N when signal N ended it, as
    a shell reports)."""
    from sales_assets.supervise import die_with_parent

    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"} if strip_colour else None
    child = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    started = time.time()
    stopped: list[int] = []

    def stop(number: int, _frame: object) -> None:
        stopped.append(number)
        child.send_signal(signal.SIGINT)

    for number in FORWARDED_SIGNALS:
        # SIGTERM and SIGHUP stop the command as Ctrl-C does.
        signal.signal(number, stop)
    idle = IdleSensorLines() if idle_sensors_once else None
    copies = [
        threading.Thread(target=_copy_lines, args=(child.stdout, sys.stdout.buffer, strip_colour, idle)),
        threading.Thread(target=_copy_lines, args=(child.stderr, sys.stderr.buffer, strip_colour, idle)),
    ]
    for copy in copies:
        copy.start()
    code = child.wait()
    for copy in copies:
        copy.join()
    if stopped:
        # Dagster ends a run it was interrupted in as failed; the user stopped it: canceled, as every
        # command of the project marks it (pool slots freed, MLflow runs ended).
        from sales_assets.supervise import Interrupted, mark_canceled

        print(mark_canceled(sys.executable, Interrupted(argv, child.pid, started)), flush=True)
    return 128 - code if code < 0 else code


def main() -> None:
    os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    from sales_assets.recovery import recover_on_start

    recover_on_start()
    executable = dagster_executable()
    argv = [executable, *sys.argv[1:]]
    colour, dev = colour_wanted(), sys.argv[1:2] == ["dev"]
    quiet_environment(os.environ)  # the `dagster` child's superseded-command warning, named with its reason
    if dev or not colour:
        sys.stdout.flush()
        raise SystemExit(run_filtered(argv, strip_colour=not colour, idle_sensors_once=dev))
    # The public CLI, as its own executable: this process becomes `dagster`, with its exit code and signals.
    os.execv(executable, argv)
