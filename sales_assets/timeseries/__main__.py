"""`python -m sales_assets.timeseries`: the one-segment report CLI (see `cli.py`)."""

from sales_assets.timeseries.cli import main

raise SystemExit(main())
