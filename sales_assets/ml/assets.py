"""The ML assets: `trained_models` (training, MLflow, leakage check), `shap_importance` and `onnx_model`
(the published bundle, behind a blocking parity check). Thin wiring around the pure modules of this group."""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import joblib
import numpy as np
import pandas as pd
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.io import staged_directory, write_json_atomic
from sales_assets.metadata import markdown_table, pyplot, save_figure, timed
from sales_assets.ml.bundle import bundle_version, library_versions, write_bundle
from sales_assets.ml.evaluation import seed_protocol_report
from sales_assets.ml.explain import shap_global_importance
from sales_assets.ml.features import FeatureSpec
from sales_assets.ml.models import MODEL_REGISTRY
from sales_assets.ml.onnx_export import check_parity, export_onnx, onnx_input_types, onnx_output_name
from sales_assets.ml.registry import track_training
from sales_assets.ml.training import TrainingOutcome, train_models
from sales_assets.resources import FILE_LOCK_RETRY, SalesSettingsResource
from sales_assets.settings import Settings

GROUP = "ml"
LEAKAGE_CHECK = "no_target_leakage"
ONNX_PARITY_CHECK = "onnx_parity"
METRICS_FILE = "sales_regression_metrics.json"
SHAP_FILE = "shap_global_importance.json"
CANDIDATE_METADATA = "candidate.json"


def read_sales(duckdb_reader: DuckDBResource) -> pd.DataFrame:
    # A fixed row order makes the split, and so every score, reproducible.
    with duckdb_reader.get_connection() as conn:
        return conn.sql("SELECT * FROM sales ORDER BY ORDERNUMBER, ORDERLINENUMBER, PRODUCTCODE").df()


def frame_sha256(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def feature_records(spec: FeatureSpec, features: pd.DataFrame) -> list[dict]:
    numeric = [{"name": name, "kind": "numeric", "dtype": "float64"} for name in spec.numeric]
    categorical = [
        {
            "name": name,
            "kind": "categorical",
            "dtype": "string",
            "allowed_categories": sorted(features[name].astype(str).unique().tolist()),
        }
        for name in spec.categorical
    ]
    return numeric + categorical


def leaderboard_plot(board: pl.DataFrame, path: Path) -> dg.MetadataValue:
    fig, axis = pyplot().subplots(figsize=(8, 0.45 * board.height + 1.5))
    ordered = board.reverse()
    axis.barh(ordered["model"].to_list(), ordered["rmse_mean"].to_list(), xerr=ordered["rmse_std"].to_list())
    axis.set_xlabel("CV RMSE (mean ± sd)")
    axis.set_title("Leaderboard")
    return save_figure(fig, path)


def holdout_plot(y_true: np.ndarray, y_pred: np.ndarray, title: str, path: Path) -> dg.MetadataValue:
    fig, axis = pyplot().subplots(figsize=(6, 6))
    axis.scatter(y_true, y_pred, s=8, alpha=0.5)
    limit = float(max(y_true.max(), y_pred.max()))
    axis.plot([0, limit], [0, limit], color="grey", linewidth=1)
    axis.set_xlabel("actual SALES")
    axis.set_ylabel("predicted SALES")
    axis.set_title(title)
    return save_figure(fig, path)


def metrics_payload(
    outcome: TrainingOutcome,
    settings: Settings,
    seed_report: dict,
    lineage: dict,
    run_id: str,
    data_sha256: str,
) -> dict:
    by_model = {result.model: result for result in outcome.results}
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "target": outcome.spec.target,
        "features": outcome.spec.columns,
        "leaky": outcome.leaky,
        "leaky_features": outcome.leaky_features,
        "protocol": {
            "rows": len(outcome.features),
            "rows_train": len(outcome.split.train_index),
            "rows_test": len(outcome.split.test_index),
            "test_size": settings.ml.test_size,
            "random_state": settings.ml.random_state,
            "cv_folds": settings.ml.cv_folds,
            "cv_repeats": settings.ml.cv_repeats,
            "champion_rule": "lowest CV RMSE among models whose ONNX export passes parity",
        },
        "models": [
            {
                "model": row["model"],
                "estimator": row["estimator"],
                "cv": by_model[row["model"]].summary(),
                "cv_folds": by_model[row["model"]].fold_scores,
                "fit_seconds": row["fit_seconds"],
                "eligible": row["model"] not in outcome.ineligible,
                "ineligible_reason": outcome.ineligible.get(row["model"]),
            }
            for row in outcome.board.iter_rows(named=True)
        ],
        "champion": {
            "model": outcome.champion,
            "estimator": by_model[outcome.champion].estimator,
            "cv": outcome.champion_cv,
            "holdout": outcome.champion_holdout,
            "onnx_parity": outcome.champion_parity.as_dict(),
        },
        "seed_protocol": seed_report,
        "leakage": outcome.leakage.to_dicts(),
        "promotion": lineage["promotion"],
        "lineage": {
            "dagster_run_id": run_id,
            "mlflow_run_id": lineage["mlflow_run_id"],
            "mlflow_model_version": lineage["mlflow_model_version"],
            "data_sha256": data_sha256,
        },
    }


def write_candidate(settings: Settings, outcome: TrainingOutcome, candidate: dict) -> Path:
    """The champion pipeline, its draft model card, its held-out rows and a SHAP sample, swapped in whole."""
    target = settings.model_candidate_dir
    train_x, _ = outcome.part("train")
    test_x, test_y = outcome.part("test")
    shap_rows = train_x.sample(
        n=min(settings.ml.shap_rows, len(train_x)), random_state=settings.ml.random_state
    )
    with staged_directory(target) as staging:
        joblib.dump(outcome.champion_pipeline, staging / "pipeline.joblib")
        test_x.assign(**{outcome.spec.target: test_y}).to_parquet(staging / "holdout.parquet", index=False)
        shap_rows.reset_index(drop=True).to_parquet(staging / "shap_sample.parquet", index=False)
        (staging / CANDIDATE_METADATA).write_text(
            json.dumps(candidate, indent=2, default=str), encoding="utf-8"
        )
    return target


def load_candidate(settings: Settings) -> tuple[dict, object, Path]:
    directory = settings.model_candidate_dir
    card = directory / CANDIDATE_METADATA
    if not card.is_file():
        raise FileNotFoundError(f"{card}: no trained champion; materialise trained_models first")
    return json.loads(card.read_text(encoding="utf-8")), joblib.load(directory / "pipeline.joblib"), directory


def spec_of(candidate: dict) -> FeatureSpec:
    features = candidate["features"]
    return FeatureSpec(
        target=candidate["target"],
        numeric=tuple(f["name"] for f in features if f["kind"] == "numeric"),
        categorical=tuple(f["name"] for f in features if f["kind"] == "categorical"),
    )


def read_frame(path: Path, spec: FeatureSpec) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    for name in spec.categorical:
        frame[name] = frame[name].astype(str).astype(object)
    return frame


@dg.asset(
    group_name=GROUP,
    kinds={"scikitlearn", "mlflow", "duckdb"},
    deps=["duckdb_table"],
    retry_policy=FILE_LOCK_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            LEAKAGE_CHECK,
            asset="trained_models",
            description="No model input is a known target-derived column (DEALSIZE) or a near-deterministic "
            "function of the target or of its bins.",
        )
    ],
)
def trained_models(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """Every regressor of settings.ml.models, trained on the `sales` table to predict order-line SALES:
    repeated K-fold CV on the training part, the champion (best CV RMSE that exports to ONNX) scored once on
    the held-out split, the seed-protocol report (leaky, for comparison), all tracked in MLflow with the
    champion registered. Writes output/metrics/sales_regression_metrics.json and the champion candidate."""
    settings = sales_settings.get()
    frame = read_sales(duckdb_reader)
    data_sha256 = frame_sha256(frame)
    context.log.info(f"read {len(frame):,} rows from the sales table (sha256 {data_sha256[:12]})")
    with timed(context.log, "training") as training_time:
        outcome = train_models(frame, settings, context.log.info)
    seed_report = seed_protocol_report(
        frame,
        outcome.spec,
        settings.analytics.iqr_columns,
        settings.analytics.iqr_factor,
        settings.ml.test_size,
        settings.ml.random_state,
    )
    with timed(context.log, "MLflow tracking") as tracking_time:
        lineage = track_training(
            settings, outcome, seed_report, context.run_id, data_sha256, context.log.info
        )
    payload = metrics_payload(outcome, settings, seed_report, lineage, context.run_id, data_sha256)
    metrics_path = write_json_atomic(settings.metrics_dir / METRICS_FILE, payload)
    candidate = {
        "target": outcome.spec.target,
        "estimator": payload["champion"]["estimator"],
        "model": outcome.champion,
        "leaky": outcome.leaky,
        "leaky_features": outcome.leaky_features,
        "request_fields": outcome.spec.request_fields,
        "derived_features": outcome.spec.derived,
        "features": feature_records(outcome.spec, outcome.features),
        "metrics": {"cv": outcome.champion_cv, "holdout": outcome.champion_holdout},
        "lineage": payload["lineage"],
    }
    write_candidate(settings, outcome, candidate)

    test_x, test_y = outcome.part("test")
    leaky = outcome.leaky_features
    champion_cv = outcome.champion_cv
    return dg.MaterializeResult(
        metadata={
            "leaderboard": dg.MetadataValue.md(markdown_table(outcome.board.drop("estimator"), max_rows=50)),
            "leaderboard_plot": leaderboard_plot(outcome.board, settings.plots_dir / "ml_leaderboard.png"),
            "champion": outcome.champion,
            "champion_cv_rmse": champion_cv["rmse_mean"],
            "champion_cv_rmse_std": champion_cv["rmse_std"],
            "champion_cv_mae": champion_cv["mae_mean"],
            "champion_cv_r2": champion_cv["r2_mean"],
            "champion_holdout_rmse": outcome.champion_holdout["rmse"],
            "champion_holdout_mae": outcome.champion_holdout["mae"],
            "champion_holdout_r2": outcome.champion_holdout["r2"],
            "champion_holdout_plot": holdout_plot(
                test_y,
                outcome.champion_pipeline.predict(test_x),
                f"{outcome.champion}: held-out rows",
                settings.plots_dir / "ml_champion_holdout.png",
            ),
            "ineligible_models": dg.MetadataValue.json(outcome.ineligible),
            "seed_protocol_leaky_not_eligible": dg.MetadataValue.json(
                {"rows": seed_report["rows_after_filter"], **seed_report["holdout"]}
            ),
            "leaky": outcome.leaky,
            "promotion": dg.MetadataValue.json(lineage["promotion"]),
            "mlflow_run_id": lineage["mlflow_run_id"],
            "mlflow_model_version": lineage["mlflow_model_version"],
            "mlflow_tracking_uri": settings.mlflow_tracking_uri,
            "rows_train": len(outcome.split.train_index),
            "rows_test": len(outcome.split.test_index),
            "data_sha256": data_sha256,
            "metrics_path": dg.MetadataValue.path(str(metrics_path)),
            "training_seconds": training_time["seconds"],
            "tracking_seconds": tracking_time["seconds"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=LEAKAGE_CHECK,
                passed=not leaky,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "leaky_features": dg.MetadataValue.json(leaky),
                    "threshold": settings.ml.leakage_r2_threshold,
                    "report": dg.MetadataValue.md(
                        markdown_table(outcome.leakage, max_rows=50, float_digits=3)
                    ),
                },
                description="model card says leaky" if leaky else "no input leaks the target",
            )
        ],
    )


@dg.asset(group_name=GROUP, kinds={"shap"}, deps=["trained_models"])
def shap_importance(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource
) -> dg.MaterializeResult:
    """Global SHAP importance of the champion on up to settings.ml.shap_rows training rows, one-hot columns
    collapsed to their feature and ranked; written to output/explainability/shap_global_importance.json."""
    settings = sales_settings.get()
    candidate, pipeline, directory = load_candidate(settings)
    spec = spec_of(candidate)
    rows = read_frame(directory / "shap_sample.parquet", spec)
    with timed(context.log, f"SHAP for {candidate['model']}") as shap_time:
        ranked, explainer = shap_global_importance(
            pipeline, spec, rows, MODEL_REGISTRY[candidate["model"]].tree_based, settings.ml.random_state
        )
    path = write_json_atomic(
        settings.explainability_dir / SHAP_FILE,
        {
            "model": candidate["model"],
            "estimator": candidate["estimator"],
            "explainer": explainer,
            "rows": len(rows),
            "mlflow_model_version": candidate["lineage"]["mlflow_model_version"],
            "importance": ranked.to_dicts(),
        },
    )
    fig, axis = pyplot().subplots(figsize=(7, 0.4 * ranked.height + 1.5))
    ordered = ranked.reverse()
    axis.barh(ordered["feature"].to_list(), ordered["mean_abs_shap"].to_list())
    axis.set_xlabel("mean |SHAP| (SALES)")
    axis.set_title(f"{candidate['model']}: global importance ({explainer})")
    return dg.MaterializeResult(
        metadata={
            "model": candidate["model"],
            "explainer": explainer,
            "rows": len(rows),
            "top_feature": ranked["feature"][0],
            "importance": dg.MetadataValue.md(markdown_table(ranked, max_rows=50)),
            "importance_plot": save_figure(fig, settings.explainability_dir / "shap_global_importance.png"),
            "path": dg.MetadataValue.path(str(path)),
            "seconds": shap_time["seconds"],
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"onnx"},
    deps=["trained_models"],
    check_specs=[
        dg.AssetCheckSpec(
            ONNX_PARITY_CHECK,
            asset="onnx_model",
            blocking=True,
            description="onnxruntime matches the joblib pipeline on every held-out row within the tolerance.",
        )
    ],
)
def onnx_model(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource
) -> dg.MaterializeResult:
    """The champion pipeline, preprocessing included, exported to ONNX and checked against the joblib
    pipeline on every held-out row; when parity holds it is published as a new model bundle
    (models/sales_regressor/<version>/) and CURRENT moves to it. On a parity failure nothing is published."""
    settings = sales_settings.get()
    candidate, pipeline, directory = load_candidate(settings)
    spec = spec_of(candidate)
    holdout = read_frame(directory / "holdout.parquet", spec)
    with timed(context.log, "ONNX export and parity") as export_time:
        onnx_bytes = export_onnx(pipeline, spec)
        parity = check_parity(pipeline, onnx_bytes, holdout[spec.columns], spec, settings.ml.onnx_tolerance)
    context.log.info(
        f"parity on {parity.rows_checked:,} held-out rows: max abs diff {parity.max_abs_diff:.6f} "
        f"(tolerance {parity.tolerance}), {parity.rows_outside} outside"
    )
    version = bundle_version(context.run_id)
    metadata = {
        "schema_version": 1,
        "model_name": settings.ml.registered_model_name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": candidate["target"],
        "estimator": candidate["estimator"],
        "model": candidate["model"],
        "leaky": candidate["leaky"],
        "leaky_features": candidate["leaky_features"],
        "request_fields": candidate["request_fields"],
        "derived_features": candidate["derived_features"],
        "features": candidate["features"],
        "onnx": {
            "file": "model.onnx",
            "inputs": onnx_input_types(spec),
            "output": onnx_output_name(onnx_bytes),
            "parity_passed": parity.passed,
            "max_abs_diff": parity.max_abs_diff,
            "tolerance": parity.tolerance,
            "rows_checked": parity.rows_checked,
        },
        "metrics": candidate["metrics"],
        "lineage": candidate["lineage"],
        "library_versions": library_versions(),
    }
    result_metadata: dict = {
        "model": candidate["model"],
        "onnx_bytes": len(onnx_bytes),
        "max_abs_diff": parity.max_abs_diff,
        "rows_checked": parity.rows_checked,
        "seconds": export_time["seconds"],
    }
    if parity.passed:
        bundle = write_bundle(settings.models_dir, version, pipeline, onnx_bytes, metadata)
        context.log.info(f"published bundle {bundle}")
        result_metadata |= {"version": version, "bundle": dg.MetadataValue.path(str(bundle))}
    else:
        context.log.error("ONNX parity failed: the bundle is not published and CURRENT stays where it was")
    return dg.MaterializeResult(
        metadata=result_metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=ONNX_PARITY_CHECK,
                passed=parity.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=parity.as_dict(),
            )
        ],
    )
