"""Benchmark (issue 15): the whole graph as a user runs it, on generated exports of N rows, each step's wall
time and peak memory, and how both grow with the row count.

For each size: a generated export (`sales-generate --rows N`; with `--duplicates-5m` also a 5,000,000-row
file that is 99% exact duplicates, made like bench_cleaning's), fresh temp `SALES_DATA_DIR` and
`DAGSTER_HOME` (a copy of `dagster_home/dagster.yaml`), `SALES_RAW_CSV` the generated file, then the three
commands CI and the quickstart run, one after the other:

    dagster job execute -m sales_assets.definitions -j refresh_cheap_chain   # in-process executor
    dagster job execute -m sales_assets.definitions -j refresh_heavy         # a process per step
    python -m sales_assets.timeseries.backfill                               # every segment, in-process

How each figure is taken:
- every command runs under `/usr/bin/time` (wall s, CPU s, peak RSS of its largest process), and a thread
  polls `/proc` of its process tree every 0.2 s (each process's VmHWM, its own exact peak up to the last
  poll, and the sum of the tree's VmRSS at each poll);
- each step's wall time comes from the run's event log (STEP_START to STEP_SUCCESS/FAILURE, read through
  `DagsterInstance.get()` on that DAGSTER_HOME after the commands), with the pid of the process that ran it;
- in-process commands (the cheap chain, the backfill): one process runs all the steps, so a step's peak is
  that process's peak, which bounds the step's own (marked "process" in the table);
- `refresh_heavy`: each step's process is the pid its events carry; its peak is the largest VmHWM among that
  process and its descendants (the training's worker processes), and "tree" the largest sampled sum of
  their RSS (what the step holds at once; shared pages counted in each process). The step's wall time
  starts when its process has imported the code; the command's row holds the start-ups.

    .venv/bin/python bench/bench_scale.py --rows 1000000 5000000 20000000 --duplicates-5m

`--set ENV=VALUE` passes a settings override to every command (for example a larger training sample:
`--set SALES_ML__MAX_TRAINING_ROWS=20000`; BENCHMARKS.md's figures use the defaults); `--keep` keeps
each size's CSV, data and instance under `--workdir`.

The machine may be shared: the load average is printed at the start and end of each size; wall seconds are
then upper bounds, peaks are not affected. Ratios are against the smallest size of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cleaning import DUPLICATED_SHARE, repeat_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DUPLICATES_ROWS = 5_000_000
POLL_SECONDS = 0.2
COMMANDS = {
    "refresh_cheap_chain": ["dagster", "job", "execute", "-m", "sales_assets.definitions", "-j"],
    "refresh_heavy": ["dagster", "job", "execute", "-m", "sales_assets.definitions", "-j"],
    "backfill": [sys.executable, "-m", "sales_assets.timeseries.backfill"],
}
# Which runs of the instance each command made (by job name).
COMMAND_JOBS = {
    "refresh_cheap_chain": {"refresh_cheap_chain"},
    "refresh_heavy": {"refresh_heavy"},
    "backfill": {"ts_segments_job", "ts_risk_reports_job"},
}
IN_PROCESS = {"refresh_cheap_chain", "backfill"}

# Read in a child with the run's DAGSTER_HOME: every run's steps (start, end, status, pid).
EVENTS = """
import json
import dagster as dg
from dagster import DagsterEventType as T
kinds = {T.STEP_START, T.STEP_SUCCESS, T.STEP_FAILURE}
instance = dg.DagsterInstance.get()
runs = []
for run in reversed(instance.get_runs()):
    steps = {}
    for entry in instance.all_logs(run.run_id, of_type=kinds):
        step = steps.setdefault(entry.step_key, {"key": entry.step_key})
        if entry.dagster_event.event_type == T.STEP_START:
            step["start"], step["pid"] = entry.timestamp, entry.dagster_event.pid
        else:
            step["end"], step["status"] = entry.timestamp, entry.dagster_event.event_type_value
    runs.append({"job": run.job_name, "status": run.status.value, "steps": list(steps.values())})
print(json.dumps(runs))
"""


class TreePoller(threading.Thread):
    """Every POLL_SECONDS: the process tree under `root` from /proc; per pid its parent and largest VmHWM,
    and each poll's {pid: VmRSS} (KiB)."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.parent: dict[int, int] = {}
        self.hwm_kib: dict[int, int] = {}
        self.samples: list[dict[int, int]] = []
        self.done = threading.Event()

    @staticmethod
    def status(pid: int) -> dict[str, str]:
        try:
            with open(f"/proc/{pid}/status") as handle:
                return dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            return {}

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = self.status(int(entry))
                if "PPid" in fields:
                    children.setdefault(int(fields["PPid"]), []).append(int(entry))
        found, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for child in children.get(pid, []):
                self.parent[child] = pid
                todo.append(child)
        return found

    def run(self) -> None:
        while not self.done.wait(POLL_SECONDS):
            sample = {}
            for pid in self.tree():
                fields = self.status(pid)
                if "VmHWM" in fields:
                    self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), int(fields["VmHWM"].split()[0]))
                    sample[pid] = int(fields["VmRSS"].split()[0])
            self.samples.append(sample)

    def subtree_peaks(self, pid: int) -> tuple[float, float]:
        """(largest VmHWM of one process, largest sampled RSS sum) over `pid` and its descendants, MiB."""
        members = {pid}
        changed = True
        while changed:
            before = len(members)
            members |= {child for child, parent in self.parent.items() if parent in members}
            changed = len(members) != before
        largest = max((self.hwm_kib.get(p, 0) for p in members), default=0)
        summed = max((sum(v for p, v in s.items() if p in members) for s in self.samples), default=0)
        return largest / 1024, summed / 1024


def timed_command(command: list[str], env: dict[str, str], log: Path) -> tuple[dict, TreePoller]:
    """`command` under `/usr/bin/time` with its tree polled: wall s, CPU s, peak MiB (largest process)."""
    report = log.with_suffix(".time")
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["/usr/bin/time", "-o", str(report), "-f", "%e %U %S %M", *command],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        poller = TreePoller(process.pid)
        poller.start()
        returncode = process.wait()
        poller.done.set()
        poller.join()
    if returncode != 0:
        raise SystemExit(
            f"{command[:6]} failed ({returncode}), last lines of {log}:\n{log.read_text()[-3000:]}"
        )
    wall, user, system, peak_kib = report.read_text().split()[-4:]
    measured = {"wall_s": float(wall), "cpu_s": float(user) + float(system), "peak_mib": int(peak_kib) / 1024}
    return measured, poller


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def generate(rows: int, duplicated: bool, target: Path) -> None:
    """`sales-generate --rows rows`; duplicated: the first 1% of the records repeated up to `rows`."""
    distinct = round(rows * (1 - DUPLICATED_SHARE)) if duplicated else rows
    source = target.with_suffix(".distinct.csv") if duplicated else target
    subprocess.run(
        [str(VENV_BIN / "sales-generate"), "--rows", str(distinct), "--out", str(source), "--force"],
        check=True,
        capture_output=True,
    )
    if duplicated:
        repeat_rows(source, distinct, rows, target)
        source.unlink()


def measure_size(rows: int, duplicated: bool, work: Path, extra_env: dict[str, str]) -> dict:
    """The three commands on a fresh data folder and instance; rows of (label, wall s, peak MiB, note)."""
    shutil.rmtree(work, ignore_errors=True)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home)
    csv = work / "sales.csv"
    started = time.perf_counter()
    generate(rows, duplicated, csv)
    size_mib = csv.stat().st_size / 2**20
    print(
        f"  generated {rows:,} rows ({size_mib:,.0f} MiB) in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    env = {
        "SALES_DATA_DIR": str(work / "data"),
        "SALES_RAW_CSV": str(csv),
        "DAGSTER_HOME": str(home),
        "NO_COLOR": "1",
        **extra_env,
    }
    result: dict = {
        "rows": rows,
        "load_start": load_text(),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    commands: dict[str, tuple[dict, TreePoller]] = {}
    for name, prefix in COMMANDS.items():
        command = [str(VENV_BIN / prefix[0]), *prefix[1:], name] if prefix[0] == "dagster" else prefix
        commands[name] = timed_command(command, env, work / f"{name}.log")
        whole = commands[name][0]
        print(
            f"  {name}: {whole['wall_s']:.1f} s wall, {whole['cpu_s']:.1f} CPU s, {whole['peak_mib']:,.0f} MiB",
            flush=True,
        )
    result["load_end"] = load_text()
    events = subprocess.run(
        [sys.executable, "-c", EVENTS],
        cwd=tempfile.gettempdir(),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    runs = json.loads(events.stdout.strip().splitlines()[-1])
    table = []
    for name, (whole, poller) in commands.items():
        tree_mib = poller.subtree_peaks(poller.root)[1]
        table.append((name, "(whole command)", whole["wall_s"], whole["peak_mib"], tree_mib))
        for run in (r for r in runs if r["job"] in COMMAND_JOBS[name]):
            if run["status"] != "SUCCESS":
                raise SystemExit(f"run of {run['job']} ended {run['status']}")
            for step in run["steps"]:
                wall = step.get("end", float("nan")) - step["start"]
                if name in IN_PROCESS:
                    table.append((name, step["key"], wall, whole["peak_mib"], None))
                else:
                    table.append((name, step["key"], wall, *poller.subtree_peaks(step["pid"])))
    result["table"] = table
    return result


def ratio(value: float | None, first: float | None) -> str:
    return f"{value / first:.2f}x" if value is not None and first else "-"


def print_tables(results: dict[str, dict]) -> None:
    """Per size: one row per step (wall s, peak MiB; "tree" the step's process tree summed, only for
    the heavy steps' own processes), then its ratios against the first (smallest) size."""
    labels = list(results)
    base = {(command, step): row for command, step, *row in results[labels[0]]["table"]}
    for label in labels:
        r = results[label]
        print(
            f"\n{label} ({r['rows'] / results[labels[0]]['rows']:.0f}x the rows of {labels[0]}): started "
            f"{r['started']}, load average {r['load_start']} -> {r['load_end']}"
        )
        print(
            "| command | step | wall s | peak MiB | tree MiB "
            f"| wall vs {labels[0]} | peak vs {labels[0]} | tree vs {labels[0]} |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for command, step, wall, peak, tree in r["table"]:
            first = base.get((command, step), (None, None, None))
            peak_text = f"{peak:,.0f}" + (" (process)" if tree is None and step[0] != "(" else "")
            print(
                f"| {command} | {step} | {wall:,.1f} | {peak_text} | "
                f"{'-' if tree is None else f'{tree:,.0f}'} | {ratio(wall, first[0])} | "
                f"{ratio(peak, first[1])} | {ratio(tree, first[2])} |"
            )
    over = [
        f"{command} {step} at {label} ({max(peak, tree or 0):,.0f} MiB)"
        for label, r in results.items()
        for command, step, _, peak, tree in r["table"]
        if max(peak, tree or 0) > 2048
    ]
    print("\nOver 2 GiB (largest process, or the heavy step's tree): " + (", ".join(over) or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument(
        "--duplicates-5m", action="store_true", help="also a 5,000,000-row file that is 99%% duplicates"
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temp dir under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep each size's CSV, data and instance")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ENV=VALUE",
        help="a settings override for every command, e.g. SALES_ML__CV_REPEATS=1 (printed with the tables)",
    )
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.set)
    sizes = [(rows, False) for rows in sorted(args.rows)]
    if args.duplicates_5m:
        sizes.insert(
            next((i + 1 for i, (rows, _) in enumerate(sizes) if rows == DUPLICATES_ROWS), len(sizes)),
            (DUPLICATES_ROWS, True),
        )
    base = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    print(f"scratch {base}; overrides {extra_env or 'none'}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    results: dict[str, dict] = {}
    try:
        for rows, duplicated in sizes:
            label = f"{rows:,} rows" + (", 99% duplicates" if duplicated else "")
            print(f"{label}: load average {load_text()}", flush=True)
            work = base / f"{rows}{'-dup' if duplicated else ''}"
            results[label] = measure_size(rows, duplicated, work, extra_env)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
            print_tables({k: results[k] for k in [next(iter(results)), label]} if results else {})
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("\n=== all sizes ===")
    print_tables(results)


if __name__ == "__main__":
    main()
