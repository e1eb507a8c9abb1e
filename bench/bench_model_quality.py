"""Model quality on the real export: the leaderboard of settings.ml.models under the default protocol
(held-out split, repeated K-fold CV on the training part), the plain GradientBoosting baseline measured in the
same run, and the seed-protocol report. Target: leak-free champion CV RMSE <= 540 and MAE <= 250.

    .venv/bin/python bench/bench_model_quality.py [--csv ../shared/data/sales_data_sample.csv]

Builds the warehouse (raw_csv -> clean_parquet -> duckdb_table) in a temp dir from the CSV, reads `sales`
exactly as the `trained_models` asset does (the repeatable sample of at most ml.max_training_rows rows), and
trains without MLflow. Prints a Markdown report, with the held-out coverage of the prediction intervals.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import Pipeline

from sales_assets.ingest.defs import clean_parquet, raw_csv
from sales_assets.ml.catalogue import preprocessor
from sales_assets.ml.data import read_training_sample
from sales_assets.ml.evaluation import CVResult, cross_validate, seed_protocol_report
from sales_assets.ml.training import train_models
from sales_assets.resources import build_resources
from sales_assets.settings import Settings
from sales_assets.warehouse.defs import duckdb_table

REAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "sales_data_sample.csv"
TARGET_RMSE, TARGET_MAE = 540.0, 250.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=REAL_CSV)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-model-quality-") as data_dir:
        resources = build_resources(data_dir=data_dir, raw_csv=args.csv)
        built = dg.materialize(
            [raw_csv, clean_parquet, duckdb_table],
            resources=resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
        if not built.success:
            raise SystemExit("warehouse build failed")
        settings = Settings()
        ml = settings.ml
        frame = read_training_sample(resources["duckdb_reader"], ml.max_training_rows, ml.random_state).frame
    started = time.perf_counter()
    outcome = train_models(frame, settings, log=lambda message: print(message, file=sys.stderr, flush=True))
    train_seconds = time.perf_counter() - started

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

    champion = outcome.champion_cv
    print(f"# Model quality on {args.csv.name} ({len(frame):,} rows)\n")
    print(
        f"Protocol: {len(outcome.split.train_index):,} training rows, {len(outcome.split.test_index):,} held out "
        f"(test_size {ml.test_size}, random_state {ml.random_state}); CV {ml.cv_folds} folds x {ml.cv_repeats} "
        f"repeats on the training part. Training of {len(ml.models)} models took {train_seconds:,.0f} s "
        f"({ml.n_jobs} worker processes).\n"
    )
    print("| model | CV RMSE | CV MAE | CV R2 | fit s |\n| --- | --- | --- | --- | --- |")
    for row in outcome.board.iter_rows(named=True):
        print(
            f"| {row['model']} | {row['rmse_mean']:.1f} ± {row['rmse_std']:.1f} | {row['mae_mean']:.1f} ± "
            f"{row['mae_std']:.1f} | {row['r2_mean']:.3f} | {row['fit_seconds']:.2f} |"
        )
    print(
        f"| plain GradientBoostingRegressor() (baseline) | {baseline['rmse_mean']:.1f} ± {baseline['rmse_std']:.1f} "
        f"| {baseline['mae_mean']:.1f} ± {baseline['mae_std']:.1f} | {baseline['r2_mean']:.3f} | |\n"
    )
    holdout = outcome.champion_holdout
    print(f"Champion: {outcome.champion} (ineligible: {outcome.ineligible or 'none'})")
    print(f"- held-out: RMSE {holdout['rmse']:.1f}, MAE {holdout['mae']:.1f}, R2 {holdout['r2']:.3f}")
    print(
        f"- ONNX parity: max abs diff {outcome.champion_parity.max_abs_diff:.5f} on "
        f"{outcome.champion_parity.rows_checked} rows"
    )
    if outcome.intervals is not None:
        coverage = ", ".join(
            f"{share:.1%} at {level:.0%}" for level, share in outcome.intervals.coverage_holdout.items()
        )
        print(
            f"- prediction intervals: held-out coverage {coverage} on "
            f"{outcome.intervals.holdout_rows_with_band} rows with a band (capped rows)"
        )
    print(
        f"- CV RMSE / baseline: {champion['rmse_mean'] / baseline['rmse_mean']:.3f}; "
        f"CV MAE / baseline: {champion['mae_mean'] / baseline['mae_mean']:.3f}"
    )
    met = champion["rmse_mean"] <= TARGET_RMSE and champion["mae_mean"] <= TARGET_MAE and not outcome.leaky
    print(
        f"- target (leak-free, CV RMSE <= {TARGET_RMSE:.0f}, MAE <= {TARGET_MAE:.0f}): {'met' if met else 'MISSED'}"
    )
    seed_scores = seed["holdout"]
    print(
        f"\nSeed protocol (leaky, never champion): {seed['rows_after_filter']:,} IQR-filtered rows, "
        f"GradientBoosting RMSE {seed_scores['rmse']:.1f}, MAE {seed_scores['mae']:.1f}, R2 {seed_scores['r2']:.3f} "
        f"(reference 355.5 ± 25: {'within' if abs(seed_scores['rmse'] - 355.5) <= 25 else 'OUTSIDE'})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
