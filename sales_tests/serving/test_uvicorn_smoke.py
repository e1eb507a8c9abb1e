"""One real process: `sales-serve` under uvicorn on a free loopback port, a prediction over HTTP, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sales_tests.serving.conftest import VERSION_1


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sales_serve_answers_over_http_and_stops(data_dir: Path, bundle_v1: Path, example_row: dict) -> None:
    port = free_loopback_port()
    command = [
        str(Path(sys.executable).parent / "sales-serve"),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(
        command,
        env=os.environ | {"SALES_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                health = httpx.get(f"{base}/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sales-serve did not come up within 30 s"
                time.sleep(0.1)
        assert (health["status"], health["model_version"]) == ("ok", VERSION_1)
        response = httpx.post(f"{base}/predict", json=example_row, timeout=5)
        assert response.status_code == 200
        assert response.json()["model_version"] == VERSION_1 and response.json()["prediction"] > 0
        assert httpx.post(f"{base}/predict", json=example_row | {"MONTH_ID": 0}, timeout=5).status_code == 422
    finally:
        server.terminate()
        return_code = server.wait(timeout=15)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says how it ended.
    assert return_code in (0, -signal.SIGTERM)
