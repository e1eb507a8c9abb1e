"""Data locations: `SALES_DATA_DIR`, `SALES_RAW_CSV` and `SALES_RAW_DIR` take a local path or a `file://`
URI; an object-store URI (no storage layer is wired in this release) or any other scheme is a settings error
that names the setting and the value, never a local folder such as `./s3:/bucket/prod`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from sales_assets.resources import SalesSettingsResource
from sales_assets.settings import Settings
from sales_tests.conftest import REPO_ROOT

SETTINGS = {"data_dir": "SALES_DATA_DIR", "raw_csv": "SALES_RAW_CSV", "raw_dir": "SALES_RAW_DIR"}


@pytest.mark.parametrize("field", sorted(SETTINGS))
@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/prod",
        "gs://bucket/prod",
        "az://container/prod",
        "abfss://c@account/prod",
        "S3://Bucket/x",
    ],
)
def test_an_object_store_uri_is_a_settings_error_naming_the_setting(field, uri):
    with pytest.raises(ValidationError) as raised:
        Settings(**{field: uri})
    message = str(raised.value)
    assert SETTINGS[field] in message and repr(uri) in message and "object store" in message


@pytest.mark.parametrize("uri", ["ftp://host/data", "hdfs://namenode/data", "s3:/bucket/prod"])
def test_an_unknown_or_mangled_scheme_is_a_settings_error(uri):
    """`s3:/bucket/prod` is what `Path("s3://bucket/prod")` gives: read as a scheme, not a folder."""
    with pytest.raises(ValidationError, match="SALES_DATA_DIR"):
        Settings(data_dir=uri)


def test_local_paths_and_file_uris_are_local_folders(tmp_path):
    assert Settings(data_dir=tmp_path / "d").root == (tmp_path / "d").resolve()
    assert Settings(data_dir=str(tmp_path / "d")).root == (tmp_path / "d").resolve()
    assert Settings(data_dir=(tmp_path / "d").as_uri()).root == (tmp_path / "d").resolve()
    assert Settings(data_dir="relative/data").data_dir == Path("relative/data")
    assert Settings(data_dir="C:/data").data_dir == Path("C:/data")  # a drive letter is not a scheme


def test_the_resource_hands_the_text_over_unmangled():
    """A `Path` made of `s3://bucket` is the local `s3:/bucket`; the resource passes the text through."""
    with pytest.raises(ValidationError, match=r"'s3://bucket/prod' names an object store"):
        SalesSettingsResource(data_dir="s3://bucket/prod").get()


def test_a_command_given_an_object_store_stops_and_writes_no_local_folder(tmp_path):
    env = {**os.environ, "SALES_DATA_DIR": "s3://bucket/prod", "SALES_SETTINGS_FILE": ""}
    done = subprocess.run(
        [sys.executable, "-m", "sales_assets.admin", "prune"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "SALES_DATA_DIR='s3://bucket/prod' names an object store" in done.stderr
    assert list(tmp_path.iterdir()) == [] and not (REPO_ROOT / "s3:").exists()
