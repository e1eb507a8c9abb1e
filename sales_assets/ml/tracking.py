"""MLflow tracking: one training run per materialisation, one run per model (scores and params; the
champion's with its logged pipeline), the champion registered in the MLflow model registry under settings.ml.registered_model_name, and the rule that moves the champion alias."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sales_assets.ml.evaluation import regression_scores
from sales_assets.ml.training import TrainingOutcome
from sales_assets.settings import Settings

if TYPE_CHECKING:
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

# The experiment's kind for MLflow (its UI's experiment list and kind selector show it).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# MLflow 3.17's UI does not open an experiment by its kind: it takes the view (GenAI: traces, tokens, cost;
# or model training: the runs table) from a global switch, the `workflowType` URL parameter, else the
# browser's local storage (`mlflow.workflowType`), else GenAI (mlflow/server/js/build: the kind is derived
# from the switch). So every link the project gives into the UI carries the parameter (`leaderboard_url`).
MODEL_TRAINING_VIEW = "workflowType=machine_learning"
# MLflow has no default columns per experiment; its "Save and share view" stores a view of the runs table
# (columns, filter, sort) as the experiment tag `mlflow.sharedViewState.<key>`, which the UI lists among the
# experiment's saved views and opens with `?viewStateShareKey=<key>`. The project writes its leaderboard as
# one, with the leaderboard's metrics (`model_metrics`) as visible columns.
SAVED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
LEADERBOARD_VIEW_KEY = "leaderboard"
LEADERBOARD_VIEW_NAME = "Leaderboard"
LEADERBOARD_METRICS = (
    "leaderboard_rank",
    "cv_rmse_mean",
    "cv_rmse_std",
    "cv_mae_mean",
    "cv_r2_mean",
    "holdout_rmse",
    "fit_seconds",
)
# Where `mlflow ui` serves by default (README "Open the UIs"), for a store this process opens itself.
MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"
# Links a model's run to the training run of the same materialisation (model runs are top-level, so the
# runs table lists one row per model with its metrics as columns instead of a collapsed parent).
TRAINING_RUN_TAG = "training_run_id"
# MLflow keeps a dataset digest of at most 36 characters.
DATASET_DIGEST_CHARS = 36
# The libraries a logged pipeline needs to load; pinned to this environment so MLflow need not infer them.
MODEL_REQUIREMENTS = ("scikit-learn", "numpy", "pandas", "xgboost", "lightgbm", "catboost")
# Run tag values are capped at 8,000 characters; a scoring error can quote long column lists.
MAX_REASON_CHARS = 4000


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    candidate_rmse: float
    incumbent_rmse: float | None
    incumbent_version: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def decide_promotion(
    candidate_rmse: float,
    incumbent_rmse: float | None,
    candidate_leaky: bool = False,
    incumbent_version: str | None = None,
    unscored_reason: str | None = None,
) -> PromotionDecision:
    """The alias moves only to a leak-free candidate that beats the incumbent on the same evaluation
    (strictly lower held-out RMSE). With no incumbent a leak-free candidate takes it; an incumbent that
    cannot be scored on this evaluation (`incumbent_version` set, `incumbent_rmse` None) keeps it, since
    nothing shows the candidate is better."""
    if candidate_leaky:
        promote, reason = False, "candidate uses a leaky feature; a leaky model never becomes champion"
    elif incumbent_rmse is not None:
        beats = candidate_rmse < incumbent_rmse
        verdict = "beats" if beats else "does not beat"
        promote, reason = (
            beats,
            f"held-out RMSE {candidate_rmse:,.2f} {verdict} the champion's {incumbent_rmse:,.2f}",
        )
    elif incumbent_version is not None:
        promote, reason = (
            False,
            f"the alias stays on v{incumbent_version}: the candidate cannot be compared with it on the same "
            f"evaluation ({unscored_reason or 'the champion could not be scored'})",
        )
    else:
        promote, reason = True, "first champion: no model carried the alias yet, so this one is promoted"
    return PromotionDecision(promote, reason, candidate_rmse, incumbent_rmse, incumbent_version)


def leaderboard_view_state() -> dict:
    """The runs table's state in the leaderboard view, as MLflow's UI saves a view: the leaderboard's
    metrics as the visible columns (keys `metrics.`name``; the UI orders them by name), newest runs first
    (the UI's default sort). The champion is the run with `holdout_rmse`."""
    return {"selectedColumns": [f"metrics.`{name}`" for name in LEADERBOARD_METRICS]}


def leaderboard_view_tag(created_ms: int) -> str:
    """The value of the experiment tag SAVED_VIEW_TAG_PREFIX + LEADERBOARD_VIEW_KEY: MLflow's saved-view
    envelope `{"name", "createdAt", "updatedAt", "state"}` (times in ms since the epoch, `state` the JSON
    text of `leaderboard_view_state`)."""
    return json.dumps(
        {
            "name": LEADERBOARD_VIEW_NAME,
            "createdAt": created_ms,
            "updatedAt": created_ms,
            "state": json.dumps(leaderboard_view_state()),
        }
    )


def _view_is_current(value: str | None) -> bool:
    try:
        return json.loads(json.loads(value)["state"]) == leaderboard_view_state()
    except (TypeError, ValueError, KeyError):
        return False


def leaderboard_url(settings: Settings, experiment_id: str) -> str:
    """The MLflow UI's page of the experiment in the model-training view with the leaderboard's columns,
    e.g. `http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&viewStateShareKey=
    leaderboard`: on the tracking server when the settings name one, else where `mlflow ui` serves."""
    base = settings.mlflow_tracking_uri if settings.mlflow_tracking_is_server else MLFLOW_UI_DEFAULT
    query = f"{MODEL_TRAINING_VIEW}&viewStateShareKey={LEADERBOARD_VIEW_KEY}"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow at the settings' store and make sure the experiment exists with its kind and the
    leaderboard view (`leaderboard_view_tag`; rewritten on an older experiment whose view differs);
    returns its id. A new experiment's artifact location is the settings' (none for a tracking server: the
    server's proxied artifact store, so no host writes a `file://` path of its own)."""
    import mlflow

    if not settings.mlflow_tracking_is_server:
        Path(settings.mlflow_dir).mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    view_tag = SAVED_VIEW_TAG_PREFIX + LEADERBOARD_VIEW_KEY
    experiment = mlflow.get_experiment_by_name(settings.ml.mlflow_experiment)
    if experiment is None:
        experiment_id = mlflow.create_experiment(
            settings.ml.mlflow_experiment,
            artifact_location=settings.mlflow_artifact_location,
            tags={
                EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
                view_tag: leaderboard_view_tag(int(time.time() * 1000)),
            },
        )
    else:
        experiment_id = experiment.experiment_id
        client = mlflow.MlflowClient()
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        if not _view_is_current(experiment.tags.get(view_tag)):
            client.set_experiment_tag(experiment_id, view_tag, leaderboard_view_tag(int(time.time() * 1000)))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextlib.contextmanager
def parent_run(
    settings: Settings, run_name: str, tags: dict[str, str], run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """The training run of one materialisation, active inside the block (resumed when `run_id` is given)."""
    import mlflow

    configure_mlflow(settings)
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, tags=tags) as run:
        yield run


def create_training_run(settings: Settings, run_name: str, tags: dict[str, str]) -> str:
    """Create the training run without activating it, so model runs can name it before it is resumed."""
    import mlflow

    experiment_id = configure_mlflow(settings)
    return mlflow.MlflowClient().create_run(experiment_id, tags=tags, run_name=run_name).info.run_id


def _requirements() -> list[str]:
    from sales_serving.contract.bundle import library_versions

    versions = library_versions()
    return [f"{library}=={versions[library]}" for library in MODEL_REQUIREMENTS if library in versions]


def log_model_run(
    model_name: str,
    pipeline: Pipeline | None,
    params: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
    input_example: pd.DataFrame | None = None,
    dataset: object | None = None,
) -> tuple[str, str | None]:
    """A finished top-level run for one model in the active experiment: `params` (values cut at 500
    characters), `metrics` and `tags` in one `log_batch` call, the training data as its dataset input (an
    `mlflow.data` dataset or a `dataset_input` entity, when given) and, when `pipeline` is given, the logged
    pipeline with signature and input example (`log_pipeline`). Returns (run id, model URI or None)."""
    import time

    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput, Metric, Param

    client = MlflowClient()
    now = int(time.time() * 1000)
    with mlflow.start_run(run_name=model_name, tags=tags) as run:
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
            params=[Param(key, str(value)[:500]) for key, value in params.items()],
        )
        if dataset is not None:
            entity = dataset if isinstance(dataset, DatasetInput) else dataset_input(dataset)
            client.log_inputs(run_id, datasets=[entity])
        if pipeline is None:
            return run_id, None
        if input_example is None:
            raise ValueError(f"{model_name}: a logged pipeline needs an input example")
        return run_id, log_pipeline(pipeline, input_example)


def dataset_input(dataset: object, context: str = "training") -> object:
    """The MLflow entity of `dataset` (an `mlflow.data` dataset) as a run input in `context`, built once so
    that several runs can log it without recomputing its schema and profile."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    return DatasetInput(
        dataset=dataset._to_mlflow_entity(), tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)]
    )


def log_pipeline(pipeline: Pipeline, input_example: pd.DataFrame) -> str:
    """Log `pipeline` to the active run as its model "model" (cloudpickle, pinned requirements, signature
    and input example) and return the model URI. Integer columns are declared as double: a request with a
    missing quantity (NaN, a float) then passes MLflow's schema enforcement, and MLflow has no
    integer-schema hint to give."""
    import mlflow
    from mlflow.models import infer_signature

    integer_columns = input_example.select_dtypes("integer").columns
    input_example = input_example.astype({column: "float64" for column in integer_columns})
    signature = infer_signature(input_example, pipeline.predict(input_example))
    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=input_example,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pip_requirements=_requirements(),
    )
    return info.model_uri


def score_incumbent(
    settings: Settings, features: pd.DataFrame, target: np.ndarray
) -> tuple[str | None, float | None, str | None]:
    """The current champion's held-out RMSE on these rows: (version, rmse, why it could not be scored)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    name, alias = settings.ml.registered_model_name, settings.ml.champion_alias
    try:
        incumbent = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None, None, None
    try:
        model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
        rmse = regression_scores(target, model.predict(features))["rmse"]
    except Exception as error:  # an incumbent built on other features cannot take this evaluation
        return (
            str(incumbent.version),
            None,
            f"champion v{incumbent.version} could not score these rows: {error}",
        )
    return str(incumbent.version), rmse, None


def register_champion(
    settings: Settings, model_uri: str, decision: PromotionDecision, tags: dict[str, str]
) -> str:
    """Register the candidate as a new version and record the decision on the version and on the active
    (parent) run. The alias does not move here: it follows the publication record once the bundle is
    published (`sales_assets.ml.publication`), so it never names a version without a bundle. Returns the
    new version number."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    name = settings.ml.registered_model_name
    registered = mlflow.register_model(model_uri, name, tags=tags)
    version = str(registered.version)
    record = {
        "promotion_decision": "promoted" if decision.promote else "kept",
        "promotion_reason": decision.reason[:MAX_REASON_CHARS],
        "promotion_incumbent_version": decision.incumbent_version or "none",
    }
    for key, value in record.items():
        client.set_model_version_tag(name, version, key, value)
    mlflow.set_tags(record | {"registered_version": version})
    return version


def alias_version(settings: Settings) -> str | None:
    """The registered version the champion alias names; None when no version carries it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    try:
        found = client.get_model_version_by_alias(
            settings.ml.registered_model_name, settings.ml.champion_alias
        )
    except MlflowException:
        return None
    return str(found.version)


def point_alias(settings: Settings, version: str) -> None:
    """Move the champion alias to registered `version` (the publication record decides which)."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    client.set_registered_model_alias(settings.ml.registered_model_name, settings.ml.champion_alias, version)


def version_description(lineage: dict, champion: str, rows_train: int) -> str:
    """The registered version's description: which model, and which data it saw (source file or folder by
    name, its sha256 when there is one file, the digest of the clean layer trained on), so the registry
    tells a model of the generated sample from one of a real export."""
    source = Path(str(lineage.get("raw_path") or "")).name or "unknown source"
    raw = f", sha256 {lineage['raw_sha256']}" if lineage.get("raw_sha256") else ""
    exports = lineage.get("exports")
    listed = f" (exports: {', '.join(exports)})" if exports else ""
    return (
        f"{champion} trained on {rows_train:,} rows of {source}{raw}{listed}; clean data sha256 "
        f"{lineage['data_sha256']}."
    )


def training_dataset(frame: pd.DataFrame, target: str, lineage: dict) -> object:
    """The training data as an MLflow dataset: the rows trained on, named by the source they were read from
    and digested from its files (see `sales_assets.ml.data.data_lineage`); MLflow records its row count."""
    import mlflow.data
    from mlflow.data.dataset_source_registry import get_registered_sources, resolve_dataset_source

    # MLflow registers its local-file source twice (for the schemes "" and "file"), so resolving a path
    # among every registered source warns that it "can be interpreted in multiple ways"; among the first
    # local one only, it resolves to that same source without the warning.
    local = next(s for s in get_registered_sources() if s._get_source_type() == "local")
    source = resolve_dataset_source(lineage.get("parquet_dir") or lineage.get("raw_path"), [local])
    # Integer columns recorded as double, as in the models' signatures (`log_pipeline`).
    frame = frame.astype({column: "float64" for column in frame.select_dtypes("integer").columns})
    return mlflow.data.from_pandas(
        frame,
        source=source,
        targets=target,
        name="sales",
        digest=lineage["data_sha256"][:DATASET_DIGEST_CHARS],
    )


def model_metrics(outcome: TrainingOutcome, model: str, rank: int) -> dict[str, float]:
    """The leaderboard row of one model under the same metric names in every run, so the runs table shows
    them as aligned columns: CV mean and sd, rank, fit time, and held-out scores for the champion."""
    result = next(result for result in outcome.results if result.model == model)
    metrics = {f"cv_{key}": value for key, value in result.summary().items()} | {
        "leaderboard_rank": float(rank),
        "fit_seconds": result.fit_seconds,
    }
    if model == outcome.champion:
        metrics |= {f"holdout_{key}": value for key, value in outcome.champion_holdout.items()}
        if outcome.intervals is not None:
            metrics |= {
                f"holdout_coverage_{round(level * 100)}": share
                for level, share in outcome.intervals.coverage_holdout.items()
            }
    return metrics


def track_training(
    settings: Settings,
    outcome: TrainingOutcome,
    seed_report: dict,
    dagster_run_id: str,
    lineage: dict,
    training_frame: pd.DataFrame,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Log the whole training to MLflow: one run per model (top-level, tagged with the training run; its
    params and metrics in one `log_batch` call; the champion's run with the logged pipeline, which the
    registry version points at) and the training run itself (the data as its dataset input, champion
    summary, seed report, promotion); register the champion and apply the promotion rule. Returns the
    lineage and the promotion decision."""
    import mlflow

    leaky = "true" if outcome.leaky else "false"
    tags = {"dagster_run_id": dagster_run_id, "data_sha256": lineage["data_sha256"], "leaky": leaky}
    train_x, _ = outcome.part("train")
    test_x, test_y = outcome.part("test")
    input_example = train_x.head(5)
    # The dataset's schema and profile are computed once and logged as an input of every run.
    dataset = dataset_input(training_dataset(training_frame, outcome.spec.target, lineage))
    training_run_id = create_training_run(settings, f"trained_models-{dagster_run_id[:8]}", tags)
    model_runs: dict[str, str] = {}
    champion_uri = ""
    for rank, result in enumerate(outcome.board.iter_rows(named=True), start=1):
        name = result["model"]
        pipeline = outcome.pipelines[name]
        is_champion = name == outcome.champion
        # Only the champion's pipeline is logged (the registry, the incumbent's scoring and the bundle need
        # it); the others' runs keep their scores and parameters, and their pipelines are not kept.
        model_runs[name], model_uri = log_model_run(
            name,
            pipeline if is_champion else None,
            params={"estimator": result["estimator"]} | pipeline.named_steps["model"].get_params(deep=False),
            metrics=model_metrics(outcome, name, rank),
            tags=tags | {"champion": str(is_champion).lower(), TRAINING_RUN_TAG: training_run_id},
            input_example=input_example,
            dataset=dataset,
        )
        champion_uri = model_uri or champion_uri
        log(f"MLflow: logged {name}{' with its pipeline' if is_champion else ''}")
    with parent_run(settings, "", tags, run_id=training_run_id) as parent:
        _log_training_run(
            parent.info.run_id, dataset, settings, outcome, seed_report, len(train_x), len(test_x)
        )
        incumbent_version, incumbent_rmse, why_not = score_incumbent(settings, test_x, test_y)
        decision = decide_promotion(
            outcome.champion_holdout["rmse"], incumbent_rmse, outcome.leaky, incumbent_version, why_not
        )
        version = register_champion(
            settings, champion_uri, decision, tags | {"champion_model": outcome.champion}
        )
        mlflow.MlflowClient().update_model_version(
            settings.ml.registered_model_name,
            version,
            description=version_description(lineage, outcome.champion, len(train_x)),
        )
        mlflow.set_tag("champion", outcome.champion)
        verdict = "to be promoted at publication to" if decision.promote else "kept off"
        log(
            f"MLflow: registered {settings.ml.registered_model_name} v{version}, {verdict} the alias "
            f"{settings.ml.champion_alias!r}: {decision.reason}"
        )
        url = leaderboard_url(settings, parent.info.experiment_id)
        log(f"MLflow: the leaderboard in the MLflow UI: {url}")
        return {
            "mlflow_leaderboard_url": url,
            "mlflow_run_id": parent.info.run_id,
            "mlflow_model_version": version,
            "mlflow_model_uri": champion_uri,
            "mlflow_model_run_id": model_runs[outcome.champion],
            "promotion": decision.as_dict(),
        }


def _log_training_run(
    run_id: str,
    dataset: object,
    settings: Settings,
    outcome: TrainingOutcome,
    seed_report: dict,
    rows_train: int,
    rows_test: int,
) -> None:
    """The training run's dataset input, and its params and metrics in one `log_batch` call."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient()
    client.log_inputs(run_id, datasets=[dataset])
    params = {
        "target": outcome.spec.target,
        "features": ",".join(outcome.spec.columns),
        "test_size": settings.ml.test_size,
        "random_state": settings.ml.random_state,
        "cv_folds": settings.ml.cv_folds,
        "cv_repeats": settings.ml.cv_repeats,
        "rows_train": rows_train,
        "rows_test": rows_test,
    }
    metrics = (
        {f"champion_cv_{key}": value for key, value in outcome.champion_cv.items()}
        | {f"champion_holdout_{key}": value for key, value in outcome.champion_holdout.items()}
        | {f"seed_protocol_{key}": value for key, value in seed_report["holdout"].items()}
    )
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
        params=[Param(key, str(value)) for key, value in params.items()],
    )
