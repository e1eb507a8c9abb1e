"""Shared fixtures: the real export when present, generated samples, and a materialised warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.settings import Settings
from sales_tests.real_csv import REAL_CSV_ENV, NotTheKaggleExportError, find_real_csv

REPO_ROOT = Path(__file__).resolve().parents[1]
# The user's configured raw CSV, read before the line below points SALES_DATA_DIR at a temp folder.
CONFIGURED_RAW_CSV = Settings().raw_csv_path

# Tests never write into the repository's data/ or dagster_home/.
os.environ.setdefault(
    "SALES_DATA_DIR", str(Path(os.environ.get("PYTEST_TMP_DATA", "/tmp")) / "sales-tests-data")
)
# Nor read the user's choices: the project's sales-settings.yaml (written by the quickstart) is ignored.
os.environ.setdefault("SALES_SETTINGS_FILE", "")


@pytest.fixture(scope="session")
def real_csv_path() -> Path:
    """The real Kaggle export (see sales_tests/real_csv.py for where it is looked for); tests that need it
    skip when it is absent, and fail when SALES_TEST_REAL_CSV names another file."""
    try:
        path, reason = find_real_csv(os.environ.get(REAL_CSV_ENV), CONFIGURED_RAW_CSV)
    except NotTheKaggleExportError as error:
        pytest.fail(str(error))
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def generated_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded default sample (2,823 rows, seed 42), generated once per session."""
    path = tmp_path_factory.mktemp("generated") / "sales_data_sample.csv"
    generate_sales_csv(path)
    return path


def materialize_warehouse(data_dir: Path, raw_csv: Path | None = None) -> dg.ExecuteInProcessResult:
    """raw_csv -> clean_parquet -> duckdb_table under `data_dir` (sample generated when `raw_csv` is None)."""
    from sales_assets.ingest.defs import clean_parquet
    from sales_assets.ingest.defs import raw_csv as raw_csv_asset
    from sales_assets.resources import build_resources
    from sales_assets.warehouse.defs import duckdb_table

    return dg.materialize(
        [raw_csv_asset, clean_parquet, duckdb_table],
        resources=build_resources(data_dir=data_dir, raw_csv=raw_csv),
        instance=dg.DagsterInstance.ephemeral(),
    )


@pytest.fixture(scope="session")
def warehouse_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp SALES_DATA_DIR in which raw_csv, clean_parquet and duckdb_table were materialised on the
    generated sample. Treat it as read-only; copy it if a test must change it."""
    data_dir = tmp_path_factory.mktemp("warehouse")
    result = materialize_warehouse(data_dir)
    assert result.success
    return data_dir


@pytest.fixture(scope="session")
def real_warehouse_data_dir(tmp_path_factory: pytest.TempPathFactory, real_csv_path: Path) -> Path:
    """Like `warehouse_data_dir`, on the real export (skips when it is absent)."""
    data_dir = tmp_path_factory.mktemp("real-warehouse")
    result = materialize_warehouse(data_dir, raw_csv=real_csv_path)
    assert result.success
    return data_dir


@pytest.fixture(autouse=True)
def _no_dead_defs_state_storage():
    """Dagster keeps the current defs-state storage in a ContextVar that entering an instance sets. A test
    that enters an instance twice (`build_schedule_context(instance=...)` inside `instance_for_test()`)
    leaves it set after the instance is gone, and a later test resolving definitions then fails with
    "Attempted to resolve undefined DagsterInstance weakref", depending on when the garbage collector
    ran. Before each test, a storage whose instance is gone is cleared (a live one is left alone)."""
    from dagster._core.storage.defs_state.base import _current_storage

    storage = _current_storage.get()
    instance_ref = getattr(storage, "_instance_weakref", None)
    if storage is not None and instance_ref is not None and instance_ref() is None:
        _current_storage.set(None)
    yield
