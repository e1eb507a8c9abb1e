"""The cluster profile's executor against the local one, in the same run (issue 23):

    .venv/bin/python bench/bench_cluster.py --rows 2823 --rows 1000000

For each size, a generated export (`sales-generate --rows N`; 2,823 is the real file's size), then three
configurations, each on a fresh data folder and Dagster home:

- **local**: Dagster's multiprocess executor (the local default: a process per step, at most one per CPU);
- **celery x1** and **celery x2**: `SALES_CLUSTER__EXECUTOR=celery`, one or two workers (concurrency 1
  each), each a host of its own (`sales_tests.cluster.services.Workers`: own namespaces, private tmpfs).

All three use the same servers, so only the executor differs: the PostgreSQL instance
(deploy/postgres/dagster.yaml, started with scripts/start_postgres.sh), an MLflow tracking server on that
PostgreSQL with proxied artifacts (the cluster profile's, docs/DEPLOY.md), Redis. Two cheap models
(`--default-models` for the default list). In each: `dagster job execute -j refresh_all` (the whole
refresh), then `dagster job backfill -j ts_risk_reports_job --all` with `dagster-daemon run` up (every
segment, one queued run each, at most `max_concurrent_runs` at once).

Printed: wall seconds (the refresh: the command; the backfill: from the command to the last run's end),
each against local's in the same run, the machine's load average before each; then per step, from the
run's event log: **cost** (STEP_START to STEP_SUCCESS), **start** (the step's first event to STEP_START;
its first event is the planned materialisation Dagster logs for every step when the run starts, so this is
when the step started, counted from the run's start: waiting for its inputs, for a free process or
worker, and the process start and code import),
and the **critical path** (the longest chain of step costs through the asset graph: the wall no number of
machines can beat with these steps as they are).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sales_tests.cluster.services import Workers, mlflow_server, redis_server  # noqa: E402

BIN = Path(sys.executable).parent
CHEAP = {
    "SALES_ML__MODELS": json.dumps(["linear_regression", "random_forest_200"]),
    "SALES_ML__N_JOBS": "1",
}
CONFIGS = (("local", 0), ("celery x1", 1), ("celery x2", 2))

# Per step, from one run's event log (run in a subprocess on the configuration's instance).
_STEPS = r"""
import json, sys
import dagster as dg
out = {}
with dg.DagsterInstance.get() as instance:
    for run_id in sys.argv[1:]:
        first, start, end = {}, {}, {}
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or not event.step_key:
                continue
            key = event.step_key
            first.setdefault(key, record.timestamp)
            if event.event_type == dg.DagsterEventType.STEP_START:
                start[key] = record.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                end[key] = record.timestamp
        out[run_id] = {k: [start[k] - first[k], end[k] - start[k]] for k in end if k in start}
print(json.dumps(out))
"""

# Step key -> upstream step keys of a job (asset graph), for the critical path.
_GRAPH = r"""
import json, sys
from sales_assets.definitions import defs
job = defs.resolve_job_def(sys.argv[1])
graph = job.asset_layer.asset_graph
keys = {key for key in graph.get_all_asset_keys() if graph.get(key).is_executable}
name = lambda key: key.to_python_identifier()
print(json.dumps({name(k): sorted(name(p) for p in graph.get(k).parent_keys if p in keys) for k in keys}))
"""


def run(command: list[str], env: dict[str, str], timeout: float = 7200) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return done.stdout


def runs_of(env: dict[str, str], job: str) -> list[dict]:
    script = (
        "import json, sys, dagster as dg\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    print(json.dumps([{'run_id': r.dagster_run.run_id, 'status': r.dagster_run.status.value,\n"
        "        'end': r.end_time} for r in instance.get_run_records(dg.RunsFilter(job_name=sys.argv[1]))]))\n"
    )
    return json.loads(run([sys.executable, "-c", script, job], env).strip().splitlines()[-1])


def critical_path(costs: dict[str, float], parents: dict[str, list[str]]) -> float:
    finish: dict[str, float] = {}

    def done_at(step: str) -> float:
        if step not in finish:
            finish[step] = costs.get(step, 0.0) + max(
                (done_at(p) for p in parents.get(step, [])), default=0.0
            )
        return finish[step]

    return max((done_at(step) for step in costs), default=0.0)


def one_configuration(
    label: str, workers: int, csv: Path, base: dict[str, str], folder: Path, backfill: bool
):
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "postgres" / "dagster.yaml", home)
    env = {
        **base,
        "DAGSTER_HOME": str(home),
        "SALES_DATA_DIR": str(folder / "data"),
        "SALES_RAW_CSV": str(csv),
        "SALES_ML__REGISTERED_MODEL_NAME": f"bench_regressor_{uuid.uuid4().hex[:8]}",
        "SALES_ML__MLFLOW_EXPERIMENT": f"bench_cluster_{uuid.uuid4().hex[:8]}",
    }
    if workers:
        env["SALES_CLUSTER__EXECUTOR"] = "celery"
    hosts = Workers(folder)
    result: dict = {"label": label}
    try:
        for index in range(workers):
            hosts.start(f"w{index + 1}", env)
        hosts.wait_ready()
        load = os.getloadavg()[0]
        started = time.perf_counter()
        run(
            [str(BIN / "dagster"), "job", "execute", "-j", "refresh_all", "-m", "sales_assets.definitions"],
            env,
        )
        result["refresh"] = time.perf_counter() - started
        refresh = runs_of(env, "refresh_all")[0]  # the newest: the instance's database is shared
        result["refresh_load"], result["refresh_run"] = load, refresh["run_id"]
        print(
            f"  {label}: refresh_all {result['refresh']:.1f} s (load average before: {load:.1f})", flush=True
        )
        if backfill:
            result.update(segment_backfill(env, folder))
            print(
                f"  {label}: backfill of every segment {result['backfill']:.1f} s "
                f"(load average before: {result['backfill_load']:.1f})",
                flush=True,
            )
        steps = json.loads(
            run([sys.executable, "-c", _STEPS, result["refresh_run"], *result.get("backfill_runs", [])], env)
            .strip()
            .splitlines()[-1]
        )
        result["steps"] = steps
    finally:
        hosts.stop()
    return result, env


def segment_backfill(env: dict[str, str], folder: Path) -> dict:
    with (folder / "daemon.log").open("w") as log:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-m", "sales_assets.definitions"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            load = os.getloadavg()[0]
            earlier = {r["run_id"] for r in runs_of(env, "ts_risk_reports_job")}  # other configurations'
            started = time.time()
            run(
                [str(BIN / "dagster"), "job", "backfill", "-j", "ts_risk_reports_job", "--all", "--noprompt",
                 "-m", "sales_assets.definitions"],
                env,
            )  # fmt: skip
            while True:
                runs = [r for r in runs_of(env, "ts_risk_reports_job") if r["run_id"] not in earlier]
                if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                    break
                if daemon.poll() is not None:
                    raise SystemExit(f"the daemon exited:\n{(folder / 'daemon.log').read_text()[-3000:]}")
                time.sleep(2)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    failed = [r for r in runs if r["status"] != "SUCCESS"]
    if failed:
        raise SystemExit(f"backfill runs failed: {failed}")
    return {
        "backfill": max(r["end"] for r in runs) - started,
        "backfill_load": load,
        "backfill_runs": [r["run_id"] for r in runs],
    }


def report(rows: int, results: list[dict], parents: dict[str, list[str]]) -> None:
    local = next((r for r in results if r["label"] == "local"), results[0])
    print(f"\n{rows:,} rows (ratios against {local['label']})")
    print(
        "| configuration | refresh_all s | vs local | sum of step costs s | critical path s | backfill s | vs local |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        steps = result["steps"][result["refresh_run"]]
        costs = {key: cost for key, (_, cost) in steps.items()}
        backfill = result.get("backfill")
        print(
            f"| {result['label']} | {result['refresh']:.1f} | {result['refresh'] / local['refresh']:.2f}x | "
            f"{sum(costs.values()):.1f} | {critical_path(costs, parents):.1f} | "
            + (f"{backfill:.1f} | {backfill / local['backfill']:.2f}x |" if backfill else "- | - |")
        )
    print("\nper step of refresh_all: start s / cost s")
    print("| step | " + " | ".join(r["label"] for r in results) + " |")
    print("| --- |" + " ---: |" * len(results))
    keys = sorted(local["steps"][local["refresh_run"]])
    for key in keys:
        cells = []
        for result in results:
            start, cost = result["steps"][result["refresh_run"]].get(key, (float("nan"), float("nan")))
            cells.append(f"{start:.1f} / {cost:.1f}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    if "backfill_runs" in local:
        print(
            "\nbackfill, per segment run (ts_risk_reports): start s / cost s, mean and max over the segments"
        )
        for result in results:
            pairs = [pair for run_id in result["backfill_runs"] for pair in result["steps"][run_id].values()]
            starts, costs = [p[0] for p in pairs], [p[1] for p in pairs]
            print(
                f"  {result['label']}: start {sum(starts) / len(starts):.1f} (max {max(starts):.1f}), "
                f"cost {sum(costs) / len(costs):.1f} (max {max(costs):.1f}), sum of costs {sum(costs):.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, action="append", help="generated export sizes (default 2823 and 1M)"
    )
    parser.add_argument(
        "--default-models", action="store_true", help="the default model list, not two cheap ones"
    )
    parser.add_argument("--no-backfill", action="store_true", help="the refresh only")
    parser.add_argument(
        "--configs", nargs="+", choices=[label for label, _ in CONFIGS], help="a subset (default: all three)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("redis-server") is None:
        raise SystemExit("needs root, unshare and redis-server (scripts/install_redis.sh)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(f"{os.cpu_count()} CPUs; commit {commit.stdout.strip()}; {subprocess.getoutput('uptime').strip()}")
    with tempfile.TemporaryDirectory(prefix="bench_cluster_") as work:
        work = Path(work)
        started = subprocess.run(
            ["bash", str(ROOT / "scripts" / "start_postgres.sh"), "start"],
            capture_output=True,
            text=True,
            check=True,
        )
        pg = dict(
            line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines() if "=" in line
        )
        try:
            with (
                redis_server(shutil.which("redis-server"), work) as redis,
                mlflow_server(work, pg["SALES_ML__MLFLOW_TRACKING_URI"], work / "artifact-store") as tracking,
            ):
                base = {
                    **os.environ,
                    **pg,
                    **({} if args.default_models else CHEAP),
                    "PYTHONPATH": str(ROOT),
                    "SALES_SETTINGS_FILE": "",
                    "SALES_ML__MLFLOW_TRACKING_URI": tracking,
                    "SALES_CLUSTER__CELERY_BROKER": f"{redis}/0",
                    "SALES_CLUSTER__CELERY_BACKEND": f"{redis}/1",
                }
                parents = json.loads(
                    run([sys.executable, "-c", _GRAPH, "refresh_all"], base).strip().splitlines()[-1]
                )
                for rows in args.rows or [2823, 1_000_000]:
                    csv = work / f"export_{rows}.csv"
                    run([str(BIN / "sales-generate"), "--rows", str(rows), "--out", str(csv)], base)
                    print(f"{rows:,} rows:", flush=True)
                    results = []
                    for label, workers in [c for c in CONFIGS if not args.configs or c[0] in args.configs]:
                        folder = work / f"{rows}_{label.replace(' ', '')}"
                        result, _ = one_configuration(label, workers, csv, base, folder, not args.no_backfill)
                        results.append(result)
                        costs = {k: c for k, (_, c) in result["steps"][result["refresh_run"]].items()}
                        print(
                            f"  {label}: sum of step costs {sum(costs.values()):.1f} s, critical path "
                            f"{critical_path(costs, parents):.1f} s, per step (start/cost s): "
                            + json.dumps(
                                {
                                    k: [round(x, 1) for x in v]
                                    for k, v in result["steps"][result["refresh_run"]].items()
                                }
                            ),
                            flush=True,
                        )
                        shutil.rmtree(folder / "data", ignore_errors=True)
                    report(rows, results, parents)
                    csv.unlink()
        finally:
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "start_postgres.sh"), "stop", pg["SALES_PG_DIR"]], check=False
            )
    print(f"\nend: {subprocess.getoutput('uptime').strip()}")


if __name__ == "__main__":
    main()
