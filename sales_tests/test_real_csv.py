"""The real-data switch: which file the `real_data` tests run on, and that a file with the export's shape
but other bytes (the generated sample) never passes for it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sales_tests import real_csv
from sales_tests.real_csv import REAL_CSV_ENV, NotTheKaggleExportError, find_real_csv

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stand_in(tmp_path, generated_csv, monkeypatch) -> Path:
    """A copy of the generated sample that the lookup takes for the published export (its size and
    sha256 stand in for the Kaggle file's), with the shared copy pointed at a missing path."""
    path = tmp_path / "stand-in" / "sales_data_sample.csv"
    path.parent.mkdir()
    shutil.copy(generated_csv, path)
    monkeypatch.setattr(real_csv, "KAGGLE_BYTES", path.stat().st_size)
    monkeypatch.setattr(real_csv, "KAGGLE_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    monkeypatch.setattr(real_csv, "SHARED_COPY", tmp_path / "no-shared" / "sales_data_sample.csv")
    return path


def test_the_configured_raw_csv_is_found(stand_in):
    assert find_real_csv(None, stand_in) == (stand_in, "")
    assert find_real_csv("", stand_in) == (stand_in, "")


def test_the_explicit_file_wins_over_the_configured_one(stand_in, tmp_path):
    other = tmp_path / "elsewhere.csv"
    shutil.copy(stand_in, other)
    assert find_real_csv(str(other), stand_in) == (other.resolve(), "")


def test_the_shared_copy_is_the_fallback(stand_in, tmp_path, monkeypatch):
    monkeypatch.setattr(real_csv, "SHARED_COPY", stand_in)
    assert find_real_csv(None, tmp_path / "data" / "raw" / "sales_data_sample.csv") == (stand_in, "")


def test_same_shape_other_bytes_is_not_the_export(stand_in, tmp_path):
    # One changed digit keeps the size, the header and the row count: only the bytes tell it apart.
    altered = tmp_path / "altered.csv"
    text = stand_in.read_bytes()
    position = text.rindex(b"1")
    altered.write_bytes(text[:position] + b"2" + text[position + 1 :])
    assert altered.stat().st_size == stand_in.stat().st_size
    path, reason = find_real_csv(None, altered)
    assert path is None
    assert str(altered) in reason and REAL_CSV_ENV in reason
    with pytest.raises(NotTheKaggleExportError, match="not the published Kaggle export"):
        find_real_csv(str(altered), None)


def test_an_explicit_missing_file_is_an_error(stand_in, tmp_path):
    with pytest.raises(NotTheKaggleExportError, match="no such file"):
        find_real_csv(str(tmp_path / "missing.csv"), stand_in)


def test_pytest_runs_the_real_data_tests_on_the_file_the_variable_names(generated_csv, tmp_path):
    """End to end through the project's `real_csv_path` fixture in a pytest of its own: given the generated
    sample through SALES_TEST_REAL_CSV, a test using the fixture fails and names the variable (so the
    variable is what the fixture reads)."""
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_probe(real_csv_path):\n    assert real_csv_path.is_file()\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(probe),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "sales_tests.conftest",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, REAL_CSV_ENV: str(generated_csv)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"{REAL_CSV_ENV}={generated_csv}: not the published Kaggle export" in run.stdout


@pytest.mark.real_data
def test_the_published_file_is_recognised_where_the_readme_puts_it(real_csv_path, tmp_path):
    configured = tmp_path / "data" / "raw" / "sales_data_sample.csv"
    configured.parent.mkdir(parents=True)
    shutil.copy(real_csv_path, configured)
    assert real_csv.is_kaggle_export(configured)
    assert find_real_csv(None, configured) == (configured, "")
