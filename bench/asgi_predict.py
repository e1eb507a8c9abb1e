"""What the serving benches share, with no import of the project (so a bench can load another commit's
sales_serving beside it): one POST /predict as an ASGI scope, and a commit's sales_serving extracted."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def predict_scope(body: bytes) -> dict[str, Any]:
    """The ASGI scope of `POST /predict` with a JSON `body` (as uvicorn builds it), without the body."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def extract_commit(commit: str, workdir: Path, root: Path) -> Path:
    """`sales_serving` as it was at `commit` of the repository at `root`, extracted once (git archive)
    into a folder under `workdir`, which is returned (put it first on PYTHONPATH)."""
    code = workdir / f"sales_serving-{commit}"
    if not code.exists():
        code.mkdir()
        archive = subprocess.run(
            ["git", "archive", commit, "sales_serving"], cwd=root, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
    return code
