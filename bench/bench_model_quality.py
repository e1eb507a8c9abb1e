"""Model quality on the real export: the leaderboard of settings.ml.models under the default protocol
(held-out split, repeated K-fold CV on the training part), the plain GradientBoosting baseline measured in the
same run, and the seed-protocol report; with `--baseline-rev`, the same training at another git revision on
the same rows in the same run, and each model's CPU seconds and scores against it.

    .venv/bin/python bench/bench_model_quality.py [--csv ../shared/data/sales_data_sample.csv] [--baseline-rev REV]

Builds the warehouse (raw_csv -> clean_parquet -> duckdb_table) in a temp dir from the CSV and reads `sales`
exactly as the `trained_models` asset does (the repeatable sample of at most ml.max_training_rows rows). Each
training (this tree's, then the baseline revision's from `git archive`) runs in its own Python process without
MLflow. CPU seconds are process CPU time (user + system; the machine may be shared, so they are the steady
figure): per model, the sum over its CV folds and its final fit, each measured inside the worker that ran it;
in total, the training process and its (reaped) worker processes. Prints a Markdown report, with the held-out
coverage of the prediction intervals. Target: leak-free champion CV RMSE <= 540 and MAE <= 250.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_CSV = ROOT.parent / "shared" / "data" / "sales_data_sample.csv"
TARGET_RMSE, TARGET_MAE = 540.0, 250.0


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (loky workers are reaped)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cpu_timed(function):
    """`function` with its result's wall seconds replaced by the CPU seconds of the worker that ran it. The
    wrapper is defined in __main__, so loky sends it to the workers by value (cloudpickle)."""

    def wrapper(*args, **kwargs):
        import dataclasses

        started = time.process_time()
        result = function(*args, **kwargs)
        cpu = time.process_time() - started
        if isinstance(result, tuple):  # training._fit_final: (pipeline, seconds)
            return result[0], cpu
        return dataclasses.replace(result, seconds=cpu)  # evaluation.FoldResult

    return wrapper


def train_worker(frame_path: Path, out_path: Path, full_report: bool) -> None:
    """One training on the pickled frame, in this process (run with the source tree on PYTHONPATH)."""
    import pandas as pd

    import sales_assets
    from sales_assets.ml import training
    from sales_assets.settings import Settings

    training.fit_and_score = _cpu_timed(training.fit_and_score)
    training._fit_final = _cpu_timed(training._fit_final)
    frame = pd.read_pickle(frame_path)
    settings = Settings()
    ml = settings.ml
    logged: list[str] = []

    def log(message: str) -> None:
        logged.append(message)
        print(message, file=sys.stderr, flush=True)

    cpu_started, wall_started = _cpu_seconds(), time.perf_counter()
    outcome = training.train_models(frame, settings, log=log)
    train_cpu, train_wall = _cpu_seconds() - cpu_started, time.perf_counter() - wall_started
    # Per model: "(CV <cpu>s of work, fit <cpu>s)" in the training log (the wrapper put CPU seconds there).
    model_cpu = {}
    for message in logged:
        if "s of work, fit " in message:
            name = message.split("] ", 1)[1].split(":", 1)[0]
            work = message.rsplit("(CV ", 1)[1]
            cv_cpu, fit_cpu = float(work.split("s of work")[0]), float(work.split("fit ")[1].rstrip("s)"))
            model_cpu[name] = {"cv_cpu": cv_cpu, "fit_cpu": fit_cpu}
    report = {
        "source": str(Path(sales_assets.__file__).parents[1]),
        "rows": len(frame),
        "rows_train": len(outcome.split.train_index),
        "rows_test": len(outcome.split.test_index),
        "settings": {
            key: getattr(ml, key) for key in ("test_size", "random_state", "cv_folds", "cv_repeats", "n_jobs")
        },
        "train_cpu": train_cpu,
        "train_wall": train_wall,
        "board": [row | model_cpu.get(row["model"], {}) for row in outcome.board.iter_rows(named=True)],
        "champion": outcome.champion,
        "champion_cv": outcome.champion_cv,
        "holdout": outcome.champion_holdout,
        "ineligible": outcome.ineligible,
        "leaky": outcome.leaky,
        "parity": [outcome.champion_parity.max_abs_diff, outcome.champion_parity.rows_checked],
    }
    if full_report:
        report |= extra_reports(outcome, frame, settings)
    out_path.write_text(json.dumps(report, default=float), encoding="utf-8")


def extra_reports(outcome, frame, settings) -> dict:
    """The plain GradientBoosting baseline under the same CV, the seed-protocol report and the intervals."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    from sales_assets.ml.catalogue import preprocessor
    from sales_assets.ml.evaluation import CVResult, cross_validate, seed_protocol_report

    ml = settings.ml
    train_x, train_y = outcome.part("train")
    baseline_pipeline = Pipeline(
        [
            ("preprocess", preprocessor(outcome.spec, scale_numeric=False)),
            ("model", GradientBoostingRegressor(random_state=ml.random_state)),
        ]
    )
    baseline = CVResult(
        "plain GradientBoostingRegressor()",
        "GradientBoostingRegressor",
        cross_validate(
            baseline_pipeline, train_x, train_y, ml.cv_folds, ml.cv_repeats, ml.random_state, ml.n_jobs
        ),
    ).summary()
    seed = seed_protocol_report(
        frame, outcome.spec, settings.analytics.iqr_columns, settings.analytics.iqr_factor, 0.2, 42
    )
    intervals = outcome.intervals
    return {
        "baseline": baseline,
        "seed": {"rows_after_filter": seed["rows_after_filter"], **seed["holdout"]},
        "intervals": None
        if intervals is None
        else {
            "coverage": {str(level): share for level, share in intervals.coverage_holdout.items()},
            "rows_with_band": intervals.holdout_rows_with_band,
        },
    }


def build_frame(csv: Path, frame_path: Path) -> None:
    """The training sample of the warehouse built from `csv`, as the trained_models asset reads it."""
    import dagster as dg

    from sales_assets.ingest.defs import clean_parquet, raw_csv
    from sales_assets.ml.data import read_training_sample
    from sales_assets.resources import build_resources
    from sales_assets.settings import Settings
    from sales_assets.warehouse.defs import duckdb_table

    with tempfile.TemporaryDirectory(prefix="bench-model-quality-") as data_dir:
        resources = build_resources(data_dir=data_dir, raw_csv=csv)
        built = dg.materialize(
            [raw_csv, clean_parquet, duckdb_table],
            resources=resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
        if not built.success:
            raise SystemExit("warehouse build failed")
        ml = Settings().ml
        read_training_sample(
            resources["duckdb_reader"], ml.max_training_rows, ml.random_state
        ).frame.to_pickle(frame_path)


def run_training(source: Path, frame_path: Path, out_path: Path, full_report: bool) -> dict:
    command = [sys.executable, __file__, "--worker", str(frame_path), str(out_path)]
    if full_report:
        command.append("--full-report")
    subprocess.run(command, cwd=source, env={**os.environ, "PYTHONPATH": str(source)}, check=True)
    report = json.loads(out_path.read_text(encoding="utf-8"))
    if Path(report["source"]).resolve() != source.resolve():
        raise SystemExit(f"the worker imported sales_assets from {report['source']}, not {source}")
    return report


def model_cpu(row: dict) -> float:
    return row.get("cv_cpu", float("nan")) + row.get("fit_cpu", float("nan"))


def print_report(csv: Path, now: dict, before: dict | None, baseline_rev: str | None) -> bool:
    settings = now["settings"]
    print(f"# Model quality on {csv.name} ({now['rows']:,} rows)\n")
    print(
        f"Protocol: {now['rows_train']:,} training rows, {now['rows_test']:,} held out (test_size "
        f"{settings['test_size']}, random_state {settings['random_state']}); CV {settings['cv_folds']} folds x "
        f"{settings['cv_repeats']} repeats on the training part. Training of {len(now['board'])} models: "
        f"{now['train_cpu']:,.0f} CPU s, {now['train_wall']:,.0f} s wall ({settings['n_jobs']} worker processes)"
        + (
            f"; at {baseline_rev} in the same run: {before['train_cpu']:,.0f} CPU s, {before['train_wall']:,.0f} s "
            f"wall (CPU ratio {now['train_cpu'] / before['train_cpu']:.2f}).\n"
            if before
            else ".\n"
        )
    )
    old = {row["model"]: row for row in before["board"]} if before else {}
    header = "| model | CV RMSE | CV MAE | CV R2 | CPU s (CV + final fit) |"
    if before:
        header += f" at {baseline_rev}: CV RMSE | CPU s | CPU ratio |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for row in now["board"]:
        line = (
            f"| {row['model']} | {row['rmse_mean']:.1f} ± {row['rmse_std']:.1f} | {row['mae_mean']:.1f} ± "
            f"{row['mae_std']:.1f} | {row['r2_mean']:.3f} | {model_cpu(row):.1f} |"
        )
        if before:
            was = old.get(row["model"])
            if was is None:
                line += " (not trained) | | |"
            else:
                same = (
                    "same"
                    if (was["rmse_mean"], was["mae_mean"]) == (row["rmse_mean"], row["mae_mean"])
                    else (f"{was['rmse_mean']:.1f} ± {was['rmse_std']:.1f}")
                )
                line += f" {same} | {model_cpu(was):.1f} | {model_cpu(row) / model_cpu(was):.2f} |"
        print(line)
    if "baseline" in now:
        baseline = now["baseline"]
        print(
            f"| plain GradientBoostingRegressor() (baseline) | {baseline['rmse_mean']:.1f} ± "
            f"{baseline['rmse_std']:.1f} | {baseline['mae_mean']:.1f} ± {baseline['mae_std']:.1f} | "
            f"{baseline['r2_mean']:.3f} | |" + (" | | |" if before else "")
        )
    print()
    holdout = now["holdout"]
    print(f"Champion: {now['champion']} (ineligible: {now['ineligible'] or 'none'})")
    if before:
        same = before["champion"] == now["champion"] and before["holdout"] == holdout
        print(
            f"- at {baseline_rev}: {before['champion']}, held-out RMSE {before['holdout']['rmse']:.1f} "
            f"({'same champion, same held-out scores' if same else 'CHANGED'})"
        )
    print(f"- held-out: RMSE {holdout['rmse']:.1f}, MAE {holdout['mae']:.1f}, R2 {holdout['r2']:.3f}")
    print(f"- ONNX parity: max abs diff {now['parity'][0]:.5f} on {now['parity'][1]} rows")
    intervals = now.get("intervals")
    if intervals:
        coverage = ", ".join(
            f"{share:.1%} at {float(level):.0%}" for level, share in intervals["coverage"].items()
        )
        print(
            f"- prediction intervals: held-out coverage {coverage} on {intervals['rows_with_band']} rows with a "
            "band (capped rows)"
        )
    champion = now["champion_cv"]
    if "baseline" in now:
        print(
            f"- CV RMSE / baseline: {champion['rmse_mean'] / now['baseline']['rmse_mean']:.3f}; "
            f"CV MAE / baseline: {champion['mae_mean'] / now['baseline']['mae_mean']:.3f}"
        )
    met = champion["rmse_mean"] <= TARGET_RMSE and champion["mae_mean"] <= TARGET_MAE and not now["leaky"]
    print(
        f"- target (leak-free, CV RMSE <= {TARGET_RMSE:.0f}, MAE <= {TARGET_MAE:.0f}): {'met' if met else 'MISSED'}"
    )
    if "seed" in now:
        seed = now["seed"]
        print(
            f"\nSeed protocol (leaky, never champion): {seed['rows_after_filter']:,} IQR-filtered rows, "
            f"GradientBoosting RMSE {seed['rmse']:.1f}, MAE {seed['mae']:.1f}, R2 {seed['r2']:.3f} "
            f"(reference 355.5 ± 25: {'within' if abs(seed['rmse'] - 355.5) <= 25 else 'OUTSIDE'})"
        )
    return met


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        train_worker(Path(sys.argv[2]), Path(sys.argv[3]), "--full-report" in sys.argv[4:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=REAL_CSV)
    parser.add_argument(
        "--baseline-rev",
        metavar="REV",
        help="also train at this git revision on the same rows, after this tree",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-model-quality-") as scratch:
        work = Path(scratch)
        frame_path = work / "frame.pkl"
        build_frame(args.csv.resolve(), frame_path)
        now = run_training(ROOT, frame_path, work / "now.json", full_report=True)
        before = None
        if args.baseline_rev:
            source = work / "baseline_src"
            source.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.baseline_rev], cwd=ROOT, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
            before = run_training(source, frame_path, work / "before.json", full_report=False)
    return 0 if print_report(args.csv, now, before, args.baseline_rev) else 1


if __name__ == "__main__":
    raise SystemExit(main())
