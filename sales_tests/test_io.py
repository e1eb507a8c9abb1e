"""Atomic outputs: a failure while writing leaves the previous file or directory as it was, readers never
meet a gap or the writer's lock, output modes follow the umask, and every temp name names its writer."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sales_assets.io import (
    atomic_path,
    current_umask,
    published_versions,
    scratch_directory,
    staged_database,
    staged_directory,
    write_json_atomic,
)
from sales_serving.contract.owner import Owner
from sales_serving.contract.publish import aside_prefix

SWAPS = 300


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_mode_the_umask_allows(tmp_path, umask):
    old = os.umask(umask)
    try:
        target = write_json_atomic(tmp_path / "out.json", {"v": 1})
        with staged_database(tmp_path / "db.duckdb") as build:
            duckdb.connect(str(build)).close()
    finally:
        os.umask(old)
    for path in (target, tmp_path / "db.duckdb"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_staged_directory_swaps_whole_or_not_at_all(tmp_path):
    target = tmp_path / "dataset"
    with staged_directory(target) as stage:
        (stage / "part-1").write_text("old")
    with pytest.raises(RuntimeError), staged_directory(target) as stage:
        (stage / "part-1").write_text("new")
        raise RuntimeError("crash mid-write")
    assert (target / "part-1").read_text() == "old"
    with staged_directory(target) as stage:
        (stage / "part-2").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["part-2"]
    assert target.is_symlink()
    # Only the current version and the one just replaced remain; no staging or link debris.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["dataset", *(v.name for v in published_versions(target))]
    )
    assert len(published_versions(target)) == 2


def test_old_versions_go_after_the_grace(tmp_path, monkeypatch):
    monkeypatch.setattr("sales_assets.io.VERSION_GRACE_SECONDS", 0.0)
    target = tmp_path / "dataset"
    for i in range(4):
        with staged_directory(target) as stage:
            (stage / "part").write_text(str(i))
    versions = published_versions(target)
    assert len(versions) == 2
    assert (target / "part").read_text() == "3"
    assert target.resolve() == versions[-1]


def test_a_real_directory_at_the_target_is_migrated(tmp_path):
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "part-1").write_text("legacy")
    with staged_directory(target) as stage:
        (stage / "part-1").write_text("new")
    assert target.is_symlink()
    assert (target / "part-1").read_text() == "new"
    (legacy, _current) = published_versions(target)
    assert (legacy / "part-1").read_text() == "legacy"


READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import duckdb, polars as pl
    from sales_assets.parquet_layer import parquet_glob, resolve_layer
    kind, target, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    ok, failures = 0, []
    while not stop.exists():
        try:
            if kind == "parquet":
                layer = resolve_layer(Path(target))
                rows = pl.scan_parquet(layer, hive_partitioning=True).select(pl.len()).collect().item()
                (n,) = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [parquet_glob(Path(target))]).fetchall()[0]
                assert rows == n == 200, (rows, n)
            else:
                with duckdb.connect(target, read_only=True) as conn:
                    (n,) = conn.execute("SELECT count(*) FROM sales").fetchall()[0]
                assert n == 200, n
            ok += 1
        except BaseException as error:  # every failure (Polars panics too) is counted, not raised
            failures.append(repr(error)[:200])
    print(json.dumps({"ok": ok, "failures": failures}))
    """
)


def _run_with_reader(kind: str, target: Path, tmp_path: Path, publish) -> dict:
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, kind, str(target), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.0)  # the reader is importing Polars and DuckDB and started looping
        for i in range(SWAPS):
            publish(i)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    return json.loads(out)


def _frame(i: int) -> pl.DataFrame:
    return pl.DataFrame({"ORDERNUMBER": range(200), "SALES": [float(i)] * 200, "YEAR": [2003, 2004] * 100})


def test_300_layer_swaps_with_a_reader_looping_never_fail_a_read(tmp_path):
    target = tmp_path / "processed" / "sales_parquet"
    target.parent.mkdir()
    target.mkdir()  # the layout before versions: migrated on the first publish, under the reader
    _frame(0).write_parquet(target, partition_by="YEAR")

    def publish(i: int) -> None:
        with staged_directory(target) as stage:
            _frame(i).write_parquet(stage, partition_by="YEAR")

    outcome = _run_with_reader("parquet", target, tmp_path, publish)
    assert outcome["ok"] > 0
    assert outcome["failures"] == []


def test_300_database_rebuilds_with_read_only_opens_looping_never_fail(tmp_path):
    target = tmp_path / "sales.duckdb"

    def publish(i: int) -> None:
        with staged_database(target) as build, duckdb.connect(str(build)) as conn:
            conn.execute("CREATE TABLE sales AS SELECT range AS ORDERNUMBER, ? AS run FROM range(200)", [i])

    publish(-1)
    outcome = _run_with_reader("duckdb", target, tmp_path, publish)
    assert outcome["ok"] > 0
    assert outcome["failures"] == []


def test_a_failed_rebuild_leaves_the_old_database_and_no_debris(tmp_path):
    target = tmp_path / "sales.duckdb"
    with staged_database(target) as build, duckdb.connect(str(build)) as conn:
        conn.execute("CREATE TABLE sales AS SELECT 1 AS x")
    with pytest.raises(RuntimeError), staged_database(target) as build, duckdb.connect(str(build)) as conn:
        conn.execute("CREATE TABLE sales AS SELECT 2 AS x")
        raise RuntimeError("crash mid-build")
    with duckdb.connect(str(target), read_only=True) as conn:
        assert conn.execute("SELECT x FROM sales").fetchall() == [(1,)]
    assert [p.name for p in tmp_path.iterdir()] == ["sales.duckdb"]


def test_scratch_directory_goes_at_the_end_and_names_its_process(tmp_path):
    """(What recovery sweeps of a dead owner: sales_tests/operations/test_recovery.py.)"""
    target = tmp_path / "models" / "training"
    with scratch_directory(target) as folder:
        (folder / "random_forest_200.joblib").write_bytes(b"x" * 10)
        assert folder.parent == target.parent and folder.name.startswith(aside_prefix(target, "tmp"))
        assert f"-{Owner.this_process()}-" in folder.name
    assert not folder.exists()
    with pytest.raises(RuntimeError), scratch_directory(target) as folder:
        raise RuntimeError("training failed")
    assert not folder.exists()


def test_umask_reading_does_not_change_it():
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    finally:
        os.umask(old)


@pytest.mark.parametrize("size", [0, 1, 4096, 10_000])
def test_sha256_file_hashes_every_byte_whatever_the_slices(tmp_path, size):
    from sales_assets.io import sha256_file

    path = tmp_path / "bytes.bin"
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_file(path, chunk_bytes=1000) == expected  # slices that do not divide the file


def test_land_copies_then_names_the_copy_by_its_digest(tmp_path):
    from sales_assets.ingest.source import land

    source = tmp_path / "export.csv"
    source.write_bytes(b"ORDERNUMBER,SALES\n10100,1.5\n" * 1000)
    landed = land(source, tmp_path / "landed")
    assert landed.path.name == f"{hashlib.sha256(source.read_bytes()).hexdigest()}.csv"
    assert landed.path.read_bytes() == source.read_bytes() and landed.bytes == source.stat().st_size
    assert not landed.path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # read-only
    assert [p.name for p in landed.path.parent.iterdir()] == [landed.path.name]  # no temp left
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert land(empty, tmp_path / "landed").sha256 == hashlib.sha256(b"").hexdigest()
