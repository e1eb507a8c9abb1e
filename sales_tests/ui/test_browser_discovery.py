"""Finding the browser is all a test run does: with no Chromium the browser tests skip with the install
command, and nothing is run to install it (scripts/install_chromium.sh is `.ci/run`'s job)."""

from __future__ import annotations

import subprocess

from sales_tests.ui import browser


def test_missing_chromium_is_reported_not_installed(monkeypatch, tmp_path):
    commands: list = []
    monkeypatch.setattr(browser, "CHROMIUM_CANDIDATES", (str(tmp_path / "no-chromium"),))
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: commands.append(args))
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: commands.append(args))
    executable, reason = browser.usable_chromium()
    assert executable is None
    assert "scripts/install_chromium.sh" in reason
    assert commands == [], f"finding Chromium ran {commands}"


def test_a_chromium_that_does_not_start_is_reported(monkeypatch, tmp_path):
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(browser, "CHROMIUM_CANDIDATES", (str(broken),))
    executable, reason = browser.usable_chromium()
    assert executable is None
    assert "does not start" in reason and "cannot open display" in reason
