"""Where the real Kaggle export is for the tests marked `real_data`: one lookup, so every fixture that
needs the file finds the same one.

Looked for, in order: the file `SALES_TEST_REAL_CSV` names, the configured raw CSV (`SALES_RAW_CSV`, by
default `$SALES_DATA_DIR/raw/sales_data_sample.csv`, where the README tells a user to put the file) and
`../shared/data/sales_data_sample.csv` beside the project. A file counts as the export only when its bytes
are the published ones (size and sha256 from shared/data/README.md): the generated sample has the same
header and the same 2,823 rows and is written to the same default path, and the real-data tests assert
facts (totals, encoding, blanks) that only the published bytes have.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_COPY = REPO_ROOT.parent / "shared" / "data" / "sales_data_sample.csv"
REAL_CSV_ENV = "SALES_TEST_REAL_CSV"
# The published file: "Sample Sales Data" (Kaggle, kyanyoga), as shared/data/README.md records it.
KAGGLE_BYTES = 527_958
KAGGLE_SHA256 = "6a20c7e5ce9d8a2d196f8247b6d92c1e2dc8716c5c135d737cd2465e801ca7c1"


class NotTheKaggleExportError(ValueError):
    """`SALES_TEST_REAL_CSV` names a file that is missing or is not the published export."""


def is_kaggle_export(path: Path) -> bool:
    """True when `path` is a file with the published export's size and sha256 (the size is compared first,
    so a large file is never hashed)."""
    if not path.is_file() or path.stat().st_size != KAGGLE_BYTES:
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() == KAGGLE_SHA256


def find_real_csv(explicit: str | None, configured: Path | None) -> tuple[Path | None, str]:
    """(path, "") of the real export, or (None, where it was looked for).

    `explicit` is the value of `SALES_TEST_REAL_CSV` (None or "" when unset), `configured` the settings'
    raw CSV path. Raises NotTheKaggleExportError when `explicit` is set but is not the export: a user who
    asked for the real-data tests should not see them silently skipped or run on another file.
    """
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not path.is_file():
            raise NotTheKaggleExportError(f"{REAL_CSV_ENV}={explicit}: no such file")
        if not is_kaggle_export(path):
            raise NotTheKaggleExportError(
                f"{REAL_CSV_ENV}={explicit}: not the published Kaggle export ({path.stat().st_size:,} bytes;"
                f" expected {KAGGLE_BYTES:,} bytes with sha256 {KAGGLE_SHA256[:12]}...)"
            )
        return path, ""
    candidates = [c for c in (configured, SHARED_COPY) if c is not None]
    for candidate in candidates:
        if is_kaggle_export(candidate):
            return candidate, ""
    looked = ", ".join(str(c) for c in candidates)
    return (
        None,
        f"the real Kaggle export is not at {looked}; set {REAL_CSV_ENV} to its path to run these tests",
    )
