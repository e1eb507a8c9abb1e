import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.resources import build_resources
from sales_assets.settings import Settings
from sales_assets.timeseries import defs as timeseries_defs
from sales_assets.timeseries.assets import SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE, ts_risk_reports, ts_segments
from sales_assets.timeseries.backfill import backfill_segments
from sales_assets.timeseries.cli import main
from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS

EXPECTED_SEGMENTS = [
    "ALL",
    "Classic Cars",
    "Motorcycles",
    "Classic Cars|France",
    "Classic Cars|USA",
    "Motorcycles|USA",
]


def test_defs_exports_every_list() -> None:
    for name in ("assets", "asset_checks", "jobs", "schedules", "sensors"):
        assert isinstance(getattr(timeseries_defs, name), list)
    assert {a.key.to_user_string() for a in timeseries_defs.assets} == {"ts_segments", "ts_risk_reports"}


def test_segments_register_partitions_and_drop_stale_ones(warehouse: Settings) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["Planes|Norway"])
    result = dg.materialize([ts_segments], instance=instance, resources=build_resources(warehouse.data_dir))
    assert result.success
    assert instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name) == EXPECTED_SEGMENTS
    metadata = result.asset_materializations_for_node("ts_segments")[0].metadata
    assert metadata["segments"].value == 6 and metadata["added"].value == 6 and metadata["removed"].value == 1


def test_one_partition_materialises_its_report(warehouse: Settings) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["Classic Cars|USA"])
    result = dg.materialize(
        [ts_risk_reports],
        instance=instance,
        partition_key="Classic Cars|USA",
        resources=build_resources(warehouse.data_dir),
    )
    assert result.success
    metadata = result.asset_materializations_for_node("ts_risk_reports")[0].metadata
    assert metadata["status"].value == "ok" and metadata["months"].value == 29
    assert metadata["plot"].value.startswith("![sales_ts_risk_Classic_Cars_USA](data:image/png;base64,")
    assert "seasonal_naive" in metadata["backtest_metrics"].value
    report_path = warehouse.timeseries_dir / "sales_ts_risk_Classic_Cars_USA.json"
    payload = json.loads(report_path.read_text())
    assert payload["segment"] == {"key": "Classic Cars|USA", "product_line": "Classic Cars", "country": "USA"}
    assert metadata["report_path"].value == str(report_path)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == SHIPPED_NOT_WORSE_THAN_SEASONAL_NAIVE and check.passed


def test_unknown_partition_fails_with_the_valid_segments(warehouse: Settings) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, ["Motorcycles|Japan"])
    result = dg.materialize(
        [ts_risk_reports],
        instance=instance,
        partition_key="Motorcycles|Japan",
        resources=build_resources(warehouse.data_dir),
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "'Motorcycles|Japan'" in message
    assert (
        "valid segments: ALL, Classic Cars, Motorcycles, Classic Cars|France, Classic Cars|USA, Motorcycles|USA"
        in message
    )
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_cli_writes_the_report_with_the_seed_flags(
    warehouse: Settings, capsys: pytest.CaptureFixture
) -> None:
    argv = [
        "--product-line",
        "Classic Cars",
        "--country",
        "USA",
        "--forecast-steps",
        "3",
        "--garch-horizon",
        "2",
    ]
    assert main([*argv, "--data-dir", str(warehouse.data_dir)]) == 0
    payload = json.loads((warehouse.timeseries_dir / "sales_ts_risk_Classic_Cars_USA.json").read_text())
    assert len(payload["forecast"]["points"]) == 3
    assert len(payload["risk"]["conditional_variance_forecast"]) == 2
    assert "Classic Cars|USA: status ok" in capsys.readouterr().out


def test_cli_rejects_an_unknown_segment_listing_valid_ones(
    warehouse: Settings, capsys: pytest.CaptureFixture
) -> None:
    assert (
        main(["--product-line", "Planes", "--country", "Norway", "--data-dir", str(warehouse.data_dir)]) == 2
    )
    error = capsys.readouterr().err
    assert "'Planes|Norway'" in error and "valid segments: ALL, Classic Cars, Motorcycles" in error
    assert not warehouse.timeseries_dir.exists()


def test_backfill_materialises_every_segment_in_one_call(warehouse: Settings) -> None:
    defs = dg.Definitions(
        assets=timeseries_defs.assets,
        jobs=timeseries_defs.jobs,
        resources=build_resources(warehouse.data_dir),
    )
    instance = dg.DagsterInstance.ephemeral()
    outcome = backfill_segments(defs, instance)
    assert outcome == dict.fromkeys(EXPECTED_SEGMENTS, True)
    written = sorted(p.name for p in warehouse.timeseries_dir.glob("*.json"))
    assert len(written) == 6 and "sales_ts_risk_ALL_ALL.json" in written
    with pytest.raises(ValueError, match="unknown segment"):
        backfill_segments(defs, instance, ["Trains"])


def test_reports_on_the_generated_warehouse(warehouse_data_dir: Path, tmp_path: Path) -> None:
    """The contract with `duckdb_table`: the table it builds from the generated sample feeds a report."""
    settings = Settings(data_dir=tmp_path / "data")
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copy(Settings(data_dir=warehouse_data_dir).duckdb_path, settings.duckdb_path)
    instance = dg.DagsterInstance.ephemeral()
    resources = build_resources(settings.data_dir)
    assert dg.materialize([ts_segments], instance=instance, resources=resources).success
    keys = instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name)
    assert keys[0] == "ALL" and "Classic Cars" in keys
    result = dg.materialize([ts_risk_reports], instance=instance, partition_key="ALL", resources=resources)
    assert result.success
    payload = json.loads((settings.timeseries_dir / "sales_ts_risk_ALL_ALL.json").read_text())
    assert payload["status"] == "ok" and payload["data"]["months"] >= 24
