"""CPU and forecast quality of the segment reports on the real file: today's code against a baseline
revision (by default the single-origin protocol before issue 26), in the same run.

    .venv/bin/python bench/bench_timeseries.py
    .venv/bin/python bench/bench_timeseries.py --csv ../shared/data/sales_data_sample.csv --baseline 1a32ab3 \
        --baseline 732ee09

Loads the CSV into an in-memory DuckDB `sales` table, then in a fresh process per code version builds
and writes (JSON and PNG) the report of every catalogue segment (`ALL`, the product lines, the
PRODUCTLINE x COUNTRY pairs with `segment_min_months` active months) and the hierarchy of the `ALL`
partition, as `ts_risk_reports` does, and prints that process's CPU seconds (its own clock, every thread;
the imports excluded). `--baseline` may be given more than once. For today's code (and a baseline with
several evaluation origins) it also prints, per segment, each candidate's mean RMSE over
the evaluation origins and the shipped rule's (each origin's choice made on months before it), their
geometric mean against seasonal naive over segments, and the pooled interval coverage. `--variant
NAME=JSON` adds a run of today's code with `timeseries` settings overridden (e.g. without SARIMA:
`--variant no_sarima='{"sarima_candidates": []}'`). On a shared machine read the CPU seconds, not wall.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "sales_data_sample.csv"
# The last revision with one evaluation origin and per-segment interval calibration (issue 26's "before").
DEFAULT_BASELINE = "1a32ab3"

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import duckdb, pandas as pd

csv, overrides = sys.argv[1], json.loads(sys.argv[2])
from sales_assets.settings import TimeseriesSettings
from sales_assets.timeseries.hierarchy import hierarchy_report
from sales_assets.timeseries.reads import SegmentCatalogue, load_segment_series
from sales_assets.timeseries.report import build_report, write_report
try:  # today's code: backtest every segment once, pool their scaled errors for the intervals
    from sales_assets.timeseries.report import interval_pool, segment_backtest
except ImportError:  # the baseline: each report on its own
    segment_backtest = None
from sales_assets.timeseries.series import ALL, Segment

# The file is DOS code page 850 (shared/data/README.md); only the columns the reports read.
frame = pd.read_csv(csv, encoding="cp850", usecols=["ORDERDATE", "SALES", "PRODUCTLINE", "COUNTRY"])
frame["ORDERDATE"] = pd.to_datetime(frame["ORDERDATE"], format="%m/%d/%Y %H:%M")
connection = duckdb.connect()
connection.register("frame", frame)
connection.execute("CREATE TABLE sales AS SELECT * FROM frame")
config = TimeseriesSettings(**(TimeseriesSettings().model_dump() | overrides))
catalogue = SegmentCatalogue.scan(connection, config.segment_min_months)
series = {key: load_segment_series(connection, Segment.from_key(key), catalogue.window) for key in catalogue.partition_keys}
out = Path(tempfile.mkdtemp())
started = time.process_time()
reports, lines = {}, {line: series[line] for line in catalogue.product_lines}
if segment_backtest is None:
    for key, one in series.items():
        reports[key] = write_report(build_report(Segment.from_key(key), one, config), out).report
    hierarchy = hierarchy_report(reports[ALL], lines, config)
else:
    backtests = {key: segment_backtest(Segment.from_key(key), one, config) for key, one in series.items()}
    pool = interval_pool(backtests.values())
    for key, one in series.items():
        report = build_report(Segment.from_key(key), one, config, backtests[key], pool)
        reports[key] = write_report(report, out).report
    hierarchy = hierarchy_report(reports[ALL], lines, config, backtests, pool)
cpu = time.process_time() - started
print(json.dumps({
    "cpu_seconds": cpu,
    "segments": {key: json.loads(r.model_dump_json()) for key, r in reports.items()},
    "hierarchy": json.loads(hierarchy.model_dump_json()),
}))
"""


def baseline_tree(revision: str, workdir: Path) -> Path:
    """The package tree of `revision` (git archive), to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "sales_assets", "sales_serving"],
        check=True,
        capture_output=True,
    ).stdout
    target = workdir / revision
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def run(tree: Path, csv: Path, overrides: dict) -> dict:
    env = os.environ | {"PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(csv.resolve()), json.dumps(overrides)],
        env=env,
        # `python -c` puts the working directory first on sys.path: run where no package tree is.
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{tree}: the report run failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pooled_coverage(reports: dict) -> dict[int, float]:
    """Coverage per level over every ok segment's evaluation points."""
    hits: dict[int, float] = {}
    points: dict[int, int] = {}
    for report in reports.values():
        for coverage in (report.get("forecast") or {}).get("coverage", []):
            level = coverage["level"]
            hits[level] = hits.get(level, 0.0) + coverage["coverage"] * coverage["points"]
            points[level] = points.get(level, 0) + coverage["points"]
    return {level: hits[level] / points[level] for level in hits}


def quality_table(reports: dict) -> None:
    """Per segment: each candidate's mean RMSE over the evaluation origins and the rule's; the geometric
    mean of each against seasonal naive over the segments where both exist."""
    rows = {key: r for key, r in reports.items() if r["status"] == "ok"}
    models = list(dict.fromkeys(c["model"] for r in rows.values() for c in r["backtest"]["candidates"]))
    columns = ["shipped rule", *models]
    print("| segment | " + " | ".join(columns) + " | ships |")
    print("|---" * (len(columns) + 2) + "|")
    ratios: dict[str, list[float]] = {column: [] for column in columns}
    for key, report in rows.items():
        evaluation = report["decision"]["evaluation"]
        naive = evaluation["seasonal_naive_mean_rmse"]
        by_model = {c["model"]: c.get("evaluation_mean_rmse") for c in report["backtest"]["candidates"]}
        values = {"shipped rule": evaluation["mean_rmse"], **by_model}
        for column in columns:
            if values.get(column) is not None and naive:
                ratios[column].append(values[column] / naive)
        cells = [f"{values[c]:,.0f}" if values.get(c) is not None else "-" for c in columns]
        print(f"| {key} | " + " | ".join(cells) + f" | {report['decision']['shipped_model']} |")
    geometric = [f"{float(np.exp(np.mean(np.log(ratios[c])))):.3f}" if ratios[c] else "-" for c in columns]
    print("| geometric mean vs seasonal naive | " + " | ".join(geometric) + " | |")
    origins = {len(r["decision"]["evaluation"]["origins"]) for r in rows.values()}
    print(f"evaluation origins per segment: {sorted(origins)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument(
        "--baseline",
        action="append",
        help=f"git revision to compare with (repeatable; default {DEFAULT_BASELINE})",
    )
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON of timeseries overrides")
    args = parser.parse_args()
    if not args.csv.is_file():
        raise SystemExit(f"{args.csv}: no such file (the real file lives in ../shared/data)")
    baselines = args.baseline or [DEFAULT_BASELINE]
    with tempfile.TemporaryDirectory() as workdir:
        runs = {f"baseline {b}": (baseline_tree(b, Path(workdir)), {}) for b in baselines}
        runs["today"] = (ROOT, {})
        for variant in args.variant:
            name, _, overrides = variant.partition("=")
            runs[f"today, {name}"] = (ROOT, json.loads(overrides))
        results = {name: run(tree, args.csv, overrides) for name, (tree, overrides) in runs.items()}
    for name, result in results.items():
        coverage = ", ".join(
            f"{level}%: {share:.3f}" for level, share in pooled_coverage(result["segments"]).items()
        )
        print(f"\n## {name}: {result['cpu_seconds']:.1f} CPU-s for {len(result['segments'])} segments and the "
              f"hierarchy; pooled coverage {coverage}")  # fmt: skip
        ok = [r for r in result["segments"].values() if r["status"] == "ok"]
        if all("evaluation" in r["decision"] for r in ok):
            quality_table(result["segments"])
        else:
            for key, report in result["segments"].items():
                decision = report.get("decision") or {}
                score = decision.get("reported_score") or {}
                print(f"- {key}: ships {decision.get('shipped_model')}, RMSE {score.get('rmse', float('nan')):,.0f} "
                      f"on {score.get('points')} points")  # fmt: skip
    base = results[f"baseline {baselines[0]}"]["cpu_seconds"]
    for name, result in results.items():
        print(f"CPU ratio {name} / baseline {baselines[0]}: {result['cpu_seconds'] / base:.2f}")


if __name__ == "__main__":
    main()
