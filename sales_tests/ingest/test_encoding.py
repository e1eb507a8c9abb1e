"""Encoding detection: strict UTF-8 first, else the code page that reads non-ASCII bytes as letters."""

from pathlib import Path

import pytest

from sales_assets.ingest.encoding import (
    NotCsvTextError,
    count_records,
    detect_encoding,
    letter_share,
    transcode_to_utf8,
)

CANDIDATES = ["cp850", "cp437", "cp1252", "latin-1"]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_plain_utf8(tmp_path):
    report = detect_encoding(write(tmp_path / "a.csv", "A,B\nBerguvsvägen,1\n".encode()), CANDIDATES)
    assert report.encoding == "utf-8"
    assert not report.has_bom
    assert report.non_ascii_bytes == 2


def test_utf8_bom_and_crlf_are_accepted_and_bom_stripped(tmp_path):
    source = write(tmp_path / "bom.csv", b"\xef\xbb\xbfA,B\r\nMart\xc3\xadn,1\r\n")
    report = detect_encoding(source, CANDIDATES)
    assert (report.encoding, report.has_bom) == ("utf-8", True)
    text = transcode_to_utf8(source, tmp_path / "out.csv", report.encoding).read_bytes()
    assert text.startswith(b"A,B")
    assert "Martín".encode() in text


def test_dos_code_page_is_chosen_over_cp1252_and_latin1(tmp_path):
    data = "A,B\nBerguvsvägen,Martín\nCataluña,x\n".encode("cp850")
    report = detect_encoding(write(tmp_path / "dos.csv", data), CANDIDATES)
    assert report.encoding == "cp850"
    assert report.letter_share == 1.0


def test_windows_code_page_is_chosen_for_windows_text(tmp_path):
    report = detect_encoding(write(tmp_path / "win.csv", "A,B\ncafé,Müller\n".encode("cp1252")), CANDIDATES)
    assert report.encoding == "cp1252"


def test_letter_share_scores_symbols_as_non_letters():
    samples = [(b"sv", b"\x84", b"gen")]
    assert letter_share(samples, "cp850") == 1.0  # ä
    assert letter_share(samples, "cp1252") == 0.0  # „


def test_empty_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(NotCsvTextError, match=r"empty\.csv: the file is empty"):
        detect_encoding(write(tmp_path / "empty.csv", b""), CANDIDATES)


def test_binary_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(NotCsvTextError, match=r"blob\.csv: holds NUL bytes"):
        detect_encoding(write(tmp_path / "blob.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), CANDIDATES)


@pytest.mark.real_data
def test_real_file_is_code_page_850(real_csv_path, tmp_path):
    report = detect_encoding(real_csv_path, CANDIDATES)
    assert report.encoding == "cp850"
    assert report.non_ascii_bytes > 0
    text = transcode_to_utf8(real_csv_path, tmp_path / "u.csv", report.encoding).read_text("utf-8")
    for name in ("Berguvsvägen", "Martín", "Cataluña"):
        assert name in text
    assert "\ufffd" not in text


def test_count_records_ignores_line_breaks_inside_quotes(tmp_path):
    data = 'A,B\n1,"two\nlines"\n2,plain\n\n3,"x, ""quoted"""\n'.encode("cp850")
    assert count_records(write(tmp_path / "q.csv", data)) == 3
    assert count_records(write(tmp_path / "h.csv", b"A,B\n")) == 0
