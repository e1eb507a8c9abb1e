"""Group `ml`: pure logic modules plus `defs.py`, the thin Dagster wiring of this group."""
