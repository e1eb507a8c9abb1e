"""The one reader of sales CSV exports: the file's dialect, detected once, and strict value parsing.

`open_export` finds the dialect of a file (text encoding, delimiter, header, decimal mark, thousands
separator, currency signs; date order on request), makes a UTF-8 copy when the file is not plain UTF-8 (Polars
reads only UTF-8), and hands back an `Export` whose `scan()` is a lazy frame of every record as trimmed text
under the canonical column names, with the record's line number in the file. Malformed lines (too many or
too few fields, a broken quote) are set aside with their line number and text by `structure()`; the rest
of the file still loads. The `*_value` expressions and `parse_dates` turn that text into numbers and dates
the strict way: a value that is not plainly a finite number or a date of the file's date order is null,
never a guess.

Every field of the dialect can be fixed in `ExportDialect` (settings); whatever the file cannot settle stops
with an `ExportError` naming the file, line, column, what was seen and the setting that settles it.

Modules, one idea each: `settings` (what a caller fixes), `errors`, `encoding` (bytes, BOMs, the UTF-8
copy), `code_page` (which code page reads the file's own text best), `lines` (lines and the
structure check), `header` (delimiter and columns), `numbers`, `dates`, `dialect` (the resolved dialect) and
`reader` (the `Export` object). Used by the ingest group (`raw_csv`, `clean_parquet`, the EDA raw counts) and
by `sales-predict`; imports neither dagster nor `sales_assets`.
"""

from sales_serving.contract.export.code_page import text_score
from sales_serving.contract.export.dates import Decision, decide_date_order, parse_dates
from sales_serving.contract.export.dialect import Dialect
from sales_serving.contract.export.encoding import FoundEncoding, detect_encoding, transcode_to_utf8
from sales_serving.contract.export.errors import (
    SETTING_PREFIX,
    ExportError,
    MissingColumnsError,
    NotCsvTextError,
    export_error,
)
from sales_serving.contract.export.header import Header, canonical_key, read_header
from sales_serving.contract.export.lines import LINE, Structure
from sales_serving.contract.export.numbers import (
    NumberFormat,
    detect_number_format,
    finite,
    integer_value,
    number_reason,
    number_value,
    parsed_number,
)
from sales_serving.contract.export.reader import Export, open_export
from sales_serving.contract.export.settings import DateOrder, ExportDialect, ExportLayout, ExportReading

__all__ = [
    "LINE",
    "SETTING_PREFIX",
    "DateOrder",
    "Decision",
    "Dialect",
    "Export",
    "ExportDialect",
    "ExportError",
    "ExportLayout",
    "ExportReading",
    "FoundEncoding",
    "Header",
    "MissingColumnsError",
    "NotCsvTextError",
    "NumberFormat",
    "Structure",
    "canonical_key",
    "decide_date_order",
    "detect_encoding",
    "detect_number_format",
    "export_error",
    "finite",
    "integer_value",
    "text_score",
    "number_reason",
    "number_value",
    "open_export",
    "parse_dates",
    "parsed_number",
    "read_header",
    "transcode_to_utf8",
]
