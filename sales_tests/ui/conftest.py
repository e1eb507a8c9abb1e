"""Fixtures of the browser tests: Debian Chromium (skipped, with the install command, when it is not
installed: a test run installs nothing) and a headless browser with a throw-away profile."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sales_tests.ui.browser import HeadlessChromium, usable_chromium


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
    with HeadlessChromium(chromium_executable, tmp_path / "chromium-profile") as chromium:
        yield chromium
