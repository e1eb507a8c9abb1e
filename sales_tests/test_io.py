"""Atomic outputs: a failure while writing leaves the previous file or directory as it was."""

import pytest

from sales_assets.io import atomic_path, staged_directory, write_json_atomic


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
