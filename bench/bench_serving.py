"""Benchmark of sales_serving: in-process latency, HTTP throughput/latency against a seed-style endpoint, batch rows/s.

Run from the project root:  .venv/bin/python bench/bench_serving.py [--seconds 8] [--concurrency 8]
Uses the bundle CURRENT names under $SALES_DATA_DIR/models/sales_regressor when there is one, else trains a
GradientBoosting bundle like the test fixture. Servers run under uvicorn (one worker) on loopback; the load
generator is a second process speaking keep-alive HTTP/1.1 over raw asyncio streams (bounded by count and time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sales_serving.contract.bundle import BundleError  # noqa: E402
from sales_serving.loading import LoadedModel, load_current, served_version  # noqa: E402
from sales_serving.schema import EXAMPLE_ROW, SalesFeatures  # noqa: E402
from sales_serving.scoring import predict_one, row_mapping  # noqa: E402
from sales_serving.settings import ServingSettings  # noqa: E402

TARGETS = {
    "in_process_p50_us": 100.0,
    "http_rps": 1_000.0,
    "http_p99_ms": 20.0,
    "ratio": 10.0,
    "batch_rows_per_s": 50_000.0,
}


# ---- the seed-style endpoint: a plain FastAPI handler calling the joblib pipeline on a one-row DataFrame ----


def build_seed_app():
    import joblib
    import pandas as pd
    from fastapi import FastAPI

    bundle = Path(os.environ["BENCH_BUNDLE_DIR"])
    metadata = json.loads((bundle / "metadata.json").read_text())
    pipeline = joblib.load(bundle / "pipeline.joblib")
    features = [spec["name"] for spec in metadata["features"]]
    seasons = {12: "Winter", 1: "Winter", 2: "Winter", 3: "Spring", 4: "Spring", 5: "Spring"}
    seasons |= {6: "Summer", 7: "Summer", 8: "Summer", 9: "Autumn", 10: "Autumn", 11: "Autumn"}
    seed = FastAPI()

    @seed.post("/predict")
    def predict(row: SalesFeatures) -> dict[str, Any]:
        frame = pd.DataFrame([row.model_dump()])
        frame["YEAR"], frame["MONTH"], frame["QUARTER"] = frame["YEAR_ID"], frame["MONTH_ID"], frame["QTR_ID"]
        frame["SEASON"] = frame["MONTH_ID"].map(seasons)
        frame["PRICE_TO_MSRP_RATIO"] = frame["PRICEEACH"] / frame["MSRP"]
        frame["LINE_TOTAL_APPROX"] = frame["QUANTITYORDERED"] * frame["PRICEEACH"]
        return {"prediction": float(pipeline.predict(frame[features])[0])}

    return seed


def __getattr__(name: str):
    # `uvicorn bench_serving:seed_app` imports this module; build the app only then.
    if name == "seed_app":
        return build_seed_app()
    raise AttributeError(name)


# ---- load generator (runs in its own process) ----


async def _load(
    port: int, path: str, body: bytes, concurrency: int, max_requests: int, seconds: float
) -> dict[str, Any]:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while len(latencies) < max_requests and time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "statuses": statuses,
    }


def run_load(
    port: int, path: str, body: bytes, concurrency: int, max_requests: int, seconds: float
) -> dict[str, Any]:
    return asyncio.run(_load(port, path, body, concurrency, max_requests, seconds))


def measure_http(
    server: subprocess.Popen,
    port: int,
    path: str,
    body: bytes,
    concurrency: int,
    max_requests: int,
    seconds: float,
) -> dict[str, Any]:
    """Wall-clock figures from the load process, plus the server's own CPU time per request.

    CPU per request does not depend on what else the machine runs, so it is the fair comparison on a shared box.
    """
    context = multiprocessing.get_context("spawn")
    process = psutil.Process(server.pid)
    with context.Pool(1) as pool:
        pool.apply(run_load, (port, path, body, concurrency, 200, 2.0))  # warm-up
        before = process.cpu_times()
        figures = pool.apply(run_load, (port, path, body, concurrency, max_requests, seconds))
        after = process.cpu_times()
    cpu_seconds = (after.user + after.system) - (before.user + before.system)
    figures["server_cpu_us_per_request"] = cpu_seconds / figures["requests"] * 1e6
    return figures


# ---- servers ----


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(app: str, env: dict[str, str], app_dir: Path | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    command += ["--no-access-log", "--log-level", "warning"]
    if app_dir:
        command += ["--app-dir", str(app_dir)]
    server = subprocess.Popen(command, env=os.environ | env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return server, port
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"{app} did not start")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=20)


# ---- bundle and in-process figures ----


def find_or_build_bundle(workdir: Path) -> tuple[Path, str]:
    settings = ServingSettings()
    try:
        version = served_version(settings.model_dir)
        return settings.data_dir.resolve(), f"real bundle {version} under {settings.model_dir}"
    except BundleError:
        from sales_tests.serving.bundle_factory import export_onnx, train_pipeline, write_bundle

        pipeline, _ = train_pipeline(rows=2823, seed=0, n_estimators=200)
        models_dir = workdir / "models" / "sales_regressor"
        write_bundle(models_dir, "bench-gbr200", pipeline, export_onnx(pipeline))
        return workdir, "synthetic GradientBoosting (200 trees, depth 3) bundle, as the test fixture builds"


def in_process_latency(model: LoadedModel, repeats: int = 5_000) -> dict[str, float]:
    row = SalesFeatures.model_validate(EXAMPLE_ROW)
    mapping = row_mapping(row)
    figures = {}
    for label, call in (
        ("predict", lambda: model.predict([mapping])),
        ("validate+respond", lambda: predict_one(model, SalesFeatures.model_validate(EXAMPLE_ROW))),
    ):
        for _ in range(500):
            call()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        figures[f"{label}_p50_us"] = statistics.median(times) * 1e6
        figures[f"{label}_p99_us"] = sorted(times)[int(repeats * 0.99)] * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="time bound of each HTTP measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections for /predict")
    parser.add_argument("--max-requests", type=int, default=100_000, help="request bound of each measurement")
    parser.add_argument("--batch-rows", type=int, default=1_000, help="rows per /predict/batch call")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        data_dir, source = find_or_build_bundle(Path(workdir))
        models_dir = data_dir / "models" / "sales_regressor"
        model = load_current(models_dir)
        latency = in_process_latency(model)

        single = json.dumps(EXAMPLE_ROW).encode()
        batch = json.dumps({"rows": [EXAMPLE_ROW] * args.batch_rows}).encode()
        env = {
            "SALES_DATA_DIR": str(data_dir),
            "SALES_SERVING_BATCH_LIMIT": str(max(args.batch_rows, 10_000)),
        }
        server, port = start_server("sales_serving.app:app", env)
        try:
            service = measure_http(
                server, port, "/predict", single, args.concurrency, args.max_requests, args.seconds
            )
            batches = measure_http(server, port, "/predict/batch", batch, 2, args.max_requests, args.seconds)
        finally:
            stop(server)
        seed_server, seed_port = start_server(
            "bench_serving:seed_app", {"BENCH_BUNDLE_DIR": str(model.directory)}, ROOT / "bench"
        )
        try:
            seed = measure_http(
                seed_server, seed_port, "/predict", single, args.concurrency, args.max_requests, args.seconds
            )
        finally:
            stop(seed_server)

    batch_rows_per_s = batches["rps"] * args.batch_rows
    ratio = service["rps"] / seed["rps"]
    cpu_ratio = seed["server_cpu_us_per_request"] / service["server_cpu_us_per_request"]
    rows = [
        (
            "in-process single-row predict p50",
            f"{latency['predict_p50_us']:.0f} us",
            "<= 100 us",
            latency["predict_p50_us"] <= TARGETS["in_process_p50_us"],
        ),
        ("in-process single-row predict p99", f"{latency['predict_p99_us']:.0f} us", "", None),
        (
            "in-process validate + predict + response p50",
            f"{latency['validate+respond_p50_us']:.0f} us",
            "",
            None,
        ),
        (
            f"HTTP /predict throughput (c={args.concurrency})",
            f"{service['rps']:,.0f} req/s",
            ">= 1,000",
            service["rps"] >= TARGETS["http_rps"],
        ),
        (
            "HTTP /predict p50 / p99",
            f"{service['p50_ms']:.2f} / {service['p99_ms']:.2f} ms",
            "p99 <= 20 ms",
            service["p99_ms"] <= TARGETS["http_p99_ms"],
        ),
        ("seed-style /predict throughput", f"{seed['rps']:,.0f} req/s", "", None),
        ("seed-style /predict p50 / p99", f"{seed['p50_ms']:.2f} / {seed['p99_ms']:.2f} ms", "", None),
        (
            "throughput ratio service / seed-style (wall clock)",
            f"{ratio:.1f}x",
            ">= 10x",
            ratio >= TARGETS["ratio"],
        ),
        (
            "server CPU per request: service / seed-style",
            f"{service['server_cpu_us_per_request']:.0f} / {seed['server_cpu_us_per_request']:.0f} us",
            "",
            None,
        ),
        (
            "one-core capacity: service (1e6 / CPU us per request)",
            f"{1e6 / service['server_cpu_us_per_request']:,.0f} req/s",
            ">= 1,000",
            1e6 / service["server_cpu_us_per_request"] >= TARGETS["http_rps"],
        ),
        (
            "throughput ratio at equal CPU (seed CPU / service CPU)",
            f"{cpu_ratio:.1f}x",
            ">= 10x",
            cpu_ratio >= TARGETS["ratio"],
        ),
        (
            f"HTTP /predict/batch ({args.batch_rows} rows/call, c=2)",
            f"{batch_rows_per_s:,.0f} rows/s",
            ">= 50,000",
            batch_rows_per_s >= TARGETS["batch_rows_per_s"],
        ),
    ]
    print(
        f"bundle: {source}; backend {model.backend}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}"
    )
    print(f"load average (1/5/15 min) at the end, from every process on the machine: {os.getloadavg()}")
    print(f"statuses: service {service['statuses']}, batch {batches['statuses']}, seed {seed['statuses']}")
    print("| figure | value | target | met |\n| --- | --- | --- | --- |")
    for name, value, target, met in rows:
        print(f"| {name} | {value} | {target} | {'' if met is None else ('yes' if met else 'NO')} |")


if __name__ == "__main__":
    main()
