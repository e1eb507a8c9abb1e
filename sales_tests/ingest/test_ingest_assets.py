"""raw_csv -> clean_parquet -> duckdb_table -> summaries through Dagster, on generated, real and bad input."""

import hashlib
import re
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from sales_assets.analytics.assets import summaries
from sales_assets.ingest.assets import clean_parquet, failing_on_bad_input, raw_csv
from sales_assets.ingest.generator import generate_sales_csv
from sales_assets.resources import build_resources
from sales_assets.warehouse.defs import duckdb_table
from sales_tests.contract.exports import sample_rows, write_export

CHAIN = [raw_csv, clean_parquet, duckdb_table, summaries]


def materialize(data_dir: Path, raw: Path | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        CHAIN,
        resources=build_resources(data_dir=data_dir, raw_csv=raw),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def failure_message(result: dg.ExecuteInProcessResult, node: str) -> str:
    return result.failure_data_for_node(node).error.message


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory) -> tuple[Path, dg.ExecuteInProcessResult]:
    data_dir = tmp_path_factory.mktemp("generated-run")
    return data_dir, materialize(data_dir)


def test_missing_raw_csv_generates_the_sample_and_says_so(generated_run):
    data_dir, result = generated_run
    assert result.success
    meta = result.asset_materializations_for_node("raw_csv")[0].metadata
    assert meta["generated_sample"].value is True
    assert meta["encoding"].value == "cp850"
    assert meta["dagster/row_count"].value == 2823
    digest = hashlib.sha256((data_dir / "raw/sales_data_sample.csv").read_bytes()).hexdigest()
    # A prefix fits the UI's metadata column; the full digest is the data version.
    assert meta["sha256_prefix"].value == digest[:16]
    assert result.asset_materializations_for_node("raw_csv")[0].tags["dagster/data_version"] == digest
    assert (data_dir / "raw" / "sales_data_sample.csv").is_file()


def test_chain_writes_every_output_where_the_settings_say(generated_run):
    data_dir, result = generated_run
    assert sorted(p.name for p in (data_dir / "processed/sales_parquet").iterdir()) == [
        "YEAR=2003",
        "YEAR=2004",
        "YEAR=2005",
    ]
    assert (data_dir / "processed/rejects/sales_rejects.parquet").is_file()
    for name in ("sales_by_productline", "top_countries", "sales_by_year", "sales_by_year_month"):
        assert (data_dir / f"output/summary/{name}.csv").is_file()
        assert (data_dir / f"output/summary/{name}.parquet").is_file()
    assert (data_dir / "output/plots/sales_by_productline.png").read_bytes()[:4] == b"\x89PNG"
    top = pl.read_csv(data_dir / "output/summary/top_countries.csv")
    assert top.height == 10
    assert top["total_sales"].is_sorted(descending=True)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks
    summary_meta = result.asset_materializations_for_node("summaries")[0].metadata
    assert "![" in summary_meta["sales_by_productline_chart"].value
    assert "sales_by_productline" in summary_meta


def test_duckdb_table_has_the_contract_types(generated_run):
    data_dir, _ = generated_run
    with duckdb.connect(str(data_dir / "duckdb/sales.duckdb"), read_only=True) as conn:
        types = dict((name, dtype) for name, dtype, *_ in conn.execute("DESCRIBE sales").fetchall())
        rows = conn.execute("SELECT count(*) FROM sales").fetchone()[0]
    assert rows == 2823
    assert types["QUANTITYORDERED"] == "BIGINT"
    assert types["SALES"] == "DOUBLE"
    assert types["ORDERDATE"] == "TIMESTAMP"
    assert types["YEAR"] == types["MONTH"] == "BIGINT"
    assert types["POSTALCODE"] == types["PHONE"] == "VARCHAR"
    assert "ADDRESSLINE2" not in types


@pytest.mark.real_data
def test_real_file_facts(real_csv_path, tmp_path):
    result = materialize(tmp_path, real_csv_path)
    assert result.success
    raw_meta = result.asset_materializations_for_node("raw_csv")[0].metadata
    assert raw_meta["encoding"].value == "cp850"
    assert raw_meta["dagster/row_count"].value == 2823
    assert raw_meta["sha256_prefix"].value == "6a20c7e5ce9d8a2d"
    clean_meta = result.asset_materializations_for_node("clean_parquet")[0].metadata
    assert clean_meta["rows_rejected"].value == 0
    assert clean_meta["duplicates_removed"].value == 0
    with duckdb.connect(str(tmp_path / "duckdb/sales.duckdb"), read_only=True) as conn:
        sales = conn.sql("SELECT * FROM sales").pl()
    assert sales.height == 2823
    text = " ".join(sales.select(pl.col(pl.String)).unpivot()["value"].to_list())
    for name in ("Berguvsvägen", "Martín", "Cataluña"):
        assert name in text
    assert "\ufffd" not in text
    assert sales.filter(pl.col("TERRITORY") == "NA").height == 1074
    assert sales.filter(pl.col("STATE") == "Unknown").height == 1486
    assert sales.filter(pl.col("POSTALCODE") == "Unknown").height == 76
    by_year = pl.read_csv(tmp_path / "output/summary/sales_by_year.csv")
    assert dict(by_year.select("YEAR", "total_sales").iter_rows()) == {
        2003: 3516979.54,
        2004: 4724162.60,
        2005: 1791486.71,
    }
    assert round(sales["SALES"].sum(), 2) == 10032628.85
    assert sales["ORDERDATE"].min().isoformat() == "2003-01-06T00:00:00"
    assert sales["ORDERDATE"].max().isoformat() == "2005-05-31T00:00:00"


@pytest.fixture
def good_data_dir(tmp_path) -> Path:
    """A data dir with a complete good run, to see that a bad run leaves it untouched."""
    data_dir = tmp_path / "data"
    assert materialize(data_dir).success
    return data_dir


def outputs_digest(data_dir: Path) -> str:
    return (
        tree_digest(data_dir / "processed")
        + tree_digest(data_dir / "output")
        + tree_digest(data_dir / "duckdb")
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"ORDERNUMBER,QUANTITYORDERED\n1,2\n",
            r"bad\.csv: missing required column\(s\) PRICEEACH, ORDERLINENUMBER, SALES",
        ),
        (None, r"bad\.csv: has a header but no data rows"),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
            r"bad\.csv: line 3: holds 5 NUL bytes on 2 of 4 lines, so it is a binary file, not CSV text",
        ),
        (b"", r"bad\.csv: the file is empty"),
    ],
    ids=["missing-columns", "header-only", "binary", "empty"],
)
def test_bad_input_fails_with_one_clear_message_and_keeps_outputs(good_data_dir, tmp_path, content, expected):
    bad = tmp_path / "bad.csv"
    if content is None:  # the real header, no rows
        generate_sales_csv(bad, rows=1)
        content = bad.read_bytes().splitlines(keepends=True)[0]
    bad.write_bytes(content)
    before = outputs_digest(good_data_dir)
    result = materialize(good_data_dir, bad)
    assert not result.success
    assert re.search(expected, failure_message(result, "raw_csv"))
    assert outputs_digest(good_data_dir) == before


def test_quarantined_rows_are_counted_and_kept(tmp_path):
    source = tmp_path / "with_bad_rows.csv"
    generate_sales_csv(source, rows=200)
    lines = source.read_bytes().decode("cp850").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    quantity = header.index("QUANTITYORDERED")
    broken = lines[1].split(",")
    broken[quantity] = "n/a"
    broken[header.index("ORDERNUMBER")] = "99999"  # its own order line: not a re-sent line 2
    lines.append(",".join(broken))
    lines.append(lines[5])  # an exact duplicate
    source.write_bytes("".join(lines).encode("cp850"))
    result = materialize(tmp_path / "data", source)
    assert result.success
    meta = result.asset_materializations_for_node("clean_parquet")[0].metadata
    assert meta["rows_in"].value == 202
    assert meta["duplicates_removed"].value == 1
    assert meta["rows_rejected"].value == 1
    assert meta["dagster/row_count"].value == 200
    rejects = pl.read_parquet(tmp_path / "data/processed/rejects/sales_rejects.parquet")
    assert rejects["reason"].to_list() == ["QUANTITYORDERED 'n/a' is not a whole number"]
    assert rejects["source_line"].to_list() == [202]  # the header is line 1


def _styled_export(path: Path, edit) -> Path:
    """A 200-row export derived from the generated sample with `edit(rows)` applied to its text cells."""
    rows = sample_rows(200)
    edit(rows)
    return write_export(path, rows)


def _set(column: str, value: str, every: int):
    def edit(rows):
        for i in range(0, len(rows), every):
            rows[i][column] = value

    return edit


def _date(rows, index: int, date: str, year: str, month: str, quarter: str):
    rows[index].update(ORDERDATE=date, YEAR_ID=year, MONTH_ID=month, QTR_ID=quarter)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            _set("SALES", "abc", 10),
            r"20 of 200 rows rejected \(10\.0%\), above SALES_INGEST__MAX_REJECT_SHARE=0\.05; top reasons: "
            r"SALES not a number: 20 row\(s\) \(line 2, 12, 22\)",
        ),
        (
            lambda rows: rows[4].update(MONTH_ID="3", QTR_ID="1") if rows[4]["MONTH_ID"] != "3" else None,
            r"ORDERDATE disagrees with YEAR_ID/MONTH_ID/QTR_ID on 1 row\(s\) \(line 6\).*DATE_ORDER",
        ),
        (
            lambda rows: _date(rows, 9, "1/15/1999 0:00", "1999", "1", "1"),
            r"ORDERDATE outside the configured range on 1 row\(s\) \(line 11\)",
        ),
    ],
    ids=["reject-share", "period-mismatch", "date-out-of-range"],
)
def test_blocking_gates_stop_the_run_and_keep_the_last_good_outputs(good_data_dir, tmp_path, edit, expected):
    bad = _styled_export(tmp_path / "gated.csv", edit)
    before = outputs_digest(good_data_dir)
    result = materialize(good_data_dir, bad)
    assert not result.success
    assert result.asset_materializations_for_node("raw_csv")  # the export itself was readable
    message = failure_message(result, "clean_parquet")
    assert re.search(r"gated\.csv: .*" + expected, message), message
    assert outputs_digest(good_data_dir) == before


def test_raw_csv_counts_records_as_the_reader_does_and_records_the_dialect(tmp_path):
    path = write_export(tmp_path / "semi.csv", sample_rows(200), delimiter=";")
    lines = path.read_text().splitlines(keepends=True)
    lines[30] = lines[30].replace(";Shipped;", ';"Shipped;', 1)  # a stray quote: one broken line
    path.write_text("".join(lines))
    result = materialize(tmp_path / "data", path)
    assert result.success
    raw = result.asset_materializations_for_node("raw_csv")[0].metadata
    assert raw["dagster/row_count"].value == 200
    assert raw["malformed_lines"].value == 1
    assert (raw["delimiter"].value, raw["decimal_mark"].value, raw["date_order"].value) == (
        ";",
        ".",
        "month_first",
    )
    assert raw["encoding"].value == "utf-8"
    clean = result.asset_materializations_for_node("clean_parquet")[0].metadata
    assert clean["row_balance"].value == "200 rows in = 199 clean + 1 rejected + 0 duplicates"
    assert clean["rows_in"].value == raw["dagster/row_count"].value


def test_a_parser_error_reaches_the_user_as_one_line_naming_the_file(tmp_path):
    source = tmp_path / "x.csv"
    with pytest.raises(dg.Failure) as failure, failing_on_bad_input(source):
        raise pl.exceptions.ComputeError(
            "could not parse `12,5` as dtype `f64` at column 'SALES'\n\nhints..."
        )
    assert failure.value.description == (
        f"{source}: ComputeError: could not parse `12,5` as dtype `f64` at column 'SALES'; "
        "check the export and the SALES_INGEST__READING__DIALECT__* settings"
    )
    assert "Traceback" in failure.value.metadata["traceback"].value


def test_a_byte_the_encoding_setting_cannot_read_names_line_and_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("SALES_INGEST__READING__DIALECT__ENCODING", "utf-8")
    source = write_export(tmp_path / "dos.csv", sample_rows(200), encoding="cp850")
    assert not source.read_bytes().isascii()
    result = materialize(tmp_path / "data", source)
    assert not result.success
    message = failure_message(result, "raw_csv")
    assert re.search(
        r"dos\.csv: line \d+: byte .* is not utf-8 text .*; set SALES_INGEST__READING__DIALECT__ENCODING",
        message,
    )


def test_clean_parquet_takes_over_what_raw_csv_read_in_the_same_process(tmp_path, monkeypatch):
    # Run together in one process, the export is opened and passed over once, by raw_csv; the cleaning
    # takes that over. The cp850 sample needs a UTF-8 copy, which must outlive raw_csv's step.
    from sales_assets.ingest import assets, cleaning

    passes: list[Path] = []
    record_pass = cleaning.checked_record_pass
    monkeypatch.setattr(
        cleaning,
        "checked_record_pass",
        lambda export, *a, **k: passes.append(export.path) or record_pass(export, *a, **k),
    )
    data_dir = tmp_path / "data"
    result = dg.materialize(
        [raw_csv, clean_parquet],
        resources=build_resources(data_dir=data_dir),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert len(passes) == 1 and passes[0].parent.name == "landed"
    clean = result.asset_materializations_for_node("clean_parquet")[0].metadata
    assert clean["rows_in"].value == 2823 and clean["dialect_encoding"].value == "cp850"
    assert assets._handed is None  # taken, and its temp copy removed
    assert [p for p in (data_dir / "processed").iterdir() if p.name.startswith("tmp")] == []
    # Alone, clean_parquet reads the landed copy itself.
    alone = dg.materialize(
        [raw_csv, clean_parquet],
        resources=build_resources(data_dir=data_dir),
        instance=dg.DagsterInstance.ephemeral(),
        selection=[clean_parquet],
    )
    assert alone.success and len(passes) == 2
    assert alone.asset_materializations_for_node("clean_parquet")[0].metadata["rows_in"].value == 2823


def test_what_raw_csv_read_is_taken_over_only_for_the_same_bytes_and_settings(tmp_path):
    from sales_assets.ingest import assets
    from sales_assets.ingest.source import land
    from sales_assets.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    (tmp_path / "work").mkdir()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_export(first, sample_rows(30))
    write_export(second, sample_rows(31))
    landed = [land(p, tmp_path / "landed") for p in (first, second)]

    def kept() -> assets.Inspected:
        inspected = assets.inspect_export(landed[0].path, settings.ingest, tmp_path / "work")
        assets.hand_over(landed[0], settings, inspected)
        return inspected

    inspected = kept()
    assert assets.take_over(landed[0], settings) is inspected
    assert assets.take_over(landed[0], settings) is None  # taken once
    inspected.close()
    for other, other_settings in [
        (landed[1], settings),
        (landed[0], Settings(data_dir=tmp_path / "data", ingest={"key_conflicts": "stop"})),
    ]:
        inspected = kept()
        assert assets.take_over(other, other_settings) is None
        assert not Path(inspected.work.name).exists()  # closed when not taken


def test_what_raw_csv_hands_over_survives_the_sweep_of_a_later_run(tmp_path):
    """The refresh runs `raw_csv` in a run of its own and `clean_parquet` in the next, in one process; every
    step start sweeps temps older than the oldest live run. The handed-over copies carry this process as
    their owner, so a sweep leaves them while it lives (an unowned `tmp…` folder was removed there, and
    `clean_parquet` failed on its vanished UTF-8 copy)."""
    import time

    from sales_assets.ingest import assets
    from sales_assets.recovery import sweep_debris
    from sales_assets.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    work = settings.root / "processed"
    work.mkdir(parents=True)
    export = tmp_path / "a.csv"
    write_export(export, sample_rows(30))
    inspected = assets.inspect_export(export, settings.ingest, work)
    try:
        swept = sweep_debris(settings.root, legacy_before=time.time() + 60)
        assert Path(inspected.work.name).is_dir(), swept.removed
    finally:
        inspected.close()
