"""Fixtures of the browser tests: Debian Chromium (skipped, with the install command, when it is not
installed: a test run installs nothing), a headless browser with a throw-away profile, and one
materialisation of the whole graph that the Dagster UI and the dashboard are both shown."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from sales_tests.ui.browser import PROJECT_ROOT, HeadlessChromium, usable_chromium

# Training settings that keep every kind of metadata (leaderboard, SHAP, ONNX parity) at a fraction of
# the default run's time: two models, 2-fold CV once, SHAP on 60 rows.
SMALL_RUN_ENV = {
    "SALES_ML__CV_FOLDS": "2",
    "SALES_ML__CV_REPEATS": "1",
    "SALES_ML__MODELS": '["linear_regression", "capped_price_residual"]',
    "SALES_ML__SHAP_ROWS": "60",
}
# The one time-series segment materialised: enough for the report pages and the dashboard's forecast.
SEGMENT = "ALL"


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: a temp folder, so a test run changes no tracked file. To refresh the README's
    images, run the browser tests with `SALES_SCREENSHOT_DIR=docs/img`."""
    return Path(os.environ.get("SALES_SCREENSHOT_DIR") or tmp_path)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    executable, detail = usable_chromium()
    if executable is None:
        pytest.skip(f"headless Chromium unavailable: {detail}")
    return executable


@pytest.fixture
def browser(chromium_executable: str, tmp_path: Path) -> Iterator[HeadlessChromium]:
    with HeadlessChromium(chromium_executable, tmp_path / "chromium-profile", width=1600) as chromium:
        yield chromium


@dataclass(frozen=True)
class UiData:
    """A Dagster instance (`home`) and a data folder for the UI tests; `env` is the environment a server
    reading them needs (small training settings, no SALES_RAW_CSV)."""

    home: Path
    data_dir: Path
    env: dict[str, str]


def prepare_dagster_home(home: Path) -> None:
    """The project's dagster.yaml in a fresh DAGSTER_HOME, with the UI's first-visit "join the community"
    dialog marked as seen so it covers no page."""
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")


@pytest.fixture(scope="session")
def ui_data() -> Iterator[UiData]:
    """An empty instance and data folder (a server can start on them while `materialised_graph` runs).

    The pages show absolute paths, so the data folder's path is as long as a user's checkout's
    (`/home/analyst/sales-analytics/data`, 34 characters), not as long as pytest's temp paths (60 and more).
    """
    root = Path(tempfile.mkdtemp(prefix="sales-ui-"))
    home, data_dir = root / "dagster_home", root / "checkout" / "data"
    prepare_dagster_home(home)
    env = {**os.environ, **SMALL_RUN_ENV, "DAGSTER_HOME": str(home), "SALES_DATA_DIR": str(data_dir)}
    env.pop("SALES_RAW_CSV", None)
    yield UiData(home=home, data_dir=data_dir, env=env)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def materialised_graph(ui_data: UiData) -> UiData:
    """`ui_data` after every asset of the code location was materialised in process on the generated
    sample (the same assets and resources as a CLI run, recorded in the real sqlite instance the UI reads;
    `ts_risk_reports` for one segment). The location is the single-CSV one the UI serves: it defines no
    `raw_export`/`clean_export`."""
    from sales_assets.definitions import defs
    from sales_assets.resources import build_resources
    from sales_assets.timeseries.partitions import SEGMENTS_PARTITIONS

    home, data_dir, env = ui_data.home, ui_data.data_dir, ui_data.env
    assets = [*defs.assets, *defs.asset_checks]
    partitioned = dg.AssetSelection.assets("ts_risk_reports")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("DAGSTER_HOME", "SALES_DATA_DIR", *SMALL_RUN_ENV):
            patch.setenv(name, env[name])
        patch.delenv("SALES_RAW_CSV", raising=False)
        resources = build_resources(data_dir=data_dir)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            unpartitioned = dg.AssetSelection.all() - partitioned.downstream()
            run = dg.materialize(assets, resources=resources, instance=instance, selection=unpartitioned)
            assert run.success
            if SEGMENT not in instance.get_dynamic_partitions(SEGMENTS_PARTITIONS.name):
                instance.add_dynamic_partitions(SEGMENTS_PARTITIONS.name, [SEGMENT])
            run = dg.materialize(
                assets, resources=resources, instance=instance, selection=partitioned, partition_key=SEGMENT
            )
            assert run.success
    return ui_data
