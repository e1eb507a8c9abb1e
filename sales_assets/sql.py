"""Quoting for the SQL the stages build (DuckDB): a configured column or table name and a file path are
always quoted, never pasted, so a name with a quote or a space is still that name and never SQL."""


def quote_identifier(name: str) -> str:
    """`SALES` -> `"SALES"`, embedded double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """`/tmp/it's.parquet` -> `'/tmp/it''s.parquet'`: a string literal (file paths in COPY / read_*)."""
    return "'" + text.replace("'", "''") + "'"
