"""Nothing new, nothing run (issue 25): `sales_assets.refresh` on a real Dagster instance reruns exactly what
a changed input, code or setting reaches, says why it leaves the rest, and `--force` runs everything. The
graph is small and built here (the project's jobs' names, real assets, real data versions); the project's
own code versions follow its settings (`sales_assets.code_versions`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.automation import CHEAP_CHAIN_JOB, HEAVY_JOB
from sales_assets.code_versions import GROUP_SETTINGS, group_code_version
from sales_assets.refresh import NOT_RERUN, refresh
from sales_assets.settings import MLSettings, Settings, TimeseriesSettings, WarehouseSettings


def small_graph(csv: Path, ran: list[str], model_version: str) -> dg.Definitions:
    """raw_csv (data version: the file's sha256) -> clean_parquet -> trained_models (heavy), plus an
    independent cheap asset; `model_version` stands for the ml group's code version."""

    @dg.asset(code_version="ingest-1")
    def raw_csv() -> dg.MaterializeResult:
        ran.append("raw_csv")
        return dg.MaterializeResult(data_version=dg.DataVersion(hashlib.sha256(csv.read_bytes()).hexdigest()))

    @dg.asset(deps=[raw_csv], code_version="ingest-1")
    def clean_parquet() -> None:
        ran.append("clean_parquet")

    @dg.asset(code_version="analytics-1")
    def calendar() -> None:
        ran.append("calendar")

    @dg.asset(deps=[clean_parquet], code_version=model_version)
    def trained_models() -> None:
        ran.append("trained_models")

    return dg.Definitions(
        assets=[raw_csv, clean_parquet, calendar, trained_models],
        jobs=[
            dg.define_asset_job(CHEAP_CHAIN_JOB, selection=["raw_csv", "clean_parquet", "calendar"]),
            dg.define_asset_job(HEAVY_JOB, selection=["trained_models"]),
        ],
    )


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    path.write_text("ORDERNUMBER,SALES\n10100,1.0\n")
    return path


def test_a_refresh_with_nothing_new_runs_only_the_input_read_and_says_why(csv):
    ran: list[str] = []
    defs = small_graph(csv, ran, "ml-1")
    with dg.DagsterInstance.ephemeral() as instance:
        first = refresh(defs, instance, log=lambda _: None)
        assert sorted(ran) == ["calendar", "clean_parquet", "raw_csv", "trained_models"]
        assert first.unchanged == {}
        last_runs = {
            key: instance.get_latest_materialization_event(dg.AssetKey(key)).run_id
            for key in ("clean_parquet", "trained_models")
        }
        ran.clear()
        lines: list[str] = []
        second = refresh(defs, instance, log=lines.append)
        assert ran == ["raw_csv"]
        assert second.run == []
        assert {k.to_user_string() for k in second.unchanged} == {
            "clean_parquet",
            "calendar",
            "trained_models",
        }
        for key, run_id in last_runs.items():
            assert f"{key}: not rerun, inputs unchanged since run {run_id}" in "\n".join(lines)
            observation = instance.fetch_observations(dg.AssetKey(key), limit=1).records[0]
            text = observation.asset_observation.metadata[NOT_RERUN].value
            assert text.startswith(f"not rerun: inputs unchanged since run {run_id}")
        assert lines[-1].startswith("nothing to do")


def test_a_changed_input_reruns_exactly_what_depends_on_it(csv):
    ran: list[str] = []
    defs = small_graph(csv, ran, "ml-1")
    with dg.DagsterInstance.ephemeral() as instance:
        refresh(defs, instance, log=lambda _: None)
        csv.write_text("ORDERNUMBER,SALES\n10100,2.0\n")
        ran.clear()
        plan = refresh(defs, instance, log=lambda _: None)
        assert ran == ["raw_csv", "clean_parquet", "trained_models"]
        assert [k.to_user_string() for k in plan.unchanged] == ["calendar"]
        # Touching the file (same bytes) is no change.
        csv.write_text("ORDERNUMBER,SALES\n10100,2.0\n")
        ran.clear()
        refresh(defs, instance, log=lambda _: None)
        assert ran == ["raw_csv"]


def test_a_changed_code_version_reruns_that_asset_and_force_reruns_everything(csv):
    ran: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        refresh(small_graph(csv, ran, "ml-1"), instance, log=lambda _: None)
        ran.clear()
        refresh(small_graph(csv, ran, "ml-2"), instance, log=lambda _: None)
        assert ran == ["raw_csv", "trained_models"]
        ran.clear()
        plan = refresh(small_graph(csv, ran, "ml-2"), instance, force=True, log=lambda _: None)
        assert sorted(ran) == ["calendar", "clean_parquet", "raw_csv", "trained_models"]
        assert plan.unchanged == {}


def test_a_setting_changes_the_code_version_of_the_groups_that_read_it_only():
    base = Settings()
    other_models = Settings(ml=MLSettings(models=["xgboost", "capped_price_residual"]))
    changed = {
        g for g in GROUP_SETTINGS if group_code_version(g, base) != group_code_version(g, other_models)
    }
    assert changed == {"ml"}
    steps = Settings(timeseries=TimeseriesSettings(forecast_steps=base.timeseries.forecast_steps + 1))
    assert {g for g in GROUP_SETTINGS if group_code_version(g, base) != group_code_version(g, steps)} == {
        "timeseries"
    }


def test_a_setting_that_changes_only_speed_changes_no_code_version():
    base = Settings()
    faster = Settings(
        ml=MLSettings(n_jobs=base.ml.n_jobs + 1),
        warehouse=WarehouseSettings(threads=base.warehouse.threads + 1),
    )
    assert all(group_code_version(g, base) == group_code_version(g, faster) for g in GROUP_SETTINGS)


def test_the_backfill_records_the_code_version_the_code_location_defines(
    warehouse_data_dir, tmp_path, monkeypatch
):
    """Issue 27: the backfill runs the timeseries group on its own; its materialisations carry the code
    version the whole code location (the UI) defines, never the run id Dagster records without one, so a
    clean quickstart leaves no asset "Unsynced: has a new code version"."""
    import shutil

    from sales_assets.definitions import defs
    from sales_assets.timeseries.backfill import backfill_segments, timeseries_location

    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_data_dir, data_dir)
    monkeypatch.setenv("SALES_DATA_DIR", str(data_dir))
    graph = defs.resolve_asset_graph()
    with dg.DagsterInstance.ephemeral() as instance:
        assert backfill_segments(timeseries_location(), instance, ["ALL"]) == {"ALL": True}
        recorded = {}
        for name, partitions in (("ts_segments", None), ("ts_risk_reports", ["ALL"])):
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=partitions), limit=1
            ).records
            recorded[name] = ((record.event_log_entry.tags or {}).get("dagster/code_version"), record.run_id)
    segments_version, segments_run = recorded["ts_segments"]
    assert segments_version == graph.get(dg.AssetKey("ts_segments")).code_version != segments_run
    # The reports are yielded as AssetMaterialization events, which carry no provenance: no code version
    # at all, so the UI judges them by their inputs' materialisations, never by a run id.
    assert recorded["ts_risk_reports"][0] is None
