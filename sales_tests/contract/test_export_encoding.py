"""Encoding detection of the one export reader: BOMs, strict UTF-8, then the code page whose characters
sit where letters and punctuation sit in text (DOS letters vs Windows-1252 punctuation)."""

import random
import re
from pathlib import Path

import polars as pl
import pytest

from sales_serving.contract.export import code_page
from sales_serving.contract.export import encoding as encoding_scan
from sales_serving.contract.export.code_page import text_score
from sales_serving.contract.export.encoding import detect_encoding, transcode_to_utf8
from sales_serving.contract.export.errors import ExportError, NotCsvTextError
from sales_serving.contract.export.lines import read_lines
from sales_serving.contract.export.settings import ExportReading

# DOS letters against Windows punctuation: the Western code pages. A single word read in the whole
# default list is another question (Mac Roman reads `snabbköp` as `snabbkîp`): see test_export_encodings.
CANDIDATES = ["cp850", "cp437", "cp1252", "latin-1"]
FULL = ExportReading().candidate_encodings


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_plain_utf8(tmp_path):
    found = detect_encoding(write(tmp_path / "a.csv", "A,B\nBerguvsvägen,1\n".encode()), CANDIDATES)
    assert (found.encoding, found.has_bom, found.non_ascii_bytes) == ("utf-8", False, 2)


def test_utf8_bom_and_crlf_are_accepted_and_bom_stripped(tmp_path):
    source = write(tmp_path / "bom.csv", b"\xef\xbb\xbfA,B\r\nMart\xc3\xadn,1\r\n")
    found = detect_encoding(source, CANDIDATES)
    encoding, has_bom = found.encoding, found.has_bom
    assert (encoding, has_bom) == ("utf-8-sig", True)
    text = transcode_to_utf8(source, tmp_path / "out.csv", encoding).path.read_bytes()
    assert text.startswith(b"A,B")
    assert "Martín".encode() in text


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_text_not_a_binary_file(tmp_path, codec):
    bom = b"\xff\xfe" if codec.endswith("le") else b"\xfe\xff"
    source = write(tmp_path / "unicode.txt", bom + "A\tB\r\nCataluña\t1\r\n".encode(codec))
    found = detect_encoding(source, CANDIDATES)
    encoding, has_bom = found.encoding, found.has_bom
    assert (encoding, has_bom) == ("utf-16", True)
    converted = transcode_to_utf8(source, tmp_path / "u.csv", encoding).path.read_bytes()
    assert converted == "A\tB\nCataluña\t1\n".encode()  # the copy ends every line with LF


def test_dos_code_page_is_chosen_over_cp1252_and_latin1(tmp_path):
    data = "A,B\nBerguvsvägen,Martín\nCataluña,x\n".encode("cp850")
    assert detect_encoding(write(tmp_path / "dos.csv", data), CANDIDATES).encoding == "cp850"


def test_windows_code_page_is_chosen_for_windows_letters(tmp_path):
    source = write(tmp_path / "win.csv", "A,B\ncafé,Müller\n".encode("cp1252"))
    assert detect_encoding(source, CANDIDATES).encoding == "cp1252"


@pytest.mark.parametrize(
    "text",
    [
        "“Harbour” Rd – Unit 4",
        "Price 12 € — net",
        "Children’s Toys ‘Deluxe’",
        "Wait… 5 – 7 days",
        "“Quoted”",
    ],
)
def test_windows_punctuation_is_not_read_as_dos_letters(tmp_path, text):
    source = write(tmp_path / "punct.csv", f"A,B\n{text},1\nplain,2\n".encode("cp1252"))
    encoding = detect_encoding(source, CANDIDATES).encoding
    assert encoding == "cp1252"
    assert text in transcode_to_utf8(source, tmp_path / "u.csv", encoding).path.read_text("utf-8")


@pytest.mark.parametrize("text", ["Berguvsvägen", "Martín", "Cataluña", "Bräcke", "snabbköp", "Ærø Ålborg"])
def test_dos_letters_are_not_read_as_windows_punctuation(tmp_path, text):
    source = write(tmp_path / "dos.csv", f"A,B\n{text},1\n".encode("cp850"))
    encoding = detect_encoding(source, CANDIDATES).encoding
    assert encoding in ("cp850", "cp437")
    assert text in transcode_to_utf8(source, tmp_path / "u.csv", encoding).path.read_text("utf-8")


def test_text_score_judges_letters_by_their_word_and_symbols_by_their_place():
    letter = code_page.LETTER_WEIGHT
    assert letter * code_page.LATIN_FLOOR < text_score(["Berguvsvägen"]) < letter  # Swedish `ä`: common
    assert text_score(["Berguvsv„gen"]) == 0.0  # „ inside a word is no quote
    assert text_score(["Ìîñêâà"]) == 0.0  # Москва (cp1251) read as Windows-1252: six accents in a row
    assert text_score(["Москва"]) == pytest.approx(letter)  # every letter among Russian's most frequent
    assert text_score(["лНЯЙБА"]) == pytest.approx(0.25 * letter)  # Москва as KOI8-R: no word is so cased
    assert text_score(["O’Hara"]) == 1.0 and text_score(["OÆHara"]) < 0.25 * letter
    assert text_score(["Ćrř"]) == 0.0  # no language writes both `ć` and `ř`
    assert text_score(["2á871"]) == 0.0 and text_score(["2\u00a0871"]) == 1.0  # a no-break space by digits
    assert text_score(["Málaga"], "cp1252") > text_score(["M\u00a0laga"], "cp1252") == 0.0
    assert text_score(["Rîga"], "cp1252") < text_score(["Rīga"], "cp1257")  # French `î` is rare


def test_an_apostrophe_is_read_as_windows_1252_not_a_dos_letter(tmp_path):
    # 0x92 is ’ in cp1252 and Æ in cp850: `O’Hara` reads as a word, `OÆHara` does not.
    source = write(tmp_path / "tie.csv", b"A,B\nO\x92Hara,1\n")
    assert detect_encoding(source, CANDIDATES).encoding == "cp1252"


def test_a_near_tie_stops_naming_each_reading_and_the_setting_for_each(tmp_path):
    # 0xE3 is ã in cp1252 and ă in cp1250: Portuguese `São` and Romanian `Săo` are both words.
    source = write(tmp_path / "tie.csv", b"A,B\nS\xe3o Paulo,1\n")
    with pytest.raises(ExportError) as stopped:
        detect_encoding(source, ["cp1252", "cp1250"])
    message = str(stopped.value)
    assert re.search(
        r"tie\.csv: line 2: the text reads about as well as cp1250 \(0\.\d\d: 'Săo Paulo,1'\) and as "
        r"cp1252 \(0\.\d\d: 'São Paulo,1'\); set SALES_INGEST__READING__DIALECT__ENCODING to the one whose "
        r"text line 2 should read: =cp1250 for 'Săo Paulo,1', =cp1252 for 'São Paulo,1'$",
        message,
    ), message


def test_undecodable_byte_names_file_line_and_setting(tmp_path):
    source = write(tmp_path / "bad.csv", b"A,B\nok,1\nbad \x81 here,2\n")
    with pytest.raises(ExportError, match=r"bad\.csv: line 3: byte .* is not cp1252 text .*ENCODING"):
        transcode_to_utf8(source, tmp_path / "u.csv", "cp1252")


def test_empty_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(NotCsvTextError, match=r"empty\.csv: the file is empty"):
        detect_encoding(write(tmp_path / "empty.csv", b""), CANDIDATES)


def test_binary_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(
        NotCsvTextError, match=r"blob\.csv: line 3: holds 3 NUL bytes on 1 of 4 lines, so it is a binary file"
    ):
        detect_encoding(write(tmp_path / "blob.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), CANDIDATES)


@pytest.mark.real_data
def test_real_file_is_code_page_850(real_csv_path, tmp_path):
    found = detect_encoding(real_csv_path, FULL)
    encoding, non_ascii = found.encoding, found.non_ascii_bytes
    assert encoding == "cp850"
    assert non_ascii > 0
    text = transcode_to_utf8(real_csv_path, tmp_path / "u.csv", encoding).path.read_text("utf-8")
    for name in ("Berguvsvägen", "Martín", "Cataluña"):
        assert name in text
    assert "\ufffd" not in text


def test_a_file_mixing_utf8_and_a_code_page_stops_naming_the_lines(tmp_path):
    data = "A,B\nBerguvsvägen,1\nMartín,2\nCataluña,3\n".encode() + "“Bräcke” – 4€,4\n".encode("cp1252")
    with pytest.raises(ExportError) as stopped:
        detect_encoding(write(tmp_path / "mixed.csv", data), FULL)
    assert (
        "mixed.csv: line 5: lines are in two encodings: 3 of the first 4 with non-ASCII text are UTF-8 "
        "(line 2, 3, 4), the others cp1252 (line 5); set SALES_INGEST__READING__DIALECT__UTF8_LINES=true"
    ) in str(stopped.value)


def test_the_utf8_lines_setting_repairs_a_mixed_file(tmp_path):
    data = "A,B\nBerguvsvägen,1\nMartín,2\n".encode() + "“Bräcke” – 4€,4\n".encode("cp1252")
    source = write(tmp_path / "mixed.csv", data)
    found = detect_encoding(source, FULL, utf8_lines=True)
    assert found.encoding == "cp1252" and found.utf8_lines
    text = transcode_to_utf8(source, tmp_path / "u.csv", found.encoding, utf8_lines=True).path.read_text()
    assert text == "A,B\nBerguvsvägen,1\nMartín,2\n“Bräcke” – 4€,4\n"


@pytest.mark.parametrize(
    "body",
    [
        b"a\n1\n",
        b"a\n1",
        b"a\n\n1\n\n\n",
        b"a\r\n1\r\n\r\n",
        b'a\n"x\ny"\n',
        b"a\n1\r",
        b"a\r1\r\n2\n",
        b"a",
        "a\nVäg\n".encode("cp850"),
        "a\nVäg".encode(),
    ],
)
def test_lines_counted_by_the_encoding_scan_match_a_line_pass(tmp_path, body):
    source = write(tmp_path / "in.csv", body)
    counted = detect_encoding(source, CANDIDATES).lines
    text = transcode_to_utf8(source, tmp_path / "utf8.csv", detect_encoding(source, CANDIDATES).encoding).path
    assert counted == read_lines(text).select(pl.len()).collect().item()


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 8 << 20])
def test_byte_scan_reads_utf8_across_chunk_edges_like_a_whole_decode(tmp_path, monkeypatch, chunk_bytes):
    # Generated: valid and broken UTF-8 (cut sequences, stray continuation bytes) around newlines, read in
    # chunks that split sequences anywhere; the scan must agree with decoding the whole text at once.
    monkeypatch.setattr(encoding_scan, "CHUNK_BYTES", chunk_bytes)
    pieces = [b"ab", b",", b"\n", "ä".encode(), "€".encode(), "😀".encode(), b"\xe4", b"\x84", b"\xf0\x9f"]
    rng = random.Random(chunk_bytes)
    for case in range(300):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        if case % 2:
            data = data.replace(b"\xe4", b"").replace(b"\x84", b"").replace(b"\xf0\x9f", b"") or b"ab"
        scan = encoding_scan._scan_bytes(write(tmp_path / "in.csv", data))
        try:
            data.decode("utf-8")
            expected = (True, 0)
        except UnicodeDecodeError as error:
            # A sequence cut by the end of the file is reported on the last line counted.
            cut_at_end = error.reason == "unexpected end of data"
            expected = (False, data.count(b"\n") if cut_at_end else data.count(b"\n", 0, error.start) + 1)
        assert (scan.utf8_ok, scan.first_bad_utf8_line) == expected, data
        assert scan.non_ascii == sum(byte >= 0x80 for byte in data)
        assert scan.lines == data.count(b"\n") + (not data.endswith(b"\n"))


@pytest.mark.parametrize(("text", "alike"), [("Málaga", "cp852"), ("Málaga Lugano", "cp437")])
def test_code_pages_giving_the_same_text_record_the_first_candidate(tmp_path, text, alike):
    """Readings that are the very same text differ only in their language tables' scores; the data is the
    same either way, so the name recorded is the first such candidate in the configured order (a cp850
    export whose only letter is `á`, which cp852 writes alike, is cp850), not whichever table liked it."""
    rows = "".join(f"{i},{text},x\n" for i in range(40))
    source = write(tmp_path / "alike.csv", f"ID,CITY,NOTE\n{rows}".encode("cp850"))
    assert source.read_bytes().decode("cp850") == source.read_bytes().decode(alike)
    assert FULL.index("cp850") < FULL.index(alike)
    assert detect_encoding(source, FULL).encoding == "cp850"
