"""What MLflow's safe `skops` format would cost against the `cloudpickle` the project logs: the default
models (settings.ml.models) fitted once on the real export (or the generated sample), each saved and loaded
both ways, the bytes, save and load seconds, and the skops/cloudpickle ratio of each, in the same run.

    .venv/bin/python bench/bench_model_formats.py [--csv ../shared/data/sales_data_sample.csv]

This is the measurement behind `sales_assets.quiet_logs.MLFLOW_PICKLE_REASON`: every training logs each
model to the MLflow store, so the store grows by the total below on every refresh. Prints Markdown.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import skops.io

from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.ml.catalogue import build_pipeline
from sales_assets.ml.features import build_feature_matrix, feature_spec
from sales_assets.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REAL_CSV = ROOT.parent / "shared" / "data" / "sales_data_sample.csv"


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=REAL_CSV if REAL_CSV.exists() else None)
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as work:
        source = args.csv or Path(work) / "sample.csv"
        if args.csv is None:
            generate_sales_csv(source)
        frame = pd.read_csv(source, encoding="latin-1")
    features, target = build_feature_matrix(frame, feature_spec(settings.ml))
    print(f"{len(features):,} rows of {Path(source).name}; models: {', '.join(settings.ml.models)}\n")
    print("| model | cloudpickle MB | skops MB | size ratio | save s (cp / skops) | load s (cp / skops) |")
    print("|---|---:|---:|---:|---:|---:|")
    totals = np.zeros(6)
    for name in settings.ml.models:
        pipeline = build_pipeline(name, feature_spec(settings.ml), settings).fit(features, target)
        pickled, pickle_save = timed(cloudpickle.dumps, pipeline)
        _, pickle_load = timed(pickle.loads, pickled)
        safe, skops_save = timed(skops.io.dumps, pipeline)
        loaded, skops_load = timed(skops.io.loads, safe, trusted=skops.io.get_untrusted_types(data=safe))
        assert np.allclose(loaded.predict(features), pipeline.predict(features))
        row = np.array([len(pickled), len(safe), pickle_save, skops_save, pickle_load, skops_load])
        totals += row
        print(
            f"| {name} | {row[0] / 1e6:.2f} | {row[1] / 1e6:.2f} | {row[1] / row[0]:.1f}x | "
            f"{row[2]:.2f} / {row[3]:.2f} | {row[4]:.2f} / {row[5]:.2f} |"
        )
    print(
        f"| **all** | {totals[0] / 1e6:.1f} | {totals[1] / 1e6:.1f} | {totals[1] / totals[0]:.1f}x | "
        f"{totals[2]:.2f} / {totals[3]:.2f} | {totals[4]:.2f} / {totals[5]:.2f} |"
    )


if __name__ == "__main__":
    main()
