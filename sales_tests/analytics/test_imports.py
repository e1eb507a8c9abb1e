"""Loading the analytics group imports no plotting, dataframe-conversion or numeric stack (issue 14):
matplotlib, pandas, numpy and scipy come in only when an asset draws or a test asks for them."""

import subprocess
import sys

HEAVY = ("matplotlib", "pandas", "numpy", "scipy", "pyarrow", "sklearn")


def test_analytics_definitions_import_no_heavy_library():
    code = (
        "import sys; import sales_assets.analytics.defs, sales_assets.outliers; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""
