"""`sales-serve --workers 2` under a real uvicorn: N requests spread over both workers, and one scrape of
/metrics counts all N (prometheus_client multiprocess mode), with each worker's process figures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sales_tests.serving.conftest import VERSION_1
from sales_tests.serving.test_uvicorn_smoke import free_loopback_port

REQUESTS = 60


def _scrape(base: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_workers_metrics_count_every_request(
    data_dir: Path, bundle_v1: Path, example_row: dict, tmp_path: Path
) -> None:
    port = free_loopback_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale file of an earlier run")
    command = [str(Path(sys.executable).parent / "sales-serve"), "--port", str(port), "--workers", "2"]
    command += ["--log-level", "warning", "--no-access-log"]
    env = os.environ | {"SALES_DATA_DIR": str(data_dir), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                if httpx.get(f"{base}/health", timeout=1).json()["model_version"] == VERSION_1:
                    break
            except (httpx.TransportError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "sales-serve --workers 2 did not come up within 120 s"
            time.sleep(0.2)
        # Wait until both workers have loaded the model and reported their process figures once.
        while (
            len({labels for name, labels in _scrape(base) if name == "sales_worker_resident_memory_bytes"})
            < 2
        ):
            assert time.monotonic() < deadline, "the second worker never reported"
            time.sleep(0.2)
        before = _scrape(base)
        # A new connection per request, so the kernel spreads them over both workers' accept queues.
        for _ in range(REQUESTS):
            assert httpx.post(f"{base}/predict", json=example_row, timeout=5).status_code == 200
        first, second = _scrape(base), _scrape(base)
    finally:
        server.terminate()
        server.wait(timeout=30)
    key = ("sales_http_requests_total", (("endpoint", "/predict"), ("method", "POST"), ("status", "200")))
    assert before.get(key, 0.0) == 0.0
    # Every scrape, whichever worker answers it, counts all requests of both workers.
    assert first[key] == second[key] == REQUESTS
    assert first[("sales_predictions_total", (("backend", "onnx"),))] == REQUESTS
    # Both workers reported their process figures in one scrape before the requests (the wait above); the
    # figures of live workers only are shown, and each serves the bundle CURRENT names.
    pids = {dict(labels)["pid"] for name, labels in first if name == "sales_worker_resident_memory_bytes"}
    assert 1 <= len(pids) <= 2
    models = [labels for name, labels in first if name == "sales_model_info" and first[(name, labels)] == 1]
    assert models and all(dict(labels)["version"] == VERSION_1 for labels in models)
    assert not (metrics_dir / "counter_99999.db").exists()
