"""Group `ingest`: pure logic modules (cleaning rules, quality checks, the sample generator), `assets.py`
(the assets and their checks, wiring only) and `defs.py` (the group's `dg.Definitions`)."""
