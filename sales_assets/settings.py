"""The one typed settings object: every path and knob of the code location, and the only reader of env.

Precedence (highest first): environment variables, the YAML file named by `SALES_SETTINGS_FILE` (else
`sales-settings.yaml` at the project root, which the quickstart writes), the defaults in this module.
Top-level fields read `SALES_<FIELD>` (for example `SALES_DATA_DIR`,
`SALES_RAW_CSV`); nested fields read `SALES_<SECTION>__<FIELD>` (for example `SALES_ML__CV_FOLDS=3`).
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse
from urllib.request import url2pathname

from pydantic import BaseModel, Field, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sales_serving.contract.bundle import models_dir as bundle_models_dir
from sales_serving.contract.export import ExportLayout, ExportReading
from sales_serving.contract.local_settings import default_data_dir, settings_sources

# Columns of the source export, in the order the real file has them.
SOURCE_COLUMNS: tuple[str, ...] = (
    "ORDERNUMBER",
    "QUANTITYORDERED",
    "PRICEEACH",
    "ORDERLINENUMBER",
    "SALES",
    "ORDERDATE",
    "STATUS",
    "QTR_ID",
    "MONTH_ID",
    "YEAR_ID",
    "PRODUCTLINE",
    "MSRP",
    "PRODUCTCODE",
    "CUSTOMERNAME",
    "PHONE",
    "ADDRESSLINE1",
    "ADDRESSLINE2",
    "CITY",
    "STATE",
    "POSTALCODE",
    "COUNTRY",
    "TERRITORY",
    "CONTACTLASTNAME",
    "CONTACTFIRSTNAME",
    "DEALSIZE",
)


# Schemes of the object stores a location may name once a storage layer is wired (docs/DEPLOY.md); until
# then every location is a local folder, and naming one of these is a settings error.
OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
# Tracking URIs that name an MLflow tracking server rather than a store opened in-process.
MLFLOW_SERVER_SCHEMES = ("http", "https", "databricks")
# `scheme:/...`: a URI, or one a `Path` already mangled (`s3://b` becomes `s3:/b`). Two letters at least,
# so a Windows drive (`C:/data`) stays a path.
_URI_LIKE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/")


def local_location(value: object, setting: str) -> object:
    """`value` of the location setting `setting` (e.g. `SALES_DATA_DIR`) as a local path: a path is kept,
    a `file://` URI becomes its path. Raises ValueError naming the setting and the value for an
    object-store URI (no storage layer is wired in this release) and for any other scheme, rather than
    reading `s3://bucket/prod` as the local folder `./s3:/bucket/prod`."""
    text = str(value) if isinstance(value, str | Path) else None
    match = _URI_LIKE.match(text or "")
    if match is None:
        return value
    scheme = match["scheme"].lower()
    if scheme == "file":
        return Path(url2pathname(urlparse(text).path))
    if scheme in OBJECT_STORE_SCHEMES:
        raise ValueError(
            f"{setting}={text!r} names an object store ({scheme}://); this release reads and writes local "
            f"folders only (docs/DEPLOY.md, 'Past one machine'). Set {setting} to a local folder path."
        )
    raise ValueError(
        f"{setting}={text!r}: unknown location scheme {scheme!r}; give a local folder path (or file://)."
    )


class IngestSettings(BaseModel):
    """Reading and cleaning the raw export.

    `reading` holds the rules of the one export reader (`sales_serving.contract.export.ExportReading`:
    `dialect`, `candidate_encodings`, `null_tokens`, `kept_tokens`, ...); every part of the dialect left
    unset is detected per file, and setting one settles it
    (`SALES_INGEST__READING__DIALECT__DATE_ORDER=day_first`).
    """

    reading: ExportReading = Field(default_factory=ExportReading)

    # strptime formats tried after the built-in dates (D/M/Y, M/D/Y, Y-M-D and ISO 8601, Excel day
    # numbers, month names in English and the common European languages): for a spelling none of those
    # reads.
    extra_date_formats: list[str] = []
    required_columns: list[str] = [
        "ORDERNUMBER",
        "QUANTITYORDERED",
        "PRICEEACH",
        "ORDERLINENUMBER",
        "SALES",
        "ORDERDATE",
        "STATUS",
        "QTR_ID",
        "MONTH_ID",
        "YEAR_ID",
        "PRODUCTLINE",
        "MSRP",
        "PRODUCTCODE",
        "CUSTOMERNAME",
        "COUNTRY",
        "TERRITORY",
        "DEALSIZE",
    ]
    # One row per order line: the columns that identify it, and what a repeat with other values means.
    # `last_wins` keeps the last line in file order (a re-sent line corrects the earlier one) and rejects
    # the others naming both lines; `stop` stops the run naming them. Exact repeats are duplicates.
    order_line_key: list[str] = ["ORDERNUMBER", "ORDERLINENUMBER"]
    key_conflicts: Literal["last_wins", "stop"] = "last_wins"
    drop_columns: list[str] = ["ADDRESSLINE2"]
    fill_unknown_columns: list[str] = ["STATE", "POSTALCODE"]
    fill_value: str = "Unknown"
    integer_columns: list[str] = [
        "ORDERNUMBER",
        "QUANTITYORDERED",
        "ORDERLINENUMBER",
        "QTR_ID",
        "MONTH_ID",
        "YEAR_ID",
    ]
    float_columns: list[str] = ["PRICEEACH", "SALES", "MSRP"]
    # Columns that are not in SOURCE_COLUMNS: kept as strings when True, dropped when False.
    keep_extra_columns: bool = True
    # The configured plausible window for ORDERDATE: a date outside it stops the run (a wrong date order
    # or year pivot shows up here first).
    min_order_date: str = "2000-01-01"
    max_order_date: str = "2030-12-31"
    # A share of rejected rows above this stops the run before it replaces the last good outputs: many
    # rejects mean the export is read wrong, not that a few rows are bad.
    max_reject_share: float = 0.05
    # Integer columns with a fixed domain; a value outside rejects its row.
    integer_ranges: dict[str, tuple[int, int]] = {
        "QTR_ID": (1, 4),
        "MONTH_ID": (1, 12),
        "YEAR_ID": (1900, 2100),
    }
    # Real DEALSIZE thresholds on SALES: Small below the first, Medium below the second, Large above.
    dealsize_thresholds: tuple[float, float] = (3000.0, 7000.0)
    price_cap: float = 100.0
    # Bytes per chunk of Polars' streaming CSV reader: 1 MB halves the cleaning step's peak memory on
    # large files (about 400 MiB instead of 700 MiB on five million rows) at the same speed.
    csv_chunk_bytes: int = 1_000_000
    # With `SALES_RAW_DIR` set: which files of that folder are exports (a glob relative to it, `Path.glob`
    # syntax; `**/*.csv` reaches subfolders). Write an export under another name (`x.csv.part`) and rename
    # it into place, so a half-copied file never matches.
    export_glob: str = "*.csv"
    # Rows per generated-CSV chunk; bounds the generator's memory.
    generator_chunk_rows: int = 200_000
    generator_default_rows: int = 2823
    generator_seed: int = 42

    def layout(self) -> ExportLayout:
        """What the reader expects of a sales export: the columns and which hold integers, money, dates."""
        return ExportLayout(
            columns=SOURCE_COLUMNS,
            required=tuple(self.required_columns),
            integer_columns=tuple(self.integer_columns),
            number_columns=tuple(self.float_columns),
            date_column="ORDERDATE",
            month_column="MONTH_ID",
            year_column="YEAR_ID",
        )


class WarehouseSettings(BaseModel):
    """The DuckDB file built from the Parquet layer."""

    table: str = "sales"
    # DuckDB spills to disk past this, which keeps large loads inside a small machine's memory.
    memory_limit: str = "512MB"
    threads: int = 2


class AnalyticsSettings(BaseModel):
    """Summaries, EDA, outliers and drift."""

    top_n_countries: int = 10
    iqr_factor: float = 1.5
    iqr_columns: list[str] = ["QUANTITYORDERED", "PRICEEACH", "SALES", "MSRP"]
    drift_columns: list[str] = ["SALES", "QUANTITYORDERED", "PRICEEACH"]
    drift_bins: int = 10
    psi_warn: float = 0.1
    psi_fail: float = 0.25


class MLSettings(BaseModel):
    """Regression of order-line SALES."""

    target: str = "SALES"
    numeric_features: list[str] = [
        "QUANTITYORDERED",
        "PRICEEACH",
        "ORDERLINENUMBER",
        "MSRP",
        "QTR_ID",
        "MONTH_ID",
        "YEAR_ID",
        "YEAR",
        "MONTH",
        "QUARTER",
        "PRICE_TO_MSRP_RATIO",
        "LINE_TOTAL_APPROX",
    ]
    categorical_features: list[str] = ["PRODUCTLINE", "COUNTRY", "SEASON"]
    # DEALSIZE is computed from SALES; switching it on makes every model leaky (and says so).
    include_dealsize: bool = False
    test_size: float = 0.2
    random_state: int = 42
    cv_folds: int = 5
    cv_repeats: int = 3
    # random_forest_200, random_forest_500_shallow and gradient_boosting_500 stay in the catalogue but not
    # here: they lost to the champion on all 15 CV folds of the real file (60-80 RMSE behind) and took half
    # the training (issue 25; BENCHMARKS.md "Model quality" keeps their last scores). Select them here.
    models: list[str] = [
        "linear_regression",
        "gradient_boosting_200",
        "xgboost",
        "lightgbm",
        "catboost",
        "random_forest_tuned",
        "capped_price_residual",
    ]
    tuning_iterations: int = 8
    # Worker processes for CV folds and final fits (the one level of parallelism of training; estimators
    # run single-threaded inside). Results do not depend on it.
    n_jobs: int = Field(default=2, ge=1)
    # Models train on at most this many rows (a repeatable DuckDB sample) so the graph scales. With the
    # default models, 10,000 rows take about 500 CPU-s and 1.5 GiB for the step and its workers together;
    # 20,000 took 960 CPU-s and 2.6 GiB, and the forests' size grows with the rows (BENCHMARKS.md "Whole
    # graph at scale"). The real file (2,823 rows) is used whole.
    max_training_rows: int = 10_000
    # SHAP explains training rows in batches until every feature's mean |SHAP| has a standard error of at
    # most this share of the largest one, or `shap_rows` are explained (sales_assets.ml.explain).
    shap_rows: int = 500
    shap_relative_error: float = Field(default=0.05, gt=0)
    onnx_tolerance: float = 0.01
    # Leakage guard: flag a feature whose best single-feature predictor of the target explains this much.
    leakage_r2_threshold: float = 0.95
    mlflow_tracking_uri: str | None = None  # default: sqlite under $SALES_DATA_DIR/mlflow/
    mlflow_experiment: str = "sales_regression"
    registered_model_name: str = "sales_regressor"
    champion_alias: str = "champion"
    # Which bundle CURRENT names: "champion" (only a model that won its promotion, the one the MLflow alias
    # names) or "newest_candidate" (every trained candidate, for experiments). Bundles are written either way.
    serving_policy: Literal["champion", "newest_candidate"] = "champion"


# SARIMA candidates worth trying on a monthly series of four years or more (opt in: `sarima_candidates`).
SARIMA_SPECS: list[dict[str, Any]] = [
    {"order": [1, 0, 0], "seasonal_order": [0, 1, 0, 12]},
    {"order": [0, 1, 1], "seasonal_order": [0, 1, 0, 12]},
    {"order": [1, 1, 0], "seasonal_order": [0, 1, 0, 12]},
    {"order": [0, 0, 0], "seasonal_order": [1, 1, 0, 12]},
    {"order": [1, 1, 1], "seasonal_order": [0, 0, 0, 12]},
]


class TimeseriesSettings(BaseModel):
    """Monthly forecasts and volatility per segment."""

    min_history_months: int = 18
    segment_min_months: int = 24
    forecast_steps: int = 6
    garch_horizon: int = 6
    backtest_horizon: int = 6
    # Rolling-origin backtest (issues 13, 26): the reported score is the mean RMSE over the last
    # `evaluation_origins` origins, at each of which the model is chosen on `selection_origins` origins
    # whose forecast months all come before it; the shipped forecast is chosen the same way on the last
    # selection origins. One origin of six points cannot rank models; on 29 months, horizon 6 and 3
    # selection origins leave room for exactly 4. A shorter series gets as many as fit (at least one),
    # and its report says how many. `selection_origins` is the least a choice uses: where the history
    # allows, a choice uses more, until its selection forecasts span a season (7 at horizon 6); with
    # fewer than 12 calendar months among them seasonal naive ships (selection.py).
    selection_origins: int = Field(default=3, ge=1)
    evaluation_origins: int = Field(default=4, ge=1)
    # SARIMA is off by default (issue 26): on the real file's 29 months no choice at an evaluation origin
    # can use it (a seasonal SARIMA does not estimate on the 12 to 17 months before those origins), each
    # of these five scores no better than seasonal naive there (geometric mean 1.00 to 1.76), and they
    # cost three quarters of the reports' CPU (BENCHMARKS.md). On four or more years of history they can
    # win (sales_tests/timeseries/test_selection.py): opt in with `SARIMA_SPECS` above or a subset, e.g.
    # SALES_TIMESERIES__SARIMA_CANDIDATES='[{"order": [1, 0, 0], "seasonal_order": [0, 1, 0, 12]}]'.
    sarima_candidates: list[dict[str, Any]] = []
    # statsforecast's automatic models beside the baselines (issue 26); AutoARIMA with a narrowed search
    # (`forecast.AUTO_ARIMA_SEARCH`) so that the backfill stays within its CPU budget (BENCHMARKS.md).
    statsforecast_candidates: list[str] = ["AutoTheta", "AutoETS", "AutoARIMA"]
    garch_min_observations: int = 100
    backtest_origin_step: int = 1  # months between consecutive backtest origins
    # 50 iterations left SARIMA(1,0,0)(0,1,0,12) short of convergence on 5-year series; a fit that does
    # not converge is not eligible to ship, so the optimiser gets room.
    sarima_maxiter: int = 200
    garch_maxiter: int = 500
    # A more complex model (SARIMA over a baseline, more coefficients over fewer) ships only when its
    # selection RMSE is more than this fraction below the simpler one's; ties always go to the simpler.
    # 0 ships whatever scores best; a margin such as 0.05 guards against winning by chance on a short series.
    sarima_min_improvement: float = 0.05


class AutomationSettings(BaseModel):
    """Jobs, schedules and sensors."""

    schedule_cron: str = "0 6 * * *"
    schedule_timezone: str = "UTC"
    sensor_interval_seconds: int = 60


class ClusterSettings(BaseModel):
    """The engine that executes a run's steps (docs/DEPLOY.md, "Cluster profile")."""

    # "local": one process per step on the run's machine (or all in one, by job); "celery": every step is
    # a task on the celery queue (`dagster-celery`), run by whichever worker takes it (deploy/celery/).
    executor: Literal["local", "celery"] = "local"
    # The broker and result backend the runs and the workers share (`SALES_CLUSTER__CELERY_BROKER`; the
    # worker config deploy/celery/celery.yaml reads the same variables).
    celery_broker: str = "redis://127.0.0.1:6379/0"
    celery_backend: str = "redis://127.0.0.1:6379/1"
    # A step STARTED on a worker that neither answers nor lists it for this long (seconds) is failed, and
    # its run with it (`sales_assets.cluster`): a worker that died whole reports nothing itself. A live
    # worker answers within `INSPECT_TIMEOUT_SECONDS` even while its step computes (celery's main process
    # answers, the step runs in a pool process), so the default leaves a margin for a loaded machine.
    worker_lost_seconds: float = Field(default=60.0, gt=0)


class Settings(BaseSettings):
    """Everything the code location needs to know about files and knobs."""

    model_config = SettingsConfigDict(
        env_prefix="SALES_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    # Default: data/ at the project root, so commands run from any folder find the same data.
    data_dir: Path = Field(default_factory=default_data_dir)
    raw_csv: Path | None = None  # default: $SALES_DATA_DIR/raw/sales_data_sample.csv
    # A folder of exports (`SALES_RAW_DIR`): when set, its files matching `ingest.export_glob` are the input
    # instead of `raw_csv`, one partition each (see `sales_assets.export_layer`). Unset: one CSV.
    raw_dir: Path | None = None
    # Model bundles kept by `sales-admin prune`: the newest this many, plus CURRENT's and the champion's.
    keep_bundles: int = Field(default=5, ge=1)

    ingest: IngestSettings = Field(default_factory=IngestSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    ml: MLSettings = Field(default_factory=MLSettings)
    timeseries: TimeseriesSettings = Field(default_factory=TimeseriesSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @field_validator("data_dir", "raw_csv", "raw_dir", mode="before")
    @classmethod
    def _local_locations(cls, value: object, info: ValidationInfo) -> object:
        return local_location(value, f"SALES_{info.field_name.upper()}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return settings_sources(settings_cls, init_settings, env_settings)

    # ---- paths: every file the pipeline reads or writes is named here -------------------------------

    @cached_property
    def root(self) -> Path:
        return self.data_dir.resolve()

    @property
    def raw_csv_path(self) -> Path:
        """The raw CSV as an absolute path; symlinks are not followed, so a dangling link or a link loop
        is reported as the path the user named (`sales_assets.ingest.source.check_input_file`)."""
        return Path(os.path.abspath(self.raw_csv or self.root / "raw" / "sales_data_sample.csv"))

    @property
    def landed_dir(self) -> Path:
        """Content-addressed copies of the raw CSV that `raw_csv` read; later steps read the current one."""
        return self.root / "raw" / "landed"

    @property
    def raw_dir_path(self) -> Path | None:
        """The folder of exports, resolved; None when the input is one CSV (`raw_csv_path`)."""
        return self.raw_dir.resolve() if self.raw_dir is not None else None

    @property
    def exports_clean_dir(self) -> Path:
        """The clean layer of a folder of exports: one published folder per partition (export)."""
        return self.root / "processed" / "sales_exports"

    @property
    def parquet_dir(self) -> Path:
        return self.root / "processed" / "sales_parquet"

    @property
    def rejects_path(self) -> Path:
        return self.root / "processed" / "rejects" / "sales_rejects.parquet"

    @property
    def iqr_filtered_path(self) -> Path:
        return self.root / "processed" / "sales_iqr_filtered.parquet"

    @property
    def duckdb_path(self) -> Path:
        return self.root / "duckdb" / "sales.duckdb"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def summary_dir(self) -> Path:
        return self.output_dir / "summary"

    @property
    def plots_dir(self) -> Path:
        return self.output_dir / "plots"

    @property
    def eda_dir(self) -> Path:
        return self.output_dir / "eda"

    @property
    def monitoring_dir(self) -> Path:
        return self.output_dir / "monitoring"

    @property
    def metrics_dir(self) -> Path:
        return self.output_dir / "metrics"

    @property
    def explainability_dir(self) -> Path:
        return self.output_dir / "explainability"

    @property
    def timeseries_dir(self) -> Path:
        return self.output_dir / "timeseries"

    @property
    def models_dir(self) -> Path:
        # The folder layout is the bundle contract's, so training and serving name one place.
        return bundle_models_dir(self.root, self.ml.registered_model_name)

    @property
    def model_candidate_dir(self) -> Path:
        """Where `trained_models` leaves the champion for `shap_importance` and `onnx_model` (not a bundle)."""
        return self.models_dir.parent / f"{self.ml.registered_model_name}_candidate"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.ml.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_tracking_is_server(self) -> bool:
        """Whether the tracking URI names a tracking server (http, https, databricks) rather than a store
        this process opens itself (sqlite, postgresql, a folder)."""
        uri = self.mlflow_tracking_uri
        return (urlparse(uri).scheme or uri).lower() in MLFLOW_SERVER_SCHEMES

    @property
    def mlflow_artifact_location(self) -> str | None:
        """Where a new experiment keeps its artifacts: the data folder's `mlflow/artifacts` for a store
        opened directly; None (the server's own default) for a tracking server, whose proxied artifact
        store (`mlflow server --artifacts-destination s3://...`) every host then reads alike."""
        if self.mlflow_tracking_is_server:
            return None
        return (self.mlflow_dir / "artifacts").as_uri()
