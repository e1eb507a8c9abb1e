"""The Dagster code location: a messy sales CSV to Parquet, DuckDB, summaries, models and risk reports."""
