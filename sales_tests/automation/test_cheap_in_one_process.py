"""The code location's default executor: a run whose every asset is cheap runs in the run's own process
(as the refresh's cheap chain does), a run with a heavy asset keeps a process per step, and a run whose
config sets `max_concurrent` too. Real runs through `dg.execute_job` on a persistent instance."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from sales_assets.automation import COST_TAG, cheap_in_one_process
from sales_assets.definitions import defs as project_defs
from sales_assets.definitions import local_or_cluster_executor
from sales_assets.settings import Settings


@dg.asset(tags={COST_TAG: "cheap"})
def first() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"pid": os.getpid()})


@dg.asset(tags={COST_TAG: "cheap"}, deps=[first])
def second() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"pid": os.getpid()})


@dg.asset(tags={COST_TAG: "heavy"}, deps=[second])
def heavy() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"pid": os.getpid()})


def _asset_job() -> dg.JobDefinition:
    job = dg.define_asset_job("stand_in", executor_def=cheap_in_one_process(dg.multi_or_in_process_executor))
    return dg.Definitions(assets=[first, second, heavy], jobs=[job]).resolve_job_def("stand_in")


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


def _pids(instance: dg.DagsterInstance, selection: list[str], run_config: dict | None = None) -> set[int]:
    with dg.execute_job(
        dg.reconstructable(_asset_job),
        instance,
        asset_selection=[dg.AssetKey(name) for name in selection],
        run_config=run_config,
    ) as result:
        assert result.success
        return {
            event.materialization.metadata["pid"].value for event in result.get_asset_materialization_events()
        }


def test_a_run_of_cheap_assets_runs_in_the_runs_process(instance):
    assert _pids(instance, ["first", "second"]) == {os.getpid()}


def test_a_run_with_a_heavy_asset_keeps_a_process_per_step(instance):
    pids = _pids(instance, ["second", "heavy"])
    assert pids and os.getpid() not in pids  # (one after the other, two step processes may share a pid)


def test_max_concurrent_in_the_config_keeps_a_process_per_step(instance):
    config = {"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}
    assert os.getpid() not in _pids(instance, ["first", "second"], config)


def test_the_code_location_uses_it_locally_and_celery_alone_in_the_cluster_profile():
    assert project_defs.resolve_implicit_global_asset_job_def().executor_def.name == (
        dg.multi_or_in_process_executor.name
    )
    assert "cheap assets only" in (local_or_cluster_executor(Settings()).description or "")
    cluster = Settings(cluster={"executor": "celery"})
    assert local_or_cluster_executor(cluster).name == "celery"
