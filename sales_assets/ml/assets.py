"""The ML assets: `trained_models` (training, MLflow, leakage check), `shap_importance` and `onnx_model`
(the published bundle, behind a blocking parity check). Thin wiring around the pure modules of this group."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from sales_assets.io import write_json_atomic
from sales_assets.metadata import markdown_table, timed
from sales_assets.ml.bundle import bundle_metadata, bundle_version, write_bundle
from sales_assets.ml.candidate import (
    HOLDOUT_FILE,
    SHAP_SAMPLE_FILE,
    load_candidate,
    read_frame,
    spec_of,
    write_candidate,
)
from sales_assets.ml.catalogue import MODEL_CATALOGUE
from sales_assets.ml.data import frame_sha256, read_sales
from sales_assets.ml.evaluation import seed_protocol_report
from sales_assets.ml.explain import shap_global_importance
from sales_assets.ml.onnx_export import check_parity, export_onnx
from sales_assets.ml.plots import holdout_plot, importance_plot, leaderboard_plot
from sales_assets.ml.report import candidate_card, metrics_payload
from sales_assets.ml.tracking import track_training
from sales_assets.ml.training import train_models
from sales_assets.resources import FILE_LOCK_RETRY, SalesSettingsResource

GROUP = "ml"
LEAKAGE_CHECK = "no_target_leakage"
ONNX_PARITY_CHECK = "onnx_parity"
METRICS_FILE = "sales_regression_metrics.json"
SHAP_FILE = "shap_global_importance.json"


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
    candidate = candidate_card(outcome, payload)
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
    rows = read_frame(directory / SHAP_SAMPLE_FILE, spec)
    with timed(context.log, f"SHAP for {candidate['model']}") as shap_time:
        ranked, explainer = shap_global_importance(
            pipeline, spec, rows, MODEL_CATALOGUE[candidate["model"]].tree_based, settings.ml.random_state
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
    return dg.MaterializeResult(
        metadata={
            "model": candidate["model"],
            "explainer": explainer,
            "rows": len(rows),
            "top_feature": ranked["feature"][0],
            "importance": dg.MetadataValue.md(markdown_table(ranked, max_rows=50)),
            "importance_plot": importance_plot(
                ranked,
                f"{candidate['model']}: global importance ({explainer})",
                settings.explainability_dir / "shap_global_importance.png",
            ),
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
    holdout = read_frame(directory / HOLDOUT_FILE, spec)
    with timed(context.log, "ONNX export and parity") as export_time:
        onnx_bytes = export_onnx(pipeline, spec)
        parity = check_parity(pipeline, onnx_bytes, holdout[spec.columns], spec, settings.ml.onnx_tolerance)
    context.log.info(
        f"parity on {parity.rows_checked:,} held-out rows: max abs diff {parity.max_abs_diff:.6f} "
        f"(tolerance {parity.tolerance}), {parity.rows_outside} outside"
    )
    version = bundle_version(context.run_id)
    metadata = bundle_metadata(
        settings.ml.registered_model_name, version, candidate, spec, onnx_bytes, parity
    )
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
