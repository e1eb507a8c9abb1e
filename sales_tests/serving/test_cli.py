"""sales-predict: schema, one JSON row, a JSON file, CSV scoring with bad rows reported by line number."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from sales_assets.ingest.generator import generate_sales_csv
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


def _write_rows(path: Path, rows: list[dict], delimiter: str = ",", encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]), delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def test_csv_in_the_projects_own_cp850_sample_scores_every_row(
    bundle_v1: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "sample.csv"
    generate_sales_csv(source, rows=300)
    assert not source.read_bytes().isascii()  # DOS letters, not UTF-8
    out = tmp_path / "scored.csv"
    assert main(["--csv", str(source), "--out", str(out)]) == 0
    assert "scored 300 rows, rejected 0" in capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    scored = list(csv.DictReader(io.StringIO(text)))
    assert len(scored) == 300 and all(float(row["predicted_SALES"]) > 0 for row in scored)
    names = {
        v for row in csv.DictReader(io.StringIO(source.read_bytes().decode("cp850"))) for v in row.values()
    }
    assert all(name in text for name in names if not name.isascii())


def test_a_european_export_scores_like_the_plain_one(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = [example_row | {"QUANTITYORDERED": q, "PRICEEACH": 95.7 - q / 10} for q in (20, 30, 45)]
    plain = _write_rows(tmp_path / "plain.csv", rows)
    european = [
        {k: str(v).replace(".", ",") if isinstance(v, float) else v for k, v in row.items()} for row in rows
    ]
    semi = _write_rows(tmp_path / "semi.csv", european, delimiter=";", encoding="cp1252")
    assert main(["--csv", str(plain), "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["--csv", str(semi), "--out", str(tmp_path / "b.csv")]) == 0
    capsys.readouterr()
    first, second = (
        [row["predicted_SALES"] for row in csv.DictReader((tmp_path / name).open(newline=""))]
        for name in ("a.csv", "b.csv")
    )
    assert first == second and len(first) == 3


def test_a_failed_run_leaves_out_untouched(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "scored.csv"
    out.write_text("last good output\n")
    missing = _write_rows(tmp_path / "missing.csv", [{k: v for k, v in example_row.items() if k != "MSRP"}])
    assert main(["--csv", str(missing), "--out", str(out)]) == 1
    assert "missing.csv: missing required column(s) MSRP" in capsys.readouterr().err
    assert out.read_text() == "last good output\n"
    assert main(["--csv", str(tmp_path / "absent.csv"), "--out", str(out)]) == 1
    assert out.read_text() == "last good output\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".scored.csv")]  # no temp left


def test_no_model_leaves_out_untouched(
    example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "scored.csv"
    out.write_text("last good output\n")
    source = _write_rows(tmp_path / "in.csv", [example_row])
    assert main(["--csv", str(source), "--out", str(out)]) == 2
    assert out.read_text() == "last good output\n"


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_out_equal_to_csv_is_refused_and_the_input_kept(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture, spelling: str
) -> None:
    source = _write_rows(tmp_path / "in.csv", [example_row])
    before = source.read_bytes()
    out = {
        "same": source,
        "dotted": tmp_path / "sub" / ".." / "in.csv",
        "symlink": tmp_path / "link.csv",
    }[spelling]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(source)
    with pytest.raises(SystemExit) as exit_:
        main(["--csv", str(source), "--out", str(out)])
    assert exit_.value.code == 2
    assert "is the input --csv" in capsys.readouterr().err
    assert source.read_bytes() == before


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", " =1+2"])
def test_scored_csv_cannot_run_spreadsheet_formulas(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture, payload: str
) -> None:
    rows = [
        example_row | {"COUNTRY": payload, "NOTE": payload, "ORDERNUMBER": "1"},
        example_row | {"QUANTITYORDERED": payload, "NOTE": "fine", "ORDERNUMBER": "2"},
        example_row | {"QUANTITYORDERED": -4, "NOTE": "-4", "ORDERNUMBER": "3"},
    ]
    source = _write_rows(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    main(["--csv", str(source), "--out", str(out)])
    capsys.readouterr()
    scored = list(csv.DictReader(out.open(newline="")))
    assert scored[0]["COUNTRY"] == "'" + payload.strip() and scored[0]["NOTE"] == "'" + payload.strip()
    assert scored[1]["QUANTITYORDERED"] == "'" + payload.strip()
    assert scored[2]["QUANTITYORDERED"] == "-4"  # a number stays a number (and is rejected as not > 0)
    assert scored[2]["NOTE"] == "'-4"  # text that starts like a formula is prefixed, even if it looks numeric
    for row in scored:
        for value in row.values():
            assert not value or value[0] not in "=+@\t\r" and not (value[0] == "-" and value != "-4")


def test_malformed_lines_are_reported_by_line_and_the_rest_scored(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = _write_rows(tmp_path / "in.csv", [example_row, example_row, example_row])
    lines = source.read_text().splitlines()
    lines[2] += ",surplus"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    assert main(["--csv", str(source), "--out", str(out)]) == 1
    assert "line 3: has 11 field(s) where the header has 10" in capsys.readouterr().err
    scored = list(csv.DictReader(out.open(newline="")))
    assert sum(bool(row["predicted_SALES"]) for row in scored) == 2


def test_csv_carries_80_and_95_percent_intervals_exact_below_the_price_cap(
    bundle_v1: Path, example_row: dict, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [
        example_row | {"PRICEEACH": 95.7},  # below the cap: SALES is quantity x price, exact
        example_row | {"PRICEEACH": 100.0, "MSRP": 170},  # capped: the true unit price is unknown
        example_row | {"QUANTITYORDERED": "-4"},  # rejected: no prediction, no bounds
    ]
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(example_row))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["--csv", str(source), "--out", str(out)]) == 1
    with out.open(newline="") as handle:
        exact, capped, rejected = list(csv.DictReader(handle))
    bounds = ["SALES_lower_80", "SALES_upper_80", "SALES_lower_95", "SALES_upper_95"]
    prediction = float(exact["predicted_SALES"])
    assert [float(exact[c]) for c in bounds] == [prediction] * 4
    predicted = float(capped["predicted_SALES"])
    low80, high80, low95, high95 = (float(capped[c]) for c in bounds)
    assert low95 < low80 < predicted < high80 < high95
    # The fixture bundle's relative bands: 80% is -10%/+12%, 95% is -20%/+25% of the prediction.
    # Cells are to the cent: a bound and the prediction each half a cent off, the bound's off by 1.25 x that.
    assert low80 == pytest.approx(predicted * 0.9, abs=0.02)
    assert high95 == pytest.approx(predicted * 1.25, abs=0.02)
    assert all(rejected[c] == "" for c in [*bounds, "predicted_SALES"]) and rejected["error"]


@pytest.mark.parametrize("header", ["=EXTRA_HEADER", "+X", "-X", "@X", "\tX"])
def test_header_cells_are_escaped_like_data_cells(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture, header: str
) -> None:
    source = _write_rows(tmp_path / "in.csv", [example_row | {header: "x"}])
    out = tmp_path / "out.csv"
    assert main(["--csv", str(source), "--out", str(out)]) == 0
    capsys.readouterr()
    written = next(csv.reader(out.open(newline="")))
    name = header.strip()  # the reader trims header names, so a leading tab or CR is gone already
    assert ("'" + name if name[0] in "=+-@" else name) in written
    assert all(not cell or cell[0] not in "=+-@\t\r" for cell in written)


def test_csv_scoring_writes_each_rows_warnings_as_json_gives_them(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = [example_row, example_row | {"COUNTRY": "Atlantis"}]
    assert main(["--json", json.dumps(rows)]) == 0
    given = json.loads(capsys.readouterr().out)["warnings"]
    row_warnings = {w["row"]: w["message"] for w in given if w["row"] is not None}
    assert list(row_warnings) == [1] and "'Atlantis' was not seen in training" in row_warnings[1]
    out = tmp_path / "out.csv"
    assert main(["--csv", str(_write_rows(tmp_path / "in.csv", rows)), "--out", str(out)]) == 0
    capsys.readouterr()
    scored = list(csv.DictReader(out.open(newline="")))
    assert [row["warnings"] for row in scored] == ["", row_warnings[1]]


def test_a_run_that_scores_nothing_never_replaces_out(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.csv"
    out.write_text("the last good scores\n")
    source = _write_rows(tmp_path / "in.csv", [example_row | {"QUANTITYORDERED": "n/a"}] * 3)
    assert main(["--csv", str(source), "--out", str(out)]) == 1
    assert "no row could be scored (3 rejected" in capsys.readouterr().err
    assert out.read_text() == "the last good scores\n"


def test_a_stop_names_the_sales_predict_flag_and_applying_it_scores_the_file(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Prices of exactly three decimals only: `95.700` could be 95700 with a thousands point.
    rows = [example_row | {"PRICEEACH": "95.700", "MSRP": "95"}]
    source = _write_rows(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    assert main(["--csv", str(source), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "set --decimal-mark (and --thousands-separator)" in error and "SALES_INGEST" not in error
    assert main(["--csv", str(source), "--out", str(out), "--decimal-mark", "."]) == 0
    assert float(next(csv.DictReader(out.open(newline="")))["PRICEEACH"]) == 95.7


def _amounts(body: dict) -> list[float]:
    """The prediction(s) and every interval bound of a --json answer (one row or a batch)."""
    if "predictions" in body:
        bounds = [v for item in body["intervals"] for v in (*item["lower"], *item["upper"])]
        return [*body["predictions"], *bounds]
    return [body["prediction"], *(v for item in body["intervals"] for v in (item["lower"], item["upper"]))]


def test_json_amounts_are_to_the_cent_unless_precision_full(
    bundle_v1: Path, example_row: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # A capped price gives interval bounds that are not whole cents, so the rounding has work to do.
    row = example_row | {"PRICEEACH": 100.0, "QUANTITYORDERED": 41}
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([example_row, row]))
    for argv in (["--json", json.dumps(row)], ["--json-file", str(path)]):
        assert main([*argv, "--precision", "full"]) == 0
        full = _amounts(json.loads(capsys.readouterr().out))
        assert main(argv) == 0
        cents = _amounts(json.loads(capsys.readouterr().out))
        assert any(round(value, 2) != value for value in full)  # the comparison below can fail
        assert cents == [round(value, 2) for value in full]
        assert main([*argv, "--precision", "cents"]) == 0
        assert _amounts(json.loads(capsys.readouterr().out)) == cents


def test_csv_amounts_are_cells_to_the_cent_unless_precision_full(
    bundle_v1: Path, example_row: dict, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(example_row))
        writer.writeheader()
        writer.writerows([example_row, example_row | {"PRICEEACH": 100.0, "QUANTITYORDERED": 41}])
    amounts = ["predicted_SALES", "SALES_lower_80", "SALES_upper_80", "SALES_lower_95", "SALES_upper_95"]

    def scored(*flags: str) -> list[str]:
        out = tmp_path / "out.csv"
        assert main(["--csv", str(source), "--out", str(out), *flags]) == 0
        with out.open(newline="") as handle:
            return [row[c] for row in csv.DictReader(handle) for c in amounts]

    cents, full = scored(), scored("--precision", "full")
    # Plain numbers a spreadsheet reads back: two decimals, no thousands separator.
    assert all(re.fullmatch(r"-?\d+\.\d{2}", cell) for cell in cents), cents
    assert any(len(cell.split(".")[1]) > 2 for cell in full)
    assert cents == [f"{float(cell):.2f}" for cell in full]


def test_an_unknown_precision_is_refused(bundle_v1: Path, example_row: dict, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--json", json.dumps(example_row), "--precision", "mills"])
    assert stopped.value.code == 2 and "--precision" in capsys.readouterr().err
