"""The ML assets: `trained_models` (training, MLflow, leakage check), `shap_importance` and `onnx_model`
(a bundle per candidate, behind a blocking parity check; CURRENT moves only through the serving gate).
Thin wiring around the pure modules of this group, which are imported when an asset runs so that loading
the code location imports no ML library."""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from sales_assets.io import scratch_directory, write_json_atomic
from sales_assets.metadata import leaderboard_link, number_metadata, path_metadata, table_metadata, timed
from sales_assets.ml.publication import PUBLICATION_POOL
from sales_assets.ml.report_model import METRICS_FILE, SHAP_FILE, FeatureImportance, ShapReport
from sales_assets.resources import SalesSettingsResource
from sales_serving.contract.formatting import Quantity

GROUP = "ml"
LEAKAGE_CHECK = "no_target_leakage"
ONNX_PARITY_CHECK = "onnx_parity"
# The leaderboard's columns in the UI (short names so the table fits the metadata column).
LEADERBOARD_COLUMNS = {
    "rmse": "rmse_mean: CV RMSE of SALES, mean over folds, USD",
    "mae": "mae_mean: CV MAE of SALES, mean over folds, USD",
    "r2": "r2_mean: CV R², mean over folds",
}


def leaderboard_metadata(board: pl.DataFrame) -> dg.MetadataValue:
    """The CV leaderboard (`evaluation.leaderboard`) narrowed to fit the UI's metadata column at 1600 px:
    model, RMSE and MAE in USD to the cent, R² to 3 decimals (`table_metadata`); the spreads over folds and
    fit times stay in MLflow and the metrics file."""
    view = board.select(
        "model",
        pl.col("rmse_mean").alias("rmse"),
        pl.col("mae_mean").alias("mae"),
        pl.col("r2_mean").alias("r2"),
    )
    return table_metadata(view, max_rows=view.height, descriptions=LEADERBOARD_COLUMNS)


@dg.asset(
    group_name=GROUP,
    kinds={"scikitlearn", "mlflow", "duckdb"},
    deps=["duckdb_table"],
    pool=PUBLICATION_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            LEAKAGE_CHECK,
            asset="trained_models",
            description="No model input is a known target-derived column (DEALSIZE), a near-deterministic "
            "function of the target or of its bins, or rebuilds the target as a product or ratio with "
            "QUANTITYORDERED or PRICEEACH.",
        )
    ],
)
def trained_models(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource, duckdb_reader: DuckDBResource
) -> dg.MaterializeResult:
    """Every regressor of settings.ml.models, trained on a repeatable sample (at most
    settings.ml.max_training_rows rows) of the `sales` table to predict order-line SALES: repeated K-fold CV
    on the training part (folds in parallel), the champion (best CV RMSE that exports to ONNX) scored once
    on the held-out split with 80% and 95% prediction intervals, the seed-protocol report (leaky, for
    comparison) on the same sample, all tracked in MLflow with the champion registered. Writes
    output/metrics/sales_regression_metrics.json and the champion candidate."""
    from sales_assets.ml.candidate import write_candidate
    from sales_assets.ml.data import data_lineage, exports_lineage, read_training_sample
    from sales_assets.ml.evaluation import seed_protocol_report
    from sales_assets.ml.plots import holdout_plot, leaderboard_plot
    from sales_assets.ml.publication import repair
    from sales_assets.ml.report import candidate_card, metrics_payload
    from sales_assets.ml.tracking import track_training
    from sales_assets.ml.training import train_models
    from sales_assets.warehouse.loading import exports_used

    settings = sales_settings.get()
    ml = settings.ml
    # The incumbent is scored through the alias, so it must name what was last published.
    for line in repair(settings):
        context.log.warning(line)
    data = read_training_sample(duckdb_reader, ml.max_training_rows, ml.random_state)
    if settings.raw_dir_path is None:
        source = data_lineage(settings.parquet_dir, settings.landed_dir)
    else:
        # Folder mode: the exports the table was built from, as the warehouse recorded them in its file.
        with duckdb_reader.get_connection() as conn:
            exports = exports_used(conn, settings.warehouse.table)
        if exports is None:
            raise dg.Failure(
                description=f"{settings.duckdb_path}: the {settings.warehouse.table} table was not built from "
                "the folder of exports (SALES_RAW_DIR is set); rematerialise duckdb_table"
            )
        source = exports_lineage(exports, settings.exports_clean_dir, settings.raw_dir_path)
    lineage = source | {
        "table_rows": data.table_rows,
        "sampled": data.sampled,
    }
    context.log.info(
        f"read {len(data.frame):,} of {data.table_rows:,} rows from the sales table"
        f"{' (repeatable sample)' if data.sampled else ''}; data sha256 {lineage['data_sha256'][:12]}"
    )
    # The final pipelines wait on disk, not in this process (SpilledPipelines), until tracked and written.
    with scratch_directory(settings.models_dir.parent / "training") as spill:
        with timed(context.log, "training") as training_time:
            outcome = train_models(data.frame, settings, context.log.info, spill_dir=spill)
        with timed(context.log, "seed-protocol report") as seed_time:
            seed_report = seed_protocol_report(
                data.frame,
                outcome.spec,
                settings.analytics.iqr_columns,
                settings.analytics.iqr_factor,
                ml.test_size,
                ml.random_state,
            )
        with timed(context.log, "MLflow tracking") as tracking_time:
            tracking = track_training(
                settings, outcome, seed_report, context.run_id, lineage, data.frame, context.log.info
            )
        report = metrics_payload(outcome, settings, seed_report, tracking, context.run_id, lineage)
        metrics_path = write_json_atomic(settings.metrics_dir / METRICS_FILE, report.model_dump(mode="json"))
        write_candidate(settings, outcome, candidate_card(outcome, report))

    test_x, test_y = outcome.part("test")
    leaky = report.leaky_features
    champion_cv = report.champion.cv
    holdout = report.champion.holdout
    intervals = outcome.intervals
    interval_metadata = (
        {
            f"interval_{round(level * 100)}_coverage_holdout": number_metadata(share, Quantity.SHARE)
            for level, share in intervals.coverage_holdout.items()
        }
        | {
            f"interval_{round(level * 100)}_relative_band": f"{band['lower_relative']:+.1%} / {band['upper_relative']:+.1%}"
            for level, band in intervals.levels.items()
        }
        # A sentence with its source: Markdown wraps in the metadata column where plain text does not.
        | {"interval_method": dg.MetadataValue.md(intervals.method)}
        if intervals
        else {"interval_method": "none (see the training log)"}
    )
    return dg.MaterializeResult(
        metadata={
            "leaderboard": leaderboard_metadata(outcome.board),
            "leaderboard_plot": leaderboard_plot(outcome.board, settings.plots_dir / "ml_leaderboard.png"),
            "champion": report.champion.model,
            # Scores as people read them (number_metadata): errors in USD to the cent, R² to three decimals.
            "champion_cv_rmse": number_metadata(champion_cv.rmse_mean, Quantity.MONEY),
            "champion_cv_rmse_std": number_metadata(champion_cv.rmse_std, Quantity.MONEY),
            "champion_cv_mae": number_metadata(champion_cv.mae_mean, Quantity.MONEY),
            "champion_cv_r2": number_metadata(champion_cv.r2_mean, Quantity.SHARE),
            "champion_holdout_rmse": number_metadata(holdout.rmse, Quantity.MONEY),
            "champion_holdout_mae": number_metadata(holdout.mae, Quantity.MONEY),
            "champion_holdout_r2": number_metadata(holdout.r2, Quantity.SHARE),
            "champion_holdout_plot": holdout_plot(
                test_y,
                outcome.champion_pipeline.predict(test_x),
                f"{outcome.champion}: held-out rows",
                settings.plots_dir / "ml_champion_holdout.png",
            ),
            **interval_metadata,
            "ineligible_models": dg.MetadataValue.json(outcome.ineligible),
            "seed_protocol_leaky_not_eligible": dg.MetadataValue.json(
                {"rows": report.seed_protocol.rows_after_filter, **report.seed_protocol.holdout.model_dump()}
            ),
            "leaky": report.leaky,
            "promoted": report.promotion.promote,
            "promotion_reason": dg.MetadataValue.md(report.promotion.reason),
            # The MLflow UI in its model-training view with the leaderboard's columns (tracking.leaderboard_url),
            # as a link with a short text: the address itself is ~100 characters the asset page cannot wrap.
            "mlflow_leaderboard": leaderboard_link(tracking["mlflow_leaderboard_url"]),
            "mlflow_run_id": report.lineage.mlflow_run_id,
            "mlflow_model_run_id": report.lineage.mlflow_model_run_id,
            "mlflow_model_version": report.lineage.mlflow_model_version,
            "rows_table": number_metadata(report.protocol.table_rows, Quantity.COUNT),
            "rows_sampled": report.protocol.sampled,
            "rows_train": number_metadata(report.protocol.rows_train, Quantity.COUNT),
            "rows_test": number_metadata(report.protocol.rows_test, Quantity.COUNT),
            # The full digest is in the metrics file and the bundle; a prefix identifies it in the UI.
            "data_sha256_prefix": report.lineage.data_sha256[:16],
            "metrics_path": path_metadata(settings, metrics_path),
            "training_seconds": training_time["seconds"],
            "seed_protocol_seconds": seed_time["seconds"],
            "tracking_seconds": tracking_time["seconds"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=LEAKAGE_CHECK,
                passed=not leaky,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "leaky_features": dg.MetadataValue.json(leaky),
                    "threshold": ml.leakage_r2_threshold,
                    "report": table_metadata(outcome.leakage),
                },
                description="model card says leaky" if leaky else "no input leaks the target",
            )
        ],
    )


@dg.asset(group_name=GROUP, kinds={"shap"}, deps=["trained_models"])
def shap_importance(
    context: dg.AssetExecutionContext, sales_settings: SalesSettingsResource
) -> dg.MaterializeResult:
    """Global SHAP importance of the champion on up to settings.ml.shap_rows training rows (fewer once the
    means are precise to settings.ml.shap_relative_error), one-hot columns collapsed to their feature and
    ranked; written to output/explainability/shap_global_importance.json."""
    from sales_assets.ml.candidate import SHAP_SAMPLE_FILE, load_candidate, read_frame, spec_of
    from sales_assets.ml.catalogue import MODEL_CATALOGUE
    from sales_assets.ml.explain import shap_global_importance
    from sales_assets.ml.plots import importance_plot

    settings = sales_settings.get()
    candidate, pipeline, directory = load_candidate(settings)
    spec = spec_of(candidate)
    rows = read_frame(directory / SHAP_SAMPLE_FILE, spec)
    with timed(context.log, f"SHAP for {candidate['model']}") as shap_time:
        ranked, explainer, explained = shap_global_importance(
            pipeline,
            spec,
            rows,
            MODEL_CATALOGUE[candidate["model"]].tree_based,
            settings.ml.random_state,
            settings.ml.shap_relative_error,
        )
    report = ShapReport(
        model=candidate["model"],
        estimator=candidate["estimator"],
        explainer=explainer,
        rows=explained,
        mlflow_model_version=candidate["lineage"]["mlflow_model_version"],
        importance=[FeatureImportance(**row) for row in ranked.to_dicts()],
    )
    path = write_json_atomic(settings.explainability_dir / SHAP_FILE, report.model_dump(mode="json"))
    return dg.MaterializeResult(
        metadata={
            "model": report.model,
            "explainer": report.explainer,
            "rows": number_metadata(report.rows, Quantity.COUNT),
            "top_feature": report.importance[0].feature,
            "importance": table_metadata(ranked),
            "importance_plot": importance_plot(
                ranked,
                f"{candidate['model']}: global importance ({explainer})",
                settings.explainability_dir / "shap_global_importance.png",
            ),
            "path": path_metadata(settings, path),
            "seconds": shap_time["seconds"],
        }
    )


def candidate_of_this_run(context: dg.AssetExecutionContext, candidate: dict) -> None:
    """dg.Failure when this run trained a champion but the candidate on disk is another run's (a training
    that ran beside this one replaced it): publishing it would label one run's model with another's."""
    trained_here = any(
        event.dagster_event is not None and event.dagster_event.asset_key == dg.AssetKey("trained_models")
        for event in context.instance.all_logs(
            context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
    )
    written_by = candidate["lineage"]["dagster_run_id"]
    if trained_here and written_by != context.run.run_id:
        raise dg.Failure(
            description=f"the champion candidate on disk was trained by run {written_by[:8]}, not by this "
            f"run ({context.run.run_id[:8]}): another training replaced it, and that run publishes it. "
            "Nothing was published by this run."
        )


@dg.asset(
    group_name=GROUP,
    kinds={"onnx"},
    deps=["trained_models"],
    pool=PUBLICATION_POOL,
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
    """The champion candidate, preprocessing included, exported to ONNX and checked against the joblib
    pipeline on every held-out row. When parity holds it is written as a bundle
    (models/sales_regressor/<version>/, with its manifest) and published through the serving gate
    (`sales_assets.ml.publication`): a candidate that won its promotion, and still beats the champion
    published since, gets a publication record, then the MLflow alias `champion` and CURRENT follow it;
    under settings.ml.serving_policy "newest_candidate" CURRENT follows every candidate. A candidate that
    was already exported is not exported again (its bundle is reused; nothing new is published). On a
    parity failure nothing is written."""
    from sales_assets.ml.bundle import bundle_metadata, serving_gate
    from sales_assets.ml.candidate import HOLDOUT_FILE, load_candidate, read_frame, spec_of
    from sales_assets.ml.onnx_export import check_parity, export_onnx
    from sales_assets.ml.publication import bundle_of, publication_lock, reconcile
    from sales_serving.contract.bundle import bundle_version, write_bundle

    settings = sales_settings.get()
    candidate, pipeline, directory = load_candidate(settings)
    candidate_of_this_run(context, candidate)
    lineage = candidate["lineage"]
    with publication_lock(settings.models_dir):
        for line in reconcile(settings):
            context.log.warning(f"publication repaired: {line}")
        spec = spec_of(candidate)
        holdout = read_frame(directory / HOLDOUT_FILE, spec)
        with timed(context.log, "ONNX export and parity") as export_time:
            onnx_bytes = export_onnx(pipeline, spec)
            parity = check_parity(
                pipeline, onnx_bytes, holdout[spec.request_fields], spec, settings.ml.onnx_tolerance
            )
        context.log.info(
            f"parity on {parity.rows_checked:,} held-out rows: max abs diff {parity.max_abs_diff:.6f} "
            f"(tolerance {parity.tolerance}), {parity.rows_outside} outside"
        )
        existing = bundle_of(settings.models_dir, lineage)
        if existing is not None:
            return _already_exported(context, settings, existing, candidate, parity)
        gate = serving_gate(_promotion_now(settings, candidate), settings.ml.serving_policy, parity.passed)
        version = bundle_version(context.run.run_id)
        result_metadata: dict = {
            "model": candidate["model"],
            "onnx_bytes": number_metadata(len(onnx_bytes), Quantity.COUNT),
            "max_abs_diff": parity.max_abs_diff,
            "rows_checked": number_metadata(parity.rows_checked, Quantity.COUNT),
            "serving_policy": gate.policy,
            "promoted": gate.promoted,
            "gate": gate.reason,
            "seconds": export_time["seconds"],
        }
        if parity.passed:
            metadata = bundle_metadata(
                settings.ml.registered_model_name, version, candidate, spec, onnx_bytes, parity, gate
            )
            bundle = write_bundle(
                settings.models_dir, version, pipeline, onnx_bytes, metadata, make_current=False
            )
            result_metadata |= {"version": version, "bundle": path_metadata(settings, bundle)}
            result_metadata |= _publish(context, settings, version, gate, lineage["mlflow_model_version"])
        else:
            context.log.error("ONNX parity failed: no bundle is written and CURRENT stays where it was")
    return _export_result(result_metadata, parity)


def _export_result(metadata: dict, parity) -> dg.MaterializeResult:
    """`onnx_model`'s result: its metadata and the blocking ONNX parity check."""
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=ONNX_PARITY_CHECK,
                passed=parity.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=parity.as_dict(),
            )
        ],
    )


def _promotion_now(settings, candidate: dict) -> dict:
    """The candidate's promotion as it stands at publication (`publication.still_valid`)."""
    from sales_assets.ml.publication import current_champion, still_valid

    promote, reason = still_valid(candidate["promotion"], current_champion(settings))
    return {"promote": promote, "reason": reason}


def _publish(context: dg.AssetExecutionContext, settings, version: str, gate, mlflow_version: str) -> dict:
    """Publish the written bundle per the gate; its lines go to the log, the outcome to the metadata."""
    from sales_assets.ml.publication import Verdict, publish

    verdict = Verdict(gate.make_current, gate.make_current and gate.promoted, gate.reason)
    record, lines = publish(settings, version, verdict, mlflow_version, context.run.run_id)
    for line in lines:
        context.log.info(line)
    return {"served": record is not None, "publication": record.sequence if record else "none"}


def _already_exported(
    context: dg.AssetExecutionContext, settings, version: str, candidate: dict, parity
) -> dg.MaterializeResult:
    """The candidate has a bundle already (parity was checked again under the current settings). If its
    publication was cut short (the gate serves it, no later publication exists) it is finished; otherwise
    nothing new happens: no second bundle, no second promotion line."""
    from sales_assets.ml.bundle import serving_gate
    from sales_serving.contract.bundle import read_publication

    record = read_publication(settings.models_dir)
    gate = serving_gate(_promotion_now(settings, candidate), settings.ml.serving_policy, parity.passed)
    unfinished = gate.make_current and (record is None or record.version < version)
    result_metadata: dict = {"model": candidate["model"], "version": version, "reused": True}
    if unfinished:
        context.log.warning(f"bundle {version} was written by an interrupted run: finishing its publication")
        result_metadata |= _publish(
            context, settings, version, gate, candidate["lineage"]["mlflow_model_version"]
        )
    else:
        served = record is not None and record.version == version
        context.log.info(
            f"this candidate (v{candidate['lineage']['mlflow_model_version']}) was exported already as bundle "
            f"{version}{' (served)' if served else ''}: nothing new is published"
        )
        result_metadata["served"] = served
    return _export_result(result_metadata, parity)
