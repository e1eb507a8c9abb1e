"""How long importing the code location takes (every step process, CLI call, sensor tick and the UI's code
server pays it), as a ratio against importing Dagster, Polars, DuckDB and pydantic in the same run.

    .venv/bin/python bench/bench_import.py [--repeats 3]

Each import runs in a fresh interpreter; the best of `--repeats` is kept for both, since a shared machine
only ever adds time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

PROBE = "import time; started = time.perf_counter(); import {module}; print(time.perf_counter() - started)"
BASELINE = "dagster, polars, duckdb, pydantic"


def import_seconds(module: str, repeats: int) -> float:
    """Best wall seconds of `import module` over `repeats` fresh interpreters.

    Raises:
        subprocess.CalledProcessError: the import failed.
    """
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", PROBE.format(module=module)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(repeats)
    ]
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    baseline = import_seconds(BASELINE, args.repeats)
    location = import_seconds("sales_assets.definitions", args.repeats)
    print(f"import {BASELINE}: {baseline:.2f} s")
    print(f"import sales_assets.definitions: {location:.2f} s")
    print(f"ratio: {location / baseline:.2f}x")


if __name__ == "__main__":
    main()
