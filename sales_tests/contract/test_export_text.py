"""Export spellings of text: Unicode NFC, invisible format characters (category Cf) removed wherever
no-break spaces are trimmed, MySQL's `\\N` as a null token, backslash-escaped quotes detected from the
file (recorded, settable). Each reads to the same clean layer as the plain spelling."""

from __future__ import annotations

import unicodedata

import pytest

from sales_tests.contract.exports import clean, sample_rows, write_export


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    rows = sample_rows(200)
    rows[3]["CUSTOMERNAME"] = "Müller & Søn"
    rows[4]["CUSTOMERNAME"] = 'Testco "Scale" Models'
    return rows


def same_as_reference(rows, reference, tmp_path, **settings):
    stats, frame, rejects = clean(write_export(tmp_path / "in.csv", rows), tmp_path / "out", **settings)
    assert rejects.height == 0, rejects["reason"].to_list()[:3]
    assert frame.equals(reference)
    return stats


def test_decomposed_letters_are_composed_to_nfc(rows, reference, tmp_path):
    decomposed = [r | {"CUSTOMERNAME": unicodedata.normalize("NFD", r["CUSTOMERNAME"])} for r in rows]
    assert decomposed[3]["CUSTOMERNAME"] != rows[3]["CUSTOMERNAME"]
    same_as_reference(decomposed, reference, tmp_path)


@pytest.mark.parametrize("mark", ["\u200b", "\ufeff", "\u200d", "\u2060", "\u200e"])
@pytest.mark.parametrize("where", ["after", "before", "inside"])
def test_invisible_format_characters_are_removed(rows, reference, tmp_path, mark, where):
    def hide(value: str) -> str:
        return {"after": value + mark, "before": mark + value, "inside": value[:1] + mark + value[1:]}[where]

    spelled = [r | {"COUNTRY": hide(r["COUNTRY"]), "SALES": hide(r["SALES"])} for r in rows]
    stats = same_as_reference(spelled, reference, tmp_path)
    assert stats.dialect.unicode_tidy


def test_mysql_null_token_is_a_missing_value(rows, reference, tmp_path):
    spelled = [r | {"STATE": r["STATE"] or "\\N", "ADDRESSLINE2": r["ADDRESSLINE2"] or "\\N"} for r in rows]
    assert any(r["STATE"] == "\\N" for r in spelled)
    same_as_reference(spelled, reference, tmp_path)


def test_backslash_escaped_quotes_are_detected_and_recorded(rows, reference, tmp_path):
    plain = write_export(tmp_path / "plain.csv", rows).read_text()
    path = tmp_path / "mysql.csv"
    path.write_text(plain.replace('"Testco ""Scale"" Models"', '"Testco \\"Scale\\" Models"'))
    assert '\\"Scale\\"' in path.read_text()
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert rejects.height == 0
    assert stats.dialect.quote_escape == "backslash"
    assert stats.dialect.evidence["quote_escape"] == "a backslash-escaped quote on line 6"
    assert frame.equals(reference)


def test_the_quote_escape_setting_settles_it(rows, tmp_path):
    plain = write_export(tmp_path / "plain.csv", rows).read_text()
    path = tmp_path / "mysql.csv"
    path.write_text(plain.replace('"Testco ""Scale"" Models"', '"Testco \\"Scale\\" Models"'))
    stats, frame, _ = clean(path, tmp_path / "out", dialect={"quote_escape": "doubled"})
    assert stats.dialect.quote_escape == "doubled"
    assert stats.dialect.evidence["quote_escape"] == "from settings"
    assert 'Testco "Scale" Models' not in frame["CUSTOMERNAME"].to_list()


def test_text_without_format_characters_or_combining_marks_skips_the_unicode_pass(rows, tmp_path):
    stats, _, _ = clean(write_export(tmp_path / "plain.csv", rows), tmp_path / "out")
    assert not stats.dialect.unicode_tidy  # `Müller & Søn` is NFC already and holds no Cf
