"""Publication whole or not at all (`sales_assets.ml.publication`), on a real MLflow registry: a publisher
killed (SIGKILL, a real process) at each step leaves bundle, record, alias and CURRENT either as before or
repairable to the last committed record, and `reconcile` repairs them and says so; registration alone never
moves the alias; a promotion decided against a champion that has since changed is not applied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sales_assets.ml.publication import Verdict, publication_lock, publish, reconcile, repair, still_valid
from sales_assets.ml.tracking import alias_version, configure_mlflow
from sales_assets.settings import Settings
from sales_serving.contract.bundle import read_current, read_publication
from sales_tests.serving.bundle_factory import write_bundle

ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND = "20261201T000000Z-aaaaaaaa", "20261202T000000Z-bbbbbbbb"
# Where the child dies: the name in `sales_assets.ml.publication` (or tracking) replaced by a SIGKILL.
KILL_POINTS = {
    "before the record": "sales_assets.ml.publication.commit_publication",
    "inside the record's rename": "os.replace",
    "before the alias": "sales_assets.ml.tracking.point_alias",
    "before CURRENT": "sales_assets.ml.publication.point_current",
}


@pytest.fixture
def published(tmp_path: Path) -> Settings:
    """Two registered versions with a bundle each; the first published (record 1, alias v1, CURRENT)."""
    settings = Settings(data_dir=tmp_path / "data")
    configure_mlflow(settings)
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    name = settings.ml.registered_model_name
    client.create_registered_model(name)
    for version, bundle in (("1", FIRST), ("2", SECOND)):
        client.create_model_version(name, source=str(tmp_path / f"model-{version}"))
        write_bundle(
            settings.models_dir,
            bundle,
            [0],
            b"graph",
            make_current=False,
            metadata_overrides={
                "lineage": {
                    "dagster_run_id": f"run-{version}",
                    "mlflow_run_id": None,
                    "mlflow_model_version": version,
                    "data_sha256": "0" * 64,
                }
            },
        )
    publish(settings, FIRST, Verdict(True, True, "first champion"), "1", "run-1")
    return settings


def state(settings: Settings) -> tuple[int | None, str | None, str | None]:
    record = read_publication(settings.models_dir)
    return (record.sequence if record else None, alias_version(settings), read_current(settings.models_dir))


def test_the_first_publication_commits_the_record_then_alias_and_current(published: Settings) -> None:
    record = read_publication(published.models_dir)
    assert (record.version, record.mlflow_model_version, record.champion_version) == (FIRST, "1", "1")
    assert state(published) == (1, "1", FIRST)
    assert reconcile(published) == []


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_publisher_killed_at_each_step_is_repaired_to_the_last_record(
    published: Settings, point: str
) -> None:
    target = KILL_POINTS[point]
    module, _, attribute = target.rpartition(".")
    only_the_record = (
        "if 'publication.json' in str(a[1]) else _real(*a, **k)" if target == "os.replace" else ""
    )
    script = textwrap.dedent(
        f"""
        import importlib, os, signal
        from sales_assets.ml import publication, tracking
        from sales_assets.settings import Settings
        module = importlib.import_module({module!r})
        _real = getattr(module, {attribute!r})
        def _die(*a, **k):
            return os.kill(os.getpid(), signal.SIGKILL) {only_the_record}
        setattr(module, {attribute!r}, _die)
        settings = Settings(data_dir={str(published.data_dir)!r})
        publication.publish(settings, {SECOND!r}, publication.Verdict(True, True, "beats"), "2", "run-2")
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    committed = point in ("before the alias", "before CURRENT")
    if not committed:
        # Died before the record: the old publication stands whole; nothing to repair.
        assert state(published) == (1, "1", FIRST)
        with publication_lock(published.models_dir):
            assert reconcile(published) == []
        return
    assert read_publication(published.models_dir).version == SECOND
    repairs = repair(published)  # what `sales-admin recover` and every training and export run
    assert repairs and all(line.startswith("publication repaired: ") for line in repairs)
    assert all("moved back to it" in line for line in repairs)
    assert any(f"CURRENT named {FIRST}" in line for line in repairs)
    assert state(published) == (2, "2", SECOND)
    assert reconcile(published) == []


def test_a_promotion_against_a_champion_that_changed_is_not_applied() -> None:
    decided = {
        "promote": True,
        "reason": "held-out RMSE 500.00 beats the champion's 558.92",
        "incumbent_version": "1",
    }
    assert still_valid(decided, "1") == (True, decided["reason"])
    promote, reason = still_valid(decided, "2")
    assert not promote and "compared with v1, but v2 was published as champion since" in reason
    first = {"promote": True, "reason": "first champion", "incumbent_version": None}
    assert not still_valid(first, "1")[0]


def test_a_verdict_that_does_not_serve_commits_nothing(published: Settings) -> None:
    record, lines = publish(published, SECOND, Verdict(False, False, "does not beat"), "2", "run-2")
    assert record is None and "CURRENT and the alias stay" in lines[0]
    assert state(published) == (1, "1", FIRST)


def test_newest_candidate_serves_without_moving_the_alias(published: Settings) -> None:
    record, _ = publish(published, SECOND, Verdict(True, False, "policy newest_candidate"), "2", "run-2")
    assert (record.version, record.mlflow_model_version, record.champion_version) == (SECOND, "2", "1")
    assert state(published) == (2, "1", SECOND)


def test_registration_alone_never_moves_the_alias(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    from sales_assets.ml.tracking import decide_promotion, log_model_run, parent_run, register_champion

    settings = Settings(data_dir=tmp_path / "data")
    x = pd.DataFrame({"QUANTITYORDERED": np.arange(1.0, 21.0)})
    pipeline = Pipeline([("model", LinearRegression())]).fit(x, 3 * x["QUANTITYORDERED"])
    configure_mlflow(settings)
    _, uri = log_model_run("toy", pipeline, {}, {"cv_rmse_mean": 1.0}, {}, x.head(3))
    with parent_run(settings, "parent", {"dagster_run_id": "toy"}):
        decision = decide_promotion(1.0, None)
        assert decision.promote
        assert register_champion(settings, uri, decision, {}) == "1"
    assert alias_version(settings) is None


def _copy_of(ml_run, tmp_path: Path) -> Settings:
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(ml_run.data_dir, data_dir)
    return Settings(data_dir=data_dir)


def test_onnx_model_alone_on_an_exported_candidate_publishes_nothing_new(ml_run, tmp_path, fast_ml_env):
    from sales_assets.ml.assets import onnx_model
    from sales_tests.ml.conftest import materialize_ml

    settings = _copy_of(ml_run, tmp_path)
    bundles = sorted(path.name for path in settings.models_dir.iterdir())
    before = (read_publication(settings.models_dir), *state(settings))
    assert before[0] is not None and before[0].sequence == 1

    result = materialize_ml(settings.data_dir, [onnx_model])

    assert result.success
    assert sorted(path.name for path in settings.models_dir.iterdir()) == bundles
    assert (read_publication(settings.models_dir), *state(settings)) == before
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["reused"].value is True


def test_an_export_cut_short_before_its_record_is_finished_by_the_next_run(ml_run, tmp_path, fast_ml_env):
    """The first publication killed after the bundle was written: no record, no alias, no CURRENT."""
    from sales_assets.ml.assets import onnx_model
    from sales_tests.ml.conftest import materialize_ml

    settings = _copy_of(ml_run, tmp_path)
    bundles = sorted(path.name for path in settings.models_dir.iterdir())
    (bundle,) = [name for name in bundles if name[0].isdigit()]
    (settings.models_dir / "publication.json").unlink()
    (settings.models_dir / "CURRENT").unlink()
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    client.delete_registered_model_alias(settings.ml.registered_model_name, settings.ml.champion_alias)

    assert materialize_ml(settings.data_dir, [onnx_model]).success

    assert sorted(path.name for path in settings.models_dir.iterdir()) == bundles
    assert state(settings) == (1, "1", bundle)


def test_a_candidate_replaced_by_another_training_is_not_published_by_this_run(ml_run, tmp_path, fast_ml_env):
    """Between this run's training and its export another training replaces the candidate on disk (here
    its card, rewritten by a hook at that very point): the export refuses it instead of publishing another
    run's model under this run's name."""
    import json

    import dagster as dg

    from sales_assets.ml.assets import onnx_model, trained_models
    from sales_assets.resources import build_resources

    settings = _copy_of(ml_run, tmp_path)
    before = (read_publication(settings.models_dir), *state(settings))
    bundles = sorted(path.name for path in settings.models_dir.iterdir())

    @dg.success_hook
    def another_training_lands(context: dg.HookContext) -> None:
        if context.op.name != "trained_models":
            return
        card_path = settings.model_candidate_dir / "candidate.json"
        card = json.loads(card_path.read_text())
        card["lineage"]["dagster_run_id"] = "bbbbbbbb-another-run"
        card_path.write_text(json.dumps(card))

    job = dg.define_asset_job(
        "crossing", selection=["trained_models", "onnx_model"], hooks={another_training_lands}
    )
    definitions = dg.Definitions(
        assets=[trained_models, onnx_model], jobs=[job], resources=build_resources(data_dir=settings.data_dir)
    )
    result = definitions.resolve_job_def("crossing").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "another training replaced it" in str(failure.event_specific_data.error)
    assert sorted(path.name for path in settings.models_dir.iterdir()) == bundles
    assert (read_publication(settings.models_dir), *state(settings)) == before


def test_two_trainings_started_a_second_apart_never_cross(warehouse_data_dir, tmp_path) -> None:
    """Two `sales-dagster asset materialize --select trained_models,onnx_model` one second apart, as real
    processes on one instance: whatever order the pool gives them, every bundle holds the model of the run
    that names it, the alias and CURRENT follow the last record, and at most one run publishes per
    champion it was compared with."""
    import json
    import shutil
    import time

    from sales_tests.ml.conftest import FAST_ML_ENV

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home)
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_data_dir, data_dir, symlinks=True)
    env = {
        **os.environ,
        **FAST_ML_ENV,
        "PYTHONPATH": str(ROOT),
        "DAGSTER_HOME": str(home),
        "SALES_DATA_DIR": str(data_dir),
        "SALES_SETTINGS_FILE": "",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("SALES_RAW_CSV", None)
    command = [
        str(Path(sys.executable).with_name("sales-dagster")),
        "asset",
        "materialize",
        "-m",
        "sales_assets.definitions",
        "--select",
        "trained_models,onnx_model",
    ]
    first = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(1)
    second = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    outputs = [process.communicate(timeout=900)[0] for process in (first, second)]
    codes = [first.returncode, second.returncode]
    # One may refuse to publish the other's candidate (it failed, saying so); at least one publishes.
    assert 0 in codes, outputs[0][-3000:] + outputs[1][-3000:]
    for code, output in zip(codes, outputs, strict=True):
        assert code == 0 or "another training replaced it" in output, output[-3000:]

    settings = Settings(data_dir=data_dir)
    bundles = [path for path in settings.models_dir.iterdir() if path.is_dir() and path.name[0].isdigit()]
    assert bundles
    for bundle in bundles:
        lineage = json.loads((bundle / "metadata.json").read_text())["lineage"]
        assert bundle.name.endswith(lineage["dagster_run_id"][:8])  # its own run's model
    record = read_publication(settings.models_dir)
    assert record is not None and repair(settings) == []
    assert state(settings) == (record.sequence, record.champion_version, record.version)
    promoted = [json.loads((b / "metadata.json").read_text())["promotion"]["promoted"] for b in bundles]
    assert promoted.count(True) == 1  # the first champion only: the other was compared with nothing, too


def test_sales_admin_recover_repairs_a_publication_left_apart(published: Settings, tmp_path: Path) -> None:
    """The command an operator runs after a kill: `sales-admin recover` moves CURRENT back to the last
    committed record and says so (here CURRENT was moved off the record by hand, as a kill between the
    record and CURRENT leaves it)."""
    from sales_serving.contract.bundle import point_current

    point_current(published.models_dir, FIRST)
    record = read_publication(published.models_dir)
    assert record.version == FIRST
    # A second, committed publication whose CURRENT never moved: what a kill "before CURRENT" leaves.
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal\nfrom sales_assets.ml import publication\n"
            "publication.point_current = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
            "from sales_assets.settings import Settings\n"
            f"publication.publish(Settings(data_dir={str(published.data_dir)!r}), {SECOND!r}, "
            "publication.Verdict(True, True, 'beats'), '2', 'run-2')\n",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert read_current(published.models_dir) == FIRST
    home = tmp_path / "dagster_home"
    home.mkdir()
    recovered = subprocess.run(
        [sys.executable, "-m", "sales_assets.admin", "recover"],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SALES_DATA_DIR": str(published.data_dir),
            "DAGSTER_HOME": str(home),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert recovered.returncode == 0, recovered.stderr[-2000:]
    assert f"CURRENT named {FIRST}" in recovered.stdout and "moved back to it" in recovered.stdout
    assert state(published) == (2, "2", SECOND)
