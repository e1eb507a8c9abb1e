"""Commands as a user meets them: the choices given once last (the settings file), commands find the data
from any folder, "not found" names SALES_DATA_DIR, and no command overwrites an input without --force."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sales_assets.admin import remember
from sales_assets.settings import Settings
from sales_serving.contract import local_settings
from sales_serving.settings import ServingSettings
from sales_tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
READ_SETTINGS = (
    "from sales_assets.settings import Settings; from sales_serving.settings import ServingSettings; "
    "s = Settings(); print(s.root); print(s.raw_csv_path); print(ServingSettings().data_dir.resolve())"
)


def test_sales_generate_keeps_an_existing_input_unless_forced(project_env, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("the user's export\n")
    env = {**project_env, "SALES_RAW_CSV": str(export)}

    refused = subprocess.run(
        [str(BIN / "sales-generate"), "--rows", "10"], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert str(export) in refused.stderr and "--force" in refused.stderr
    assert export.read_text() == "the user's export\n"

    forced = subprocess.run(
        [str(BIN / "sales-generate"), "--rows", "10", "--force"], env=env, capture_output=True, text=True
    )
    assert forced.returncode == 0, forced.stderr
    assert export.read_text().startswith("ORDERNUMBER")


def test_choices_given_once_are_read_by_a_later_command_from_another_folder(
    project_env, tmp_path, monkeypatch
):
    export, data = tmp_path / "export.csv", tmp_path / "elsewhere"
    settings_file = tmp_path / "sales-settings.yaml"
    monkeypatch.setenv("SALES_SETTINGS_FILE", str(settings_file))
    settings_file.touch()
    export.write_text("ORDERNUMBER\n")  # a raw CSV that is no file is refused (issue 21)
    assert remember(data, export) == settings_file

    env = {k: v for k, v in project_env.items() if k not in ("SALES_DATA_DIR", "SALES_RAW_CSV")}
    env["SALES_SETTINGS_FILE"] = str(settings_file)
    later = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS], env=env, cwd=tmp_path.parent, capture_output=True, text=True
    )
    assert later.returncode == 0, later.stderr
    assert later.stdout.split() == [str(data), str(export), str(data)]

    # The environment still wins over the file.
    overridden = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS],
        env={**env, "SALES_DATA_DIR": str(tmp_path / "env")},
        capture_output=True,
        text=True,
    )
    assert overridden.stdout.split()[0] == str(tmp_path / "env")


def test_the_projects_settings_file_is_read_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(local_settings, "PROJECT_ROOT", tmp_path)
    monkeypatch.delenv("SALES_SETTINGS_FILE", raising=False)
    monkeypatch.delenv("SALES_DATA_DIR", raising=False)
    assert local_settings.settings_file() is None
    assert Settings().root == tmp_path / "data"

    (tmp_path / "sales-settings.yaml").write_text(f"data_dir: {tmp_path / 'chosen'}\n")
    assert local_settings.settings_file() == tmp_path / "sales-settings.yaml"
    assert Settings().root == tmp_path / "chosen"
    assert ServingSettings().data_dir == tmp_path / "chosen"
    monkeypatch.setenv("SALES_SETTINGS_FILE", "")  # empty: no file at all
    assert Settings().root == tmp_path / "data"


def test_without_settings_a_command_in_another_folder_finds_the_projects_data(project_env, tmp_path):
    env = {k: v for k, v in project_env.items() if k not in ("SALES_DATA_DIR", "SALES_RAW_CSV")}
    found = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split()[0] == str(REPO_ROOT / "data")


def test_a_settings_file_that_does_not_exist_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("SALES_SETTINGS_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        Settings()


def test_not_found_names_sales_data_dir(project_env, tmp_path):
    report = subprocess.run(
        [str(BIN / "sales-ts-report")], env=project_env, cwd=tmp_path, capture_output=True, text=True
    )
    assert report.returncode == 2
    assert "SALES_DATA_DIR" in report.stderr and project_env["SALES_DATA_DIR"] in report.stderr


def test_a_failed_check_without_description_is_reported_with_its_metadata(tmp_path, monkeypatch):
    """The quickstart's 'Checks that failed' line: a check that set no description shows its short
    metadata (real run, real instance)."""
    import dagster as dg

    from sales_assets.admin import failed_checks

    @dg.asset(check_specs=[dg.AssetCheckSpec("within_bounds", asset="measured")])
    def measured():
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name="within_bounds",
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        "max_psi": 0.351234,
                        "status": "fail",
                        "table": dg.MetadataValue.md("x" * 500),
                        "failed_segments": dg.MetadataValue.json(["A", "B", "C", "D", "E"]),
                    },
                )
            ]
        )

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([measured], instance=instance).success
    (check,) = failed_checks(since=0)
    assert check["check"] == "measured:within_bounds"
    assert check["description"] == "failed_segments=['A', 'B', 'C'] and 2 more, max_psi=0.3512, status=fail"


def test_the_summary_names_the_leaderboard_address_of_the_latest_training(tmp_path, monkeypatch):
    """The quickstart prints the MLflow UI address `trained_models` recorded last (real instance); none
    before a training."""
    import dagster as dg

    from sales_assets.admin import mlflow_leaderboard
    from sales_assets.metadata import leaderboard_link

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert mlflow_leaderboard() is None
    for experiment, recorded in (("1", dg.MetadataValue.url), ("2", leaderboard_link)):
        url = f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
        with dg.DagsterInstance.get() as instance:
            instance.report_runless_asset_event(
                dg.AssetMaterialization("trained_models", metadata={"mlflow_leaderboard": recorded(url)})
            )
        # A bare address (earlier trainings) and the Markdown link trainings record now.
        assert mlflow_leaderboard() == url
