"""sales-predict: schema, one JSON row, a JSON file, CSV scoring with bad rows reported by line number."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sales_serving.cli import main
from sales_tests.serving.conftest import VERSION_1


@pytest.fixture(autouse=True)
def data_dir_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("SALES_DATA_DIR", str(data_dir))


def test_show_schema_lists_request_fields_and_model_features(
    bundle_v1: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--show-schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "QUANTITYORDERED" in schema["request"]["required"]
    assert schema["request"]["examples"][0]["DEALSIZE"] == "Small"
    assert schema["model"]["version"] == VERSION_1
    assert schema["model"]["features"][-1]["name"] == "SEASON"


def test_json_row_prints_the_api_response(
    bundle_v1: Path, example_row: dict, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--json", json.dumps(example_row)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["model_version"] == VERSION_1
    assert body["ignored_features"] == ["DEALSIZE"]
    assert 1_500 < body["prediction"] < 4_500


def test_json_file_with_a_list_scores_each_row(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([example_row, example_row | {"QUANTITYORDERED": 60}]))
    assert main(["--json-file", str(path), "--backend", "joblib"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["count"] == 2 and body["backend"] == "joblib"
    assert body["predictions"][1] > body["predictions"][0]


def test_bad_json_row_names_the_field(
    bundle_v1: Path, example_row: dict, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--json", json.dumps(example_row | {"MONTH_ID": 14})]) == 1
    assert "--json: MONTH_ID: Input should be less than or equal to 12" in capsys.readouterr().err
    assert main(["--json", "{oops"]) == 1
    assert "--json: not valid JSON" in capsys.readouterr().err


def test_csv_scores_good_rows_and_reports_bad_ones_by_line(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "in.csv"
    columns = [*example_row, "ORDERNUMBER"]
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerow(example_row | {"ORDERNUMBER": 1})  # line 2
        writer.writerow(example_row | {"QUANTITYORDERED": "-4", "ORDERNUMBER": 2})  # line 3
        writer.writerow(
            example_row | {"DEALSIZE": "", "ORDERNUMBER": 3}
        )  # line 4: blank optional cell is fine
        writer.writerow(example_row | {"QTR_ID": 2, "ORDERNUMBER": 4})  # line 5
    out = tmp_path / "out.csv"
    assert main(["--csv", str(source), "--out", str(out)]) == 1
    errors = capsys.readouterr().err
    assert "line 3: QUANTITYORDERED: Input should be greater than 0" in errors
    assert "line 5: QTR_ID: QTR_ID 2 does not match MONTH_ID 2" in errors
    assert "scored 2 rows, rejected 2" in errors
    with out.open(newline="") as handle:
        scored = list(csv.DictReader(handle))
    assert [row["ORDERNUMBER"] for row in scored] == ["1", "2", "3", "4"]
    assert float(scored[0]["predicted_SALES"]) == pytest.approx(float(scored[2]["predicted_SALES"]))
    assert scored[1]["predicted_SALES"] == "" and "QUANTITYORDERED" in scored[1]["error"]


def test_no_model_exits_2_with_how_to(capsys: pytest.CaptureFixture, example_row: dict) -> None:
    assert main(["--json", json.dumps(example_row)]) == 2
    error = capsys.readouterr().err
    assert "CURRENT: missing" in error and "onnx_model" in error
