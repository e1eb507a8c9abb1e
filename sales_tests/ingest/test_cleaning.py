"""Cleaning rules on tiny CSVs: typing, dates, fills, duplicates, quarantine and column handling."""

from pathlib import Path

import polars as pl
import pytest

from sales_assets.ingest.cleaning import (
    RULE_KEY_CONFLICT,
    EmptyInputError,
    KeyConflictError,
    clean_to_parquet,
    duplicate_lines,
    open_source,
    record_pass,
)
from sales_assets.settings import SOURCE_COLUMNS, IngestSettings
from sales_serving.contract.export import Dialect, MissingColumnsError, parse_dates

GOOD = {
    "ORDERNUMBER": "10107",
    "QUANTITYORDERED": "30",
    "PRICEEACH": "95.7",
    "ORDERLINENUMBER": "2",
    "SALES": "2871",
    "ORDERDATE": "2/24/2003 0:00",
    "STATUS": "Shipped",
    "QTR_ID": "1",
    "MONTH_ID": "2",
    "YEAR_ID": "2003",
    "PRODUCTLINE": "Motorcycles",
    "MSRP": "95",
    "PRODUCTCODE": "S10_1678",
    "CUSTOMERNAME": "Land of Toys Inc.",
    "PHONE": "2125557818",
    "ADDRESSLINE1": "897 Long Airport Avenue",
    "ADDRESSLINE2": "",
    "CITY": "NYC",
    "STATE": "",
    "POSTALCODE": "01022",
    "COUNTRY": "USA",
    "TERRITORY": "NA",
    "CONTACTLASTNAME": "Yu",
    "CONTACTFIRSTNAME": "Kwai",
    "DEALSIZE": "Small",
}


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(SOURCE_COLUMNS)
    lines = [",".join(columns)] + [
        ",".join(f'"{row.get(c, "")}"' if row.get(c) else "" for c in columns) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(tmp_path: Path, rows: list[dict], columns: list[str] | None = None, **settings):
    source = write_csv(tmp_path / "in.csv", rows, columns)
    stats = clean_to_parquet(
        source, tmp_path / "pq", tmp_path / "rejects.parquet", IngestSettings(**settings)
    )
    clean = pl.read_parquet(tmp_path / "pq", hive_partitioning=True) if stats.rows_clean else pl.DataFrame()
    return stats, clean, pl.read_parquet(tmp_path / "rejects.parquet")


def test_types_fills_and_derived_columns(tmp_path):
    stats, clean, rejects = run(tmp_path, [GOOD])
    assert (stats.rows_in, stats.rows_clean, stats.rows_rejected) == (1, 1, 0)
    row = clean.row(0, named=True)
    assert "ADDRESSLINE2" not in clean.columns
    assert row["STATE"] == "Unknown"
    assert row["POSTALCODE"] == "01022"  # stays a string: the leading zero survives
    assert row["PHONE"] == "2125557818"
    assert row["TERRITORY"] == "NA"  # North America, not a missing value
    assert (row["YEAR"], row["MONTH"]) == (2003, 2)
    assert str(row["ORDERDATE"]) == "2003-02-24 00:00:00"
    assert clean.schema["QUANTITYORDERED"] == pl.Int64
    assert clean.schema["SALES"] == pl.Float64
    assert rejects.height == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2/24/2003 0:00", "2003-02-24 00:00:00"),
        ("12/1/2004 13:45", "2004-12-01 13:45:00"),
        ("2004-11-05", "2004-11-05 00:00:00"),
        ("2004/11/05 08:30:00", "2004-11-05 08:30:00"),
        ("2004-11-05 08:30:00", "2004-11-05 08:30:00"),
        ("2/24/03 0:00", "2003-02-24 00:00:00"),
        ("2/24/69 0:00", "1969-02-24 00:00:00"),
        ("2/24/2003 1:05 PM", "2003-02-24 13:05:00"),
        ("37676", "2003-02-24 00:00:00"),
        ("37676.5", "2003-02-24 12:00:00"),
        ("2/30/2003", "None"),
        ("24/2/2003", "None"),
        ("not a date", "None"),
    ],
)
def test_order_dates_month_first(text, expected):
    dialect = Dialect(encoding="utf-8", has_bom=False, delimiter=",", date_order="month_first")
    parsed = pl.DataFrame({"ORDERDATE": [text]}).select(parse_dates(pl.col("ORDERDATE"), dialect))
    assert str(parsed.item()) == expected


def test_unusable_rows_are_quarantined_with_reasons(tmp_path):
    bad = [
        GOOD | {"ORDERNUMBER": "1", "QUANTITYORDERED": "thirty"},
        GOOD | {"ORDERNUMBER": "2", "QUANTITYORDERED": "0"},
        GOOD | {"ORDERNUMBER": "3", "PRICEEACH": "-5"},
        GOOD | {"ORDERNUMBER": "4", "SALES": ""},
        GOOD | {"ORDERNUMBER": "5", "ORDERDATE": "31/31/2003"},
        GOOD | {"ORDERNUMBER": "6", "COUNTRY": ""},
    ]
    stats, clean, rejects = run(tmp_path, [GOOD, *bad])
    assert (stats.rows_in, stats.rows_clean, stats.rows_rejected) == (7, 1, 6)
    reasons = dict(zip(rejects["ORDERNUMBER"], rejects["reason"], strict=True))
    assert reasons["1"] == "QUANTITYORDERED 'thirty' is not a whole number"
    assert reasons["2"] == "QUANTITYORDERED 0 is not positive"
    assert reasons["3"] == "PRICEEACH -5 is not positive"
    assert reasons["4"] == "SALES is blank"
    assert reasons["5"] == "ORDERDATE '31/31/2003' is not a month-first date"
    assert reasons["6"] == "COUNTRY is blank"
    assert rejects["source_line"].to_list() == [3, 4, 5, 6, 7, 8]
    assert sum(count.rows for count in stats.rejects_by_rule.values()) == 6


def test_exact_duplicates_are_removed_and_counted(tmp_path):
    near_twin = GOOD | {"ORDERLINENUMBER": "3"}
    stats, clean, _ = run(tmp_path, [GOOD, near_twin, GOOD, GOOD])
    assert stats.duplicates_removed == 2
    assert clean.height == 2
    assert sorted(clean["ORDERLINENUMBER"]) == [2, 3]


def test_heavily_duplicated_input_keeps_exact_counts(tmp_path):
    # An export appended to itself many times, one near twin, one rejected row repeated, one bad row once
    # (each its own order line: a repeated key with other values is a key conflict, tested below).
    distinct = [GOOD | {"ORDERLINENUMBER": str(n)} for n in range(1, 9)]
    bad = GOOD | {"QUANTITYORDERED": "-1", "ORDERLINENUMBER": "10"}
    twin = GOOD | {"CITY": "NYC ", "ORDERLINENUMBER": "9"}
    rows = distinct * 40 + [twin] + [bad] * 3 + [GOOD | {"COUNTRY": "", "ORDERLINENUMBER": "11"}]
    stats, clean, rejects = run(tmp_path, rows)
    assert stats.rows_in == 325
    assert stats.duplicates_removed == 8 * 39 + 2
    assert (stats.rows_clean, stats.rows_rejected) == (9, 2)
    assert stats.rows_in == stats.rows_clean + stats.rows_rejected + stats.duplicates_removed
    assert clean.height == 9 and rejects.height == 2
    # The first occurrence is the one kept: its line, not a later copy's, names the rejected row.
    assert sorted(rejects["source_line"]) == [323, 326]


@pytest.mark.parametrize("max_groups", [1, 3, 1000])
def test_duplicates_are_confirmed_cell_by_cell_in_bounded_slices(tmp_path, max_groups):
    rows = [GOOD | {"ORDERLINENUMBER": str(n % 5)} for n in range(60)] + [GOOD | {"ADDRESSLINE2": "x"}]
    source = write_csv(tmp_path / "in.csv", rows)
    export = open_source(source, IngestSettings(), tmp_path)
    frame = export.scan(normalise=False)
    hashes = record_pass(export).hashes
    # Every row given one hash, as if all collided: only rows equal in every cell may count as repeats.
    collided = hashes.with_columns(pl.lit(7, dtype=pl.UInt64).alias(hashes.columns[1]))
    for given in (hashes, collided):
        repeats = duplicate_lines(frame, given, max_groups=max_groups)
        assert repeats.to_list() == list(range(7, 62))  # lines 2-6 and 62 are first occurrences


def test_rows_sharing_the_key_cells_are_compared_on_every_cell(tmp_path):
    # The record pass hashes only the order-line key cells (order number, line): rows equal there but
    # not in CITY all hash alike, and only rows equal in every cell are duplicates.
    # With more such rows than a comparison slice holds, they are hashed again on every cell first.
    rows = [GOOD | {"CITY": f"City {n % 7}"} for n in range(40)]
    (tmp_path / "parts").mkdir()
    export = open_source(write_csv(tmp_path / "parts" / "in.csv", rows), IngestSettings(), tmp_path)
    hashes = record_pass(export).hashes
    assert hashes[hashes.columns[1]].n_unique() == 1
    for max_groups in (3, 1000):
        repeats = duplicate_lines(export.scan(normalise=False), hashes, max_groups=max_groups)
        assert repeats.to_list() == list(range(9, 42))  # lines 2-8 are the first of each city
    # The 7 distinct rows share one order line (ORDERNUMBER, ORDERLINENUMBER): the last (line 8) wins.
    stats, clean, rejects = run(tmp_path, rows)
    assert (stats.rows_in, stats.duplicates_removed, stats.rows_clean) == (40, 33, 1)
    assert (stats.key_conflicts, stats.rows_rejected) == (6, 6)
    assert clean["CITY"].to_list() == ["City 6"]
    assert sorted(rejects["source_line"]) == list(range(2, 8))


def test_a_line_with_too_many_fields_is_set_aside_though_the_record_pass_reads_it(tmp_path):
    # The record pass parses a few columns, so a line with one field too many passes it; the writing pass
    # parses every column, refuses the line, and the run starts again after the line check.
    source = write_csv(tmp_path / "in.csv", [GOOD, GOOD | {"ORDERLINENUMBER": "3"}, GOOD])
    lines = source.read_text().splitlines()
    lines.insert(2, lines[1] + ',"one too many"')
    source.write_text("\n".join(lines) + "\n")
    stats = clean_to_parquet(source, tmp_path / "pq", tmp_path / "rejects.parquet", IngestSettings())
    assert (stats.rows_in, stats.rows_malformed, stats.duplicates_removed, stats.rows_clean) == (4, 1, 1, 2)
    rejects = pl.read_parquet(tmp_path / "rejects.parquet")
    assert rejects["source_line"].to_list() == [3]
    assert rejects["reason"].to_list() == ["has 26 field(s) where the header has 25 (delimiter ',')"]
    assert pl.read_parquet(tmp_path / "pq").height == 2


def test_column_order_does_not_matter_and_extras_follow_config(tmp_path):
    columns = [*reversed(SOURCE_COLUMNS), "NOTES"]
    row = GOOD | {"NOTES": "call first"}
    (tmp_path / "keep").mkdir()
    (tmp_path / "drop").mkdir()
    _, kept, _ = run(tmp_path / "keep", [row], columns)
    assert kept["NOTES"].to_list() == ["call first"]
    _, dropped, _ = run(tmp_path / "drop", [row], columns, keep_extra_columns=False)
    assert "NOTES" not in dropped.columns
    assert dropped.row(0, named=True)["SALES"] == 2871.0


def test_missing_required_column_names_the_file_and_columns(tmp_path):
    columns = [c for c in SOURCE_COLUMNS if c not in ("SALES", "COUNTRY")]
    with pytest.raises(MissingColumnsError, match=r"in\.csv: missing required column\(s\) SALES, COUNTRY"):
        run(tmp_path, [GOOD], columns)


def test_header_without_rows_is_an_error(tmp_path):
    with pytest.raises(EmptyInputError, match=r"in\.csv: has a header but no data rows"):
        run(tmp_path, [])


def test_a_file_with_no_usable_row_is_an_error(tmp_path):
    with pytest.raises(
        EmptyInputError,
        match=r"in\.csv: none of its 2 rows is usable; first reasons: SALES blank: 2 row\(s\) \(line 2, 3\)",
    ):
        run(tmp_path, [GOOD | {"SALES": ""}, GOOD | {"SALES": "", "ORDERNUMBER": "9"}])


def test_absent_optional_columns_are_added_empty(tmp_path):
    columns = [c for c in SOURCE_COLUMNS if c not in ("PHONE", "STATE")]
    stats, clean, _ = run(tmp_path, [GOOD], columns)
    assert stats.absent_optional_columns == ["PHONE", "STATE"]
    assert clean.row(0, named=True)["STATE"] == "Unknown"
    assert clean.row(0, named=True)["PHONE"] is None


@pytest.mark.parametrize("policy", ["last_wins", "stop"])
def test_a_resent_order_line_with_other_values_follows_the_key_policy(tmp_path, policy):
    first = GOOD | {"STATUS": "In Process", "QUANTITYORDERED": "30", "SALES": "2871"}
    other = GOOD | {"ORDERLINENUMBER": "3"}
    resent = GOOD | {"STATUS": "Shipped", "QUANTITYORDERED": "31", "SALES": "2966.7"}
    rows = [first, other, first, resent]  # line 4 repeats line 2 exactly; line 5 re-sends it changed
    if policy == "stop":
        with pytest.raises(KeyConflictError) as raised:
            run(tmp_path, rows, key_conflicts="stop")
        assert "line 2: ORDERNUMBER/ORDERLINENUMBER 10107/2 is repeated on line 5 with other values" in str(
            raised.value
        )
        assert "set SALES_INGEST__KEY_CONFLICTS=last_wins" in str(raised.value)
        return
    stats, clean, rejects = run(tmp_path, rows, key_conflicts=policy)
    assert (stats.rows_in, stats.duplicates_removed, stats.key_conflicts, stats.rows_clean) == (4, 1, 1, 2)
    assert stats.rows_in == stats.rows_clean + stats.rows_rejected + stats.duplicates_removed
    winner = clean.filter(pl.col("ORDERLINENUMBER") == 2).row(0, named=True)
    assert (winner["STATUS"], winner["QUANTITYORDERED"], winner["SALES"]) == ("Shipped", 31, 2966.7)
    (reject,) = rejects.rows(named=True)
    assert reject["source_line"] == 2 and reject["rule"] == RULE_KEY_CONFLICT
    assert reject["reason"] == (
        "ORDERNUMBER/ORDERLINENUMBER 10107/2 is repeated with other values on line 5, which wins "
        "(SALES_INGEST__KEY_CONFLICTS=last_wins)"
    )


def test_the_stop_advice_applied_loads_the_file(tmp_path):
    rows = [GOOD, GOOD | {"STATUS": "Cancelled"}]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyConflictError):
        run(tmp_path / "a", rows, key_conflicts="stop")
    stats, clean, _ = run(tmp_path / "b", rows, key_conflicts="last_wins")
    assert clean["STATUS"].to_list() == ["Cancelled"] and stats.key_conflicts == 1


def test_without_an_order_line_key_duplicates_are_found_on_the_key_columns(tmp_path):
    # No order-line key configured: the record pass hashes KEY_COLUMNS, the date and the last column.
    rows = [GOOD | {"ORDERLINENUMBER": str(n % 4)} for n in range(12)] + [GOOD | {"CITY": "Elsewhere"}]
    settings = IngestSettings(order_line_key=[])
    export = open_source(write_csv(tmp_path / "in.csv", rows), settings, tmp_path)
    found = record_pass(export, order_key=settings.order_line_key)
    assert found.repeated and found.hashes[found.hashes.columns[1]].n_unique() == 4
    repeats = duplicate_lines(export.scan(normalise=False), found.hashes)
    assert repeats.to_list() == list(range(6, 14))  # lines 2-5 are the first of each line number
