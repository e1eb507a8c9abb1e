"""Encoding on evidence, one export per candidate encoding with names in its own script: each is read as
an encoding that renders the names right (code pages that agree on every byte of the file are one answer),
or, where another code page reads the same bytes as letters just as plausible, stops naming both."""

from __future__ import annotations

import codecs
import re

import pytest

from sales_serving.contract.export import ExportError, ExportReading
from sales_tests.contract.exports import clean, sample_rows, write_export

CANDIDATES = [codecs.lookup(name).name for name in ExportReading().candidate_encodings]
NAMES = {
    "cp850": "Berguvsvägen Åkergatan",
    "cp437": "Berguvsvägen Ärla",
    "cp1252": "Müller “Nord” – Café 4€",
    "cp1250": "Hurtownia Śląsk Łódź",
    "cp1251": "Москва Торговый Дом",
    "cp1253": "Αθήνα Εμπορική Εταιρεία",
    "cp1254": "İstanbul Ticaret Şirketi Ğ",
    "cp1257": "Kauno Prekyba Ąžuolynė",
    "iso8859-1": "Société Générale Ærø",
    "iso8859-2": "Hurtownia Śląsk Łódź",
    "iso8859-5": "Москва Торговый Дом",
    "iso8859-7": "Αθήνα Εμπορική Εταιρεία",
    "iso8859-15": "Œuvres d’Été 4€".replace("’", "'"),
    "mac_roman": "Café Müller Société",
    "cp852": "Hurtownia Śląsk Łódź",
    "cp866": "Москва Торговый Дом",
    "koi8_r": "Москва Торговый Дом",
    "cp932": "東京都 株式会社やまと商事",
    "euc_jp": "東京都 株式会社やまと商事",
    "gb18030": "北京市 贸易有限公司",
    "big5": "臺北市 貿易有限公司",
    "euc_kr": "서울 무역 주식회사",
}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    # ASCII everywhere but CUSTOMERNAME, so the names are the file's only non-ASCII text.
    return [{k: v.encode("ascii", "replace").decode() for k, v in row.items()} for row in sample_rows(200)]


@pytest.mark.parametrize("encoding", list(NAMES))
def test_each_encoding_is_read_right_from_names_in_its_script(rows, tmp_path, encoding):
    name = NAMES[encoding]
    named = [row | {"CUSTOMERNAME": name} for row in rows]
    path = write_export(tmp_path / "names.csv", named, encoding=encoding)
    try:
        stats, frame, rejects = clean(path, tmp_path / "out")
    except ExportError as error:
        # A clear stop: the top two named, one of them the right one, and the setting that picks it.
        message = str(error)
        assert "reads about as well as" in message and "DIALECT__ENCODING" in message, message
        head = message.split("; set ")[0]
        named = [c for c in CANDIDATES if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", head)]
        assert any(path.read_bytes().decode(e) == path.read_bytes().decode(encoding) for e in named), named
        stats, frame, rejects = clean(path, tmp_path / "set", dialect={"encoding": encoding})
    assert rejects.height == 0
    assert path.read_bytes().decode(stats.dialect.encoding) == path.read_bytes().decode(encoding)
    assert set(frame["CUSTOMERNAME"]) == {name}


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_without_a_bom_are_read_from_their_nul_pattern(rows, tmp_path, encoding):
    name = "Berguvsvägen Åkergatan"
    path = write_export(
        tmp_path / "wide.csv", [row | {"CUSTOMERNAME": name} for row in rows], encoding=encoding
    )
    assert not path.read_bytes().startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert stats.dialect.encoding == encoding and rejects.height == 0
    assert set(frame["CUSTOMERNAME"]) == {name} and frame.height == 200


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_cjk_without_a_bom_is_read_from_nul_bytes_at_one_position(rows, tmp_path, encoding):
    # CJK units hold no NUL, but an export's digits, delimiters and line ends put a NUL at every
    # other byte position (UTF-16 LE: odd, BE: even) and never at the other.
    name = "東京都 株式会社やまと商事 " * 6
    path = write_export(
        tmp_path / "wide.csv", [row | {"CUSTOMERNAME": name} for row in rows], encoding=encoding
    )
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert stats.dialect.encoding == encoding and rejects.height == 0
    assert set(frame["CUSTOMERNAME"]) == {name.strip()} and frame.height == 200


# One or two words carry the file's only non-ASCII letters: each is read right, or stops naming the
# reading each code page gives and the ENCODING value for it, and that value then reads it right.
FEW_LETTERS = [
    ("cp1254", "İstanbul"),
    ("cp1254", "İzmir Ticaret"),
    ("cp1254", "Şişli"),
    ("cp1254", "Ağrı Ğ"),
    ("cp1257", "Rīga"),
    ("cp1257", "Liepāja"),
    ("cp1257", "Kaunas Ė"),
    ("cp1257", "Šiauliai"),
    ("iso8859-1", "Ærø"),
    ("cp1252", "Ærø"),
    ("cp1252", "Århus"),
    ("cp1252", "São Paulo"),
    ("cp850", "snabbköp"),
    ("cp437", "snabbköp"),
    ("cp850", "Ærø"),
    ("cp437", "Málaga"),
    ("mac_roman", "Zürich"),
    ("mac_roman", "Café"),
    ("cp1250", "Łódź"),
    ("cp1250", "Brno Čáslav"),
    ("cp852", "Łódź"),
    ("cp1251", "Москва"),
    ("koi8_r", "Москва"),
    ("cp866", "Москва"),
    ("cp1253", "Αθήνα"),
    ("cp852", "Kraków"),  # iso8859-7 reads `Krak’w`: no apostrophe runs into a `w`
    ("cp1252", "Ça va"),  # Mac Roman reads `«a va`: an opening quote never closed
    ("cp1254", "Çanakkale"),
    ("iso8859-15", "Œuvre"),
    ("cp1251", "Київ"),
    ("cp932", "東京"),
    ("cp932", "東京都"),
    ("euc_jp", "大阪商事"),
    ("gb18030", "北京"),
    ("big5", "臺北"),
    ("euc_kr", "서울"),
]
# Those whose evidence is enough to win by the margin: they must be read, not stopped on.
MUST_READ = {
    ("iso8859-1", "Ærø"),
    ("cp1252", "Ærø"),
    ("cp1252", "Århus"),
    ("cp850", "snabbköp"),
    ("cp437", "snabbköp"),
    ("cp437", "Málaga"),
    ("mac_roman", "Café"),
    ("cp1250", "Łódź"),
    ("cp852", "Łódź"),
    ("cp1251", "Москва"),
    ("koi8_r", "Москва"),
    ("cp866", "Москва"),
    ("cp1253", "Αθήνα"),
    ("cp852", "Kraków"),
    ("cp932", "東京都"),
    ("big5", "臺北"),
}


@pytest.mark.parametrize(("encoding", "name"), FEW_LETTERS)
def test_a_few_letters_are_read_right_or_stop_with_the_value_that_reads_them(rows, tmp_path, encoding, name):
    path = write_export(tmp_path / "few.csv", [row | {"CITY": name} for row in rows], encoding=encoding)
    right = path.read_bytes().decode(encoding)
    try:
        stats, frame, rejects = clean(path, tmp_path / "out")
    except ExportError as error:
        assert (encoding, name) not in MUST_READ, str(error)
        advice = re.search(r"ENCODING to the one whose text line \d+ should read: (.*)$", str(error))
        assert advice, str(error)
        picks = [v for v, text in re.findall(r"=([\w-]+) for '([^']*)'", advice.group(1)) if name in text]
        assert len(picks) == 1, str(error)
        stats, frame, rejects = clean(path, tmp_path / "set", dialect={"encoding": picks[0]})
    assert path.read_bytes().decode(stats.dialect.encoding) == right
    assert set(frame["CITY"]) == {name} and rejects.height == 0


# A file of place names, one per row, in the code page of their language: more words, more evidence,
# and each file must then be read (a word or two may tie, see FEW_LETTERS; a whole column must not).
PLACES = {
    "cp1254": ["İstanbul", "Şişli", "Ankara", "Çanakkale", "Eskişehir", "Muğla", "Bağcılar", "Üsküdar"],
    "cp1257": ["Rīga", "Kaunas", "Šiauliai", "Jūrmala", "Liepāja", "Klaipėda", "Panevėžys", "Daugavpils"],
    "cp1250": ["Łódź", "Kraków", "Brno", "Košice", "Plzeň", "Győr", "Žilina", "Timişoara"],
    "cp852": ["Łódź", "Kraków", "Košice", "Plzeň", "Győr", "Žilina", "Ústí", "Gdańsk"],
    "cp1252": ["Málaga", "Köln", "Genève", "São Paulo", "Ærø", "Zürich", "España", "Œuvre"],
    "mac_roman": ["Málaga", "Köln", "Genève", "São Paulo", "Zürich", "España", "Café"],
    "cp850": ["Málaga", "Köln", "Genève", "São Paulo", "Ærø", "Zürich", "España", "Bräcke"],
    "cp1251": ["Москва", "Київ", "София", "Минск", "Новосибирск"],
    "cp932": ["東京", "大阪", "名古屋", "横浜"],
    "big5": ["臺北", "高雄", "臺中", "新竹"],
}


@pytest.mark.parametrize("encoding", list(PLACES))
def test_a_column_of_place_names_is_read_in_their_code_page(rows, tmp_path, encoding):
    places = PLACES[encoding]
    named = [row | {"CITY": places[i % len(places)]} for i, row in enumerate(rows)]
    path = write_export(tmp_path / "places.csv", named, encoding=encoding)
    stats, frame, rejects = clean(path, tmp_path / "out")
    assert path.read_bytes().decode(stats.dialect.encoding) == path.read_bytes().decode(encoding)
    assert set(frame["CITY"]) == set(places) and rejects.height == 0
