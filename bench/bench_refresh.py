"""What a refresh costs when everything is new, when nothing is, and when one row changed (issue 25), against
the code of another commit (default: main) measured in the same run.

    .venv/bin/python bench/bench_refresh.py --csv ../shared/data/sales_data_sample.csv --repeats 2
    .venv/bin/python bench/bench_refresh.py --rows 1000000 --one-row-change

The baseline is a `git worktree` of `--baseline` (default `main`) in a temporary folder, run with the same
interpreter. Each case runs `python -m sales_assets.refresh` (what `scripts/quickstart.py` and CI run) under
`/usr/bin/time -v` on fresh data and instance folders, default settings, for this checkout and the baseline
in turn (interleaved, so a change in the machine's load falls on both):

- with `--csv`: the full refresh, then the same command again with nothing changed, `--repeats` times;
- with `--rows N --one-row-change`: a generated export of N rows, the full refresh, then one row changed
  (one order line's STATUS) and the refresh again; it prints what reran.

Per command: wall seconds, CPU seconds (user + system of the command and the children it waited for: step
processes and training workers), peak RSS of its largest process, the load average before; then the medians
and the ratios this checkout / baseline. The 90 s goal is for a quiet machine: on a shared one the CPU
seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
REFRESH = [PYTHON, "-m", "sales_assets.refresh"]
TIME = "/usr/bin/time"
# What the refresh prints before it runs something (sales_assets.refresh.refresh).
RAN_PREFIXES = (
    "running in this process: ",
    "running in one child process: ",
    "running, a process each: ",
    "segments to report: ",
)


@dataclass(frozen=True)
class Measured:
    """One command under /usr/bin/time -v: wall and CPU seconds (user + system, children included), peak RSS
    in MiB of the largest process, the load average before it, and the lines naming what it ran."""

    wall: float
    cpu: float
    peak_mib: float
    load: float
    ran: list[str]


def environment(checkout: Path, folder: Path, csv: Path) -> dict[str, str]:
    """A fresh data folder and Dagster instance under `folder`, reading `csv`, running the code of
    `checkout`; no settings file."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(checkout / "dagster_home" / "dagster.yaml", home)
    return {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "DAGSTER_HOME": str(home),
        "SALES_DATA_DIR": str(folder / "data"),
        "SALES_RAW_CSV": str(csv),
        "SALES_SETTINGS_FILE": "",
        "SALES_SUPERVISED": "1",  # as the quickstart runs it: no second supervising process
        "PYTHONWARNINGS": "ignore::FutureWarning",
    }


def _seconds(clock: str) -> float:
    """'h:mm:ss' or 'm:ss.ss' of /usr/bin/time as seconds."""
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def timed(checkout: Path, env: dict[str, str], label: str) -> Measured:
    """Run the refresh of `checkout` under /usr/bin/time -v; print and return what it cost.

    Raises:
        subprocess.CalledProcessError: the command failed (its output's tail is printed first).
    """
    load = os.getloadavg()[0]
    command = [TIME, "-v", *REFRESH]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise subprocess.CalledProcessError(done.returncode, command)

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", done.stderr).group(1).strip()

    measured = Measured(
        wall=_seconds(field("Elapsed (wall clock) time (h:mm:ss or m:ss)")),
        cpu=float(field("User time (seconds)")) + float(field("System time (seconds)")),
        peak_mib=int(field("Maximum resident set size (kbytes)")) / 1024,
        load=load,
        ran=[line for line in done.stdout.splitlines() if line.startswith(RAN_PREFIXES)],
    )
    print(
        f"{label}: {measured.wall:.1f} s wall, {measured.cpu:.1f} CPU-s, peak {measured.peak_mib:,.0f} MiB "
        f"(load average before: {load:.1f})",
        flush=True,
    )
    for line in measured.ran:
        print(f"    {line[:200]}")
    return measured


def baseline_checkout(commit: str, folder: Path) -> Path:
    """A detached `git worktree` of `commit` under `folder` (removed by `remove_checkout`)."""
    target = folder / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(target), commit], cwd=ROOT, check=True, capture_output=True
    )
    return target


def remove_checkout(target: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(target)], cwd=ROOT, check=False)


def summary(name: str, ours: list[Measured], base: list[Measured]) -> None:
    """Medians of this checkout and the baseline, and their ratios."""
    wall, cpu = statistics.median(m.wall for m in ours), statistics.median(m.cpu for m in ours)
    base_wall, base_cpu = statistics.median(m.wall for m in base), statistics.median(m.cpu for m in base)
    loads = ", ".join(f"{m.load:.1f}" for m in [*ours, *base])
    print(
        f"{name}: median {wall:.1f} s wall / {cpu:.1f} CPU-s against the baseline's {base_wall:.1f} s / "
        f"{base_cpu:.1f} CPU-s: {wall / base_wall:.2f}x wall, {cpu / base_cpu:.2f}x CPU (loads {loads})"
    )


def real_file(csv: Path, work: Path, baseline: Path, repeats: int) -> None:
    results: dict[str, list[Measured]] = {"full": [], "again": [], "base full": [], "base again": []}
    for repeat in range(repeats):
        for checkout, prefix in ((ROOT, ""), (baseline, "base ")):
            who = "this checkout" if checkout == ROOT else "baseline"
            env = environment(checkout, work / f"{prefix.strip() or 'new'}{repeat}", csv)
            results[f"{prefix}full"].append(timed(checkout, env, f"[{repeat + 1}] {who}: full refresh"))
            results[f"{prefix}again"].append(timed(checkout, env, f"[{repeat + 1}] {who}: nothing new"))
    summary("full refresh", results["full"], results["base full"])
    summary("nothing-new refresh", results["again"], results["base again"])


def one_row_change(rows: int, work: Path, baseline: Path) -> None:
    csv = work / "export.csv"
    subprocess.run(
        [PYTHON, "-m", "sales_assets.ingest.generator", "--out", str(csv), "--rows", str(rows)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    text = csv.read_bytes()
    changed = text.replace(b",Shipped,", b",Resolved,", 1)
    if changed == text:
        raise SystemExit(f"no ',Shipped,' field in {csv} to change")
    full: dict[Path, Measured] = {}
    envs = {
        checkout: environment(checkout, work / name, csv)
        for checkout, name in ((ROOT, "run"), (baseline, "base"))
    }
    for checkout, env in envs.items():
        full[checkout] = timed(
            checkout,
            env,
            f"{'this checkout' if checkout == ROOT else 'baseline'}: full refresh of {rows:,} rows",
        )
    csv.write_bytes(changed)
    again = {
        checkout: timed(
            checkout,
            env,
            f"{'this checkout' if checkout == ROOT else 'baseline'}: after one row changed (one STATUS Shipped -> Resolved)",
        )
        for checkout, env in envs.items()
    }
    print(f"one-row change / full refresh: {again[ROOT].wall / full[ROOT].wall:.2f}x wall")
    summary("refresh after one row changed", [again[ROOT]], [again[baseline]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="a real export: full and nothing-new refreshes")
    parser.add_argument("--repeats", type=int, default=1, help="full + nothing-new pairs per checkout")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--one-row-change", action="store_true", help="the generated-export case")
    parser.add_argument("--baseline", default="main", help="the commit measured beside this checkout")
    args = parser.parse_args()
    if args.csv is None and not args.one_row_change:
        parser.error("give --csv PATH or --one-row-change")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    base = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True, text=True
    )
    print(
        f"{os.cpu_count()} CPUs; this checkout {head.stdout.strip()}, baseline {args.baseline} {base.stdout.strip()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_refresh_") as folder:
        baseline = baseline_checkout(args.baseline, Path(folder))
        try:
            if args.csv is not None:
                real_file(args.csv.resolve(), Path(folder), baseline, args.repeats)
            if args.one_row_change:
                one_row_change(args.rows, Path(folder), baseline)
        finally:
            remove_checkout(baseline)


if __name__ == "__main__":
    main()
