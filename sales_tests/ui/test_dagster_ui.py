"""The Dagster UI for real: the webserver `dagster dev` starts, on the project's workspace.yaml over an instance in which the
whole graph was materialised (temp DAGSTER_HOME and SALES_DATA_DIR), asked through GraphQL for the
design's assets and their upstreams, and read in headless Chromium at 1600 px: every asset page shows its
metadata without an error and without clipped text (rule: sales_tests/ui/clipping.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from sales_assets.automation import (
    DAILY_REFRESH_SCHEDULE,
    RAW_CSV_CHANGE_SENSOR,
    REFRESH_ALL_JOB,
    SEGMENTS_AFTER_REFRESH_SENSOR,
)
from sales_assets.definitions import defs
from sales_assets.settings import Settings
from sales_tests.ui.browser import PROJECT_ROOT, HeadlessChromium, free_port, stop_process, wait_for_http
from sales_tests.ui.clipping import clipped_text
from sales_tests.ui.conftest import UiData

pytestmark = pytest.mark.browser

# Loading the code location imports every group (MLflow, SHAP, statsmodels...): slow on two cores.
LOAD_TIMEOUT_SECONDS = 240

# The design's keys with the upstreams each must have as direct parents.
DIRECT_UPSTREAMS = {
    "clean_parquet": {"raw_csv"},
    "duckdb_table": {"clean_parquet"},
    "shap_importance": {"trained_models"},
    "onnx_model": {"trained_models"},
    "summaries": {"duckdb_table"},
    "trained_models": {"duckdb_table"},
    "ts_risk_reports": {"duckdb_table"},
}
DESIGN_KEYS = {"raw_csv", *DIRECT_UPSTREAMS}

ASSET_NODES_QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } groupName } }"
WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message stack } } } } } }"""
LATEST_METADATA_QUERY = """{ assetNodes { assetKey { path } isPartitioned
  assetMaterializations(limit: 1) { metadataEntries { label } } } }"""
AUTOMATION_QUERY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  jobs { name }
  schedules { name cronSchedule executionTimezone scheduleState { status } }
  sensors { name minIntervalSeconds sensorState { status } } } } } }"""


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.load(response)
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def wait_for_code_location(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait until the workspace's one code location is loaded; fail with its error if it cannot load."""
    deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS
    entries: list = []
    while time.monotonic() < deadline:
        assert process.poll() is None, f"dagster-webserver exited:\n{log.read_text(errors='replace')[-3000:]}"
        entries = graphql(url, WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [
                e["locationOrLoadError"]
                for e in entries
                if e["locationOrLoadError"]["__typename"] == "PythonError"
            ]
            assert not errors, f"code location failed to load: {errors}"
            return
        time.sleep(1)
    raise TimeoutError(f"code location not loaded in {LOAD_TIMEOUT_SECONDS} s: {entries}")


@pytest.fixture(scope="module")
def dagster_ui(materialised_graph: UiData) -> Iterator[str]:
    """The Dagster webserver over the materialised graph (started after it: two processes creating one
    sqlite instance's tables at once collide). Without `dagster dev`'s daemon, which would load the code
    location a second time: these tests read schedules and sensors, they do not run them."""
    port = free_port()
    log = materialised_graph.home.parent / f"dagster-webserver-{port}.log"
    command = [
        sys.executable,
        "-m",
        "dagster_webserver",
        "-w",
        "workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=materialised_graph.env,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/server_info", timeout=LOAD_TIMEOUT_SECONDS, process=process, log=log)
        wait_for_code_location(url, process, log)
        yield url
    finally:
        stop_process(process, grace=15)


def graph_nodes(url: str) -> list[dict]:
    return graphql(url, ASSET_NODES_QUERY)["assetNodes"]


def test_every_design_asset_is_served_with_its_upstreams(dagster_ui):
    parents = {
        "/".join(node["assetKey"]["path"]): {"/".join(dep["path"]) for dep in node["dependencyKeys"]}
        for node in graph_nodes(dagster_ui)
    }
    assert set(parents) >= DESIGN_KEYS, f"missing asset keys: {sorted(DESIGN_KEYS - set(parents))}"
    assert parents["raw_csv"] == set(), "raw_csv is the root of the graph"
    for key, upstreams in DIRECT_UPSTREAMS.items():
        assert upstreams <= parents[key], (
            f"{key} depends on {sorted(parents[key])}, expected {sorted(upstreams)}"
        )


def test_refresh_job_schedule_and_sensors_are_visible_and_off(dagster_ui):
    (repository,) = graphql(dagster_ui, AUTOMATION_QUERY)["repositoriesOrError"]["nodes"]
    assert REFRESH_ALL_JOB in {job["name"] for job in repository["jobs"]}
    settings = Settings().automation
    schedules = {s["name"]: s for s in repository["schedules"]}
    assert DAILY_REFRESH_SCHEDULE in schedules, f"schedules served: {sorted(schedules)}"
    daily = schedules[DAILY_REFRESH_SCHEDULE]
    assert (daily["cronSchedule"], daily["executionTimezone"]) == (
        settings.schedule_cron,
        settings.schedule_timezone,
    )
    assert daily["scheduleState"]["status"] == "STOPPED"
    sensors = {s["name"]: s for s in repository["sensors"]}
    assert {RAW_CSV_CHANGE_SENSOR, SEGMENTS_AFTER_REFRESH_SENSOR} <= set(sensors), (
        f"sensors served: {sorted(sensors)}"
    )
    assert sensors[RAW_CSV_CHANGE_SENSOR]["sensorState"]["status"] == "STOPPED"
    assert sensors[RAW_CSV_CHANGE_SENSOR]["minIntervalSeconds"] == settings.sensor_interval_seconds


def test_asset_graph_screenshot(dagster_ui, chromium_executable, tmp_path, screenshot_dir):
    groups = sorted({node["groupName"] for node in graph_nodes(dagster_ui)})
    # The global lineage collapses groups when there are several; `expanded` opens them all.
    expanded = ",".join(f"global@global:{group}" for group in groups)
    with HeadlessChromium(chromium_executable, tmp_path / "profile", width=1400, height=1500) as browser:
        page = browser.open(f"{dagster_ui}/asset-groups?expanded={expanded}")
        # The lineage nodes are HTML inside the graph's SVG, so their names are page text once drawn.
        browser.wait_for_text(page, ["Global asset lineage", *sorted(DESIGN_KEYS)], timeout=120)
        hidden = browser.evaluate(
            page,
            "[...document.querySelectorAll('button')]"
            ".filter(b => b.querySelector('[aria-label=\"panel_show_right\"]'))"
            ".map(b => (b.click(), 1)).length",
        )
        assert hidden == 2, "expected to fold the navigation and the asset explorer panels"
        time.sleep(3)  # the graph re-fits its zoom to the wider canvas
        shot = browser.screenshot(page, screenshot_dir / "dagster_asset_graph.png")
    assert shot.stat().st_size > 30_000


# Texts the UI shows when a page, a query or the code location fails.
UI_ERROR_TEXTS = (
    "Something went wrong",
    "Unexpected GraphQL error",
    "PythonError",
    "Traceback (most recent call last)",
    "An error occurred",
    "Could not load",
)
# The asset page shown in the README.
README_ASSET_PAGE = "summaries"


def latest_metadata_labels(url: str) -> dict[str, list[str]]:
    """Asset key -> the metadata labels of its latest materialisation that the page lists in its
    metadata table (Dagster's own `dagster/...` entries are shown elsewhere on the page)."""
    return {
        "/".join(node["assetKey"]["path"]): [
            entry["label"]
            for entry in node["assetMaterializations"][0]["metadataEntries"]
            if not entry["label"].startswith("dagster/")
        ]
        for node in graphql(url, LATEST_METADATA_QUERY)["assetNodes"]
        if node["assetMaterializations"]
    }


def test_every_asset_was_materialised(dagster_ui):
    """So the graph and the pages show what a first run produces, not a never-run graph."""
    labels = latest_metadata_labels(dagster_ui)
    served = {"/".join(node["assetKey"]["path"]) for node in graph_nodes(dagster_ui)}
    # What needs every segment's report is left out: the fixture materialises one segment.
    after_all_segments = {
        key.to_user_string()
        for key in dg.AssetSelection.assets("ts_risk_reports")
        .downstream(include_self=False)
        .resolve(defs.resolve_asset_graph())
    }
    never = served - after_all_segments - set(labels)
    assert not never, f"never materialised: {sorted(never)}"
    assert all(labels.values()), "a materialisation without metadata"


ASSET_KEYS = sorted(key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys())


@pytest.fixture(scope="module")
def page_browser(
    chromium_executable: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HeadlessChromium]:
    profile = tmp_path_factory.mktemp("asset-pages") / "profile"
    with HeadlessChromium(chromium_executable, profile, width=1600, height=1000) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def metadata_labels(dagster_ui: str) -> dict[str, list[str]]:
    return latest_metadata_labels(dagster_ui)


@pytest.mark.parametrize("key", ASSET_KEYS)
def test_asset_page_fits_at_1600_px_and_shows_no_error(
    dagster_ui, page_browser, metadata_labels, key, screenshot_dir
):
    """The asset's overview page, once its latest metadata is drawn, has no clipped text and no error."""
    page = page_browser.open(f"{dagster_ui}/assets/{key}")
    try:
        text = page_browser.wait_for_text(
            page, [key, "Definition", *metadata_labels.get(key, [])], timeout=90
        )
        errors = [phrase for phrase in UI_ERROR_TEXTS if phrase in text]
        clipped = clipped_text(page_browser, page)
        if key == README_ASSET_PAGE:
            # The status panel (freshness, asset history) fills in after the metadata: wait for it.
            page_browser.wait_for_text(page, ["Deadline:"], timeout=60)
            page_browser.screenshot(page, screenshot_dir / "dagster_asset_page.png")
    finally:
        page_browser.close_page(page)
    assert not errors, f"{key}'s page shows {errors}"
    assert not clipped, f"{key}'s page at 1600 px has clipped text:\n" + json.dumps(clipped, indent=1)
