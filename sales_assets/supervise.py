"""Ctrl-C that stops a run cleanly, for the quickstart and the backfill (standard library only: the
quickstart imports it before the virtual environment exists).

The command runs in its own session, so the terminal's Ctrl-C reaches only the supervisor, which sends the
command SIGINT (Dagster then interrupts its steps; repeated every few seconds while it runs, see `stop`),
drops the command's output from then on (Dagster's interruption tracebacks), and kills its process group
if it has not stopped within a grace period. It then
marks the runs that process executed canceled (`sales-admin cancel-interrupted`), prints the state of the
outputs and the command that finishes the job, and exits 130. SIGTERM (`kill`) and SIGHUP (a closed
terminal) do the same as Ctrl-C. Every output is written atomically, so each one is whole, old or new.

A supervisor that is killed outright (`kill -9` of its process group) cannot stop the command, so the
command stops itself: the kernel sends it SIGINT when its parent dies (`die_with_parent`), and a supervised
Python command also watches its parent (`watch_parent`), repeating the interrupt and killing its own
process group, its step workers included, if it has not stopped within the grace period.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# Set in the supervised command's environment: that process does the work instead of supervising again.
SUPERVISED_ENV = "SALES_SUPERVISED"
# The signals that stop a supervised command as Ctrl-C does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(number: int = signal.SIGINT) -> None:
    """Ask the kernel to send this process signal `number` when its parent dies (Linux prctl
    PR_SET_PDEATHSIG; kept across exec, so it also covers a command that is not Python). Meant as a
    Popen `preexec_fn`; a no-op where the call does not exist."""
    libc_name = ctypes.util.find_library("c")
    prctl = getattr(ctypes.CDLL(libc_name), "prctl", None) if libc_name else None
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, number, 0, 0, 0)


def watch_parent(grace: float, again_every: float = 5, poll: float = 0.5) -> threading.Thread:
    """Start a daemon thread that, once this process's parent is gone (it was re-parented), interrupts
    this process every `again_every` seconds and kills its process group after `grace` seconds."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(again_every)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="watch-parent", daemon=True)
    thread.start()
    return thread


def _interrupt(_number: int, _frame: object) -> None:
    raise KeyboardInterrupt


class Interrupted(Exception):
    """Ctrl-C while `command` ran as process `pid`; the process has stopped."""

    def __init__(self, command: Sequence[str], pid: int, started: float):
        super().__init__(" ".join(command))
        self.command, self.pid, self.started = list(command), pid, started


def run_supervised(
    command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None, grace: float = 90
) -> int:
    """Run `command`, echoing its output; return its exit code. On Ctrl-C, SIGTERM or SIGHUP stop it (see
    the module) and raise Interrupted."""
    started = time.time()
    child = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    previous = {number: signal.signal(number, _interrupt) for number in STOP_SIGNALS[1:]}
    try:
        assert child.stdout is not None
        for line in iter(child.stdout.readline, b""):
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        return child.wait()
    except KeyboardInterrupt:
        stop(child, grace)
        raise Interrupted(command, child.pid, started) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def stop(child: subprocess.Popen, grace: float, again_every: float = 5) -> None:
    """SIGINT, repeated every `again_every` seconds while the command runs, then SIGKILL to its process
    group after `grace` seconds; output is read and dropped. The repeat is there because Python can lose
    an interrupt: one that lands in a weakref callback or a finaliser is reported and ignored."""
    for number in STOP_SIGNALS:  # a second Ctrl-C (or SIGTERM) must not abandon the cleanup
        signal.signal(number, signal.SIG_IGN)
    print("\nStopping the run (Ctrl-C, SIGTERM or SIGHUP; it will be marked canceled) ...", flush=True)
    deadline = time.monotonic() + grace
    while True:
        child.send_signal(signal.SIGINT)
        try:
            child.communicate(timeout=max(0.0, min(again_every, deadline - time.monotonic())))
            return
        except subprocess.TimeoutExpired:  # retrying communicate() loses no output
            if time.monotonic() >= deadline:
                break
    os.killpg(child.pid, signal.SIGKILL)
    child.communicate()


def mark_canceled(
    python: str, stopped: Interrupted, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """`sales-admin cancel-interrupted` for the stopped command, with `python`; its one-line answer."""
    completed = subprocess.run(
        [
            python,
            "-m",
            "sales_assets.admin",
            "cancel-interrupted",
            "--pid",
            str(stopped.pid),
            "--since",
            str(stopped.started),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = (completed.stdout.strip() or completed.stderr.strip()).splitlines()
    return lines[-1] if lines else f"cancel-interrupted exited {completed.returncode}"


def supervised(
    module: str, finish: str, grace: float = 20
) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate the `main(argv)` of `python -m <module>` so it runs supervised (in a child process), after
    recovering runs whose process is gone. `finish` is the command printed as the way to finish the job."""

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(argv: Sequence[str] | None = None) -> int:
            if os.environ.get(SUPERVISED_ENV):
                from sales_assets.cli import default_dagster_home
                from sales_assets.recovery import recover_on_start

                os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home()))
                watch_parent(grace)
                recover_on_start()
                return main(argv)
            arguments = list(sys.argv[1:] if argv is None else argv)
            env = {**os.environ, SUPERVISED_ENV: "1"}
            try:
                return run_supervised([sys.executable, "-m", module, *arguments], env=env, grace=grace)
            except Interrupted as stopped:
                print(mark_canceled(sys.executable, stopped, env))
                print(
                    "Outputs are whole: each one the previous or the new version, never half-written. "
                    f"To finish the job: {finish}"
                )
                return 130

        return wrapped

    return decorate
