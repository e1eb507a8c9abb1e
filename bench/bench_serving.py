"""Benchmark of sales_serving as a user reproduces it: `wrk` against uvicorn, the seed-style endpoint in the same run.

Run from the project root (needs `wrk`: apt-get install wrk):
    .venv/bin/python bench/bench_serving.py [--seconds 10] [--connections 16] [--before COMMIT [--rounds N]]

Uses the bundle CURRENT names under $SALES_DATA_DIR/models/sales_regressor when there is one, else a
GradientBoosting bundle (200 trees) like the test fixture, with interval calibration. Measures:
1. cost of each request layer in-process (JSON parsing, validation, features, ONNX, intervals, response
   encoding, metrics, the whole ASGI app), so the HTTP server's share is the rest of a wrk request;
2. /predict on one uvicorn worker pinned to core 0, wrk (1 thread, --connections) pinned to core 1;
3. the seed-style endpoint (FastAPI handler, joblib pipeline on a one-row pandas DataFrame) the same way;
4. `sales-serve --workers 1` and `--workers 2` with intervals on (wrk and the workers share the cores);
5. a bare ASGI app that only spins the in-process cost of (1) per request, under the same uvicorn and
   pinning: the p99 one event loop gives a request of that cost with nothing of ours around it.
Prints a Markdown table with the ratio against the same-run seed figure (goal >= 10x, p99 <= 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
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

from asgi_predict import extract_commit, predict_scope  # noqa: E402 (bench/, beside this script)

from sales_serving.contract.bundle import BundleError  # noqa: E402
from sales_serving.loading import LoadedModel, load_current, served_version  # noqa: E402
from sales_serving.schema import EXAMPLE_ROW, SalesFeatures  # noqa: E402
from sales_serving.settings import ServingSettings  # noqa: E402

GOAL_RATIO = 10.0
GOAL_P99_MS = 10.0


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


def build_busy_app():
    """A bare ASGI app that answers any POST after spinning BENCH_BUSY_US microseconds of CPU: the
    service's own in-process cost with nothing of ours around it. Under the same uvicorn, pinning and wrk
    its p99 is what one worker's event loop gives a request of that cost (the tail is the loop's queue:
    with every connection busy, a request can wait for a whole round of the others before its turn)."""
    busy_seconds = float(os.environ["BENCH_BUSY_US"]) / 1e6
    answer = b'{"prediction": 0.0}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        deadline = time.perf_counter() + busy_seconds
        while time.perf_counter() < deadline:
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def __getattr__(name: str):
    # `uvicorn bench_serving:seed_app` imports this module; build the app only then.
    if name == "seed_app":
        return build_seed_app()
    if name == "busy_app":
        return build_busy_app()
    raise AttributeError(name)


# ---- layers, in-process ----


def _per_call_us(call, repeats: int) -> float:
    """CPU microseconds per call (process time: what other processes on the machine do does not count)."""
    for _ in range(max(repeats // 10, 50)):
        call()
    started = time.process_time()
    for _ in range(repeats):
        call()
    return (time.process_time() - started) / repeats * 1e6


def layer_costs(data_dir: Path, model: LoadedModel, repeats: int = 3000) -> dict[str, float]:
    """CPU microseconds per single-row request spent in each layer, and in the whole ASGI app (no network)."""
    import orjson

    from sales_serving import metrics
    from sales_serving.app import create_app
    from sales_serving.limits import check_json_shape
    from sales_serving.scoring import prediction_payload, row_mapping, score

    body = json.dumps(EXAMPLE_ROW).encode()
    row = SalesFeatures.model_validate_json(body)
    mapping = row_mapping(row)
    features = model.builder.build([mapping])
    payload = prediction_payload(model, row)
    latency = metrics.LATENCY.labels("/bench")
    settings = ServingSettings(data_dir=data_dir)
    figures = {
        "JSON parsing + validation (SalesFeatures from bytes)": _per_call_us(
            lambda: SalesFeatures.model_validate_json(body), repeats
        ),
        "features (derived columns, checks)": _per_call_us(lambda: model.builder.build([mapping]), repeats),
        "prediction (onnxruntime run)": _per_call_us(lambda: model.predictor.predict(features), repeats),
        "score: features + prediction + intervals": _per_call_us(lambda: score(model, [mapping]), repeats),
        "score + response (payload dict, orjson)": _per_call_us(
            lambda: orjson.dumps(prediction_payload(model, row)), repeats
        ),
        "JSON shape gate (limits.check_json_shape on this body)": _per_call_us(
            lambda: check_json_shape(body, settings.serving_max_object_keys, settings.serving_max_json_depth),
            repeats,
        ),
        "response encoding alone (orjson)": _per_call_us(lambda: orjson.dumps(payload), repeats),
        "metrics (counter + histogram)": _per_call_us(
            lambda: (metrics.REQUESTS.labels("/bench", "POST", "200").inc(), latency.observe(0.001)), repeats
        ),
    }
    app = create_app(settings)
    scope = predict_scope(body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    async def whole_app() -> float:
        async with app.router.lifespan_context(app):
            for _ in range(300):
                await app(dict(scope), receive, send)
            started = time.process_time()
            for _ in range(repeats):
                await app(dict(scope), receive, send)
            return (time.process_time() - started) / repeats * 1e6

    figures["whole ASGI app, /predict (no network)"] = asyncio.run(whole_app())
    return figures


# ---- wrk against uvicorn ----


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pinned(command: list[str], core: int | None) -> list[str]:
    return ["taskset", "-c", str(core), *command] if core is not None and shutil.which("taskset") else command


def start(command: list[str], env: dict[str, str], port: int, cwd: Path = ROOT) -> subprocess.Popen:
    server = subprocess.Popen(command, env=os.environ | env, cwd=cwd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"http://127.0.0.1:{port}/predict", json=EXAMPLE_ROW, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"{command} exited with {server.returncode}")
        time.sleep(0.3)
    server.kill()
    raise RuntimeError(f"{command} did not answer /predict within 90 s")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def uvicorn_command(app: str, port: int, workers: int = 1, app_dir: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    return command + (["--app-dir", str(app_dir)] if app_dir else [])


def server_cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time of the server and its children (uvicorn workers), user + system."""
    root = psutil.Process(server.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def wrk(
    server: subprocess.Popen, port: int, body: bytes, connections: int, seconds: float, core: int | None
) -> dict[str, Any]:
    """wrk's requests/s and latency percentiles for POST /predict (after a 2 s warm-up run), plus the
    server's CPU time per request, which does not depend on what else the machine runs."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    base = [
        "wrk",
        "-t1",
        f"-c{connections}",
        "--latency",
        "-s",
        script.name,
        f"http://127.0.0.1:{port}/predict",
    ]
    subprocess.run(pinned([*base[:-1], "-d2s", base[-1]], core), capture_output=True, check=True)
    cpu_before = server_cpu_seconds(server)
    measured = pinned([*base[:-1], f"-d{seconds:g}s", base[-1]], core)
    output = subprocess.run(measured, capture_output=True, text=True, check=True).stdout
    cpu = server_cpu_seconds(server) - cpu_before
    os.unlink(script.name)
    figures = parse_wrk(output)
    figures["cpu_us_per_request"] = cpu / figures["requests"] * 1e6
    return figures


def parse_wrk(output: str) -> dict[str, Any]:
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def milliseconds(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(number) * units[unit]

    percentiles = {
        int(p): milliseconds(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)", output, re.MULTILINE)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": percentiles[50],
        "p99_ms": percentiles[99],
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def measure_commit(
    commit: str,
    workdir: Path,
    env: dict[str, str],
    body: bytes,
    args: argparse.Namespace,
    server_core,
    load_core,
) -> dict[str, Any]:
    """/predict of sales_serving as it was at `commit`, extracted with git archive, under the same wrk run."""
    server, port = start_commit(commit, workdir, env, server_core)
    try:
        return wrk(server, port, body, args.connections, args.seconds, load_core)
    finally:
        stop(server)


def start_commit(
    commit: str, workdir: Path, env: dict[str, str], server_core
) -> tuple[subprocess.Popen, int]:
    """A uvicorn worker (pinned to `server_core`) serving sales_serving as it was at `commit`, extracted
    once with git archive under `workdir`; returns the process and its port."""
    code = extract_commit(commit, workdir, ROOT)
    port = free_port()
    command = pinned(uvicorn_command("sales_serving.app:app", port), server_core)
    return start(command, env | {"PYTHONPATH": str(code)}, port, cwd=code), port


def paired_rounds(
    commit: str,
    rounds: int,
    workdir: Path,
    env: dict[str, str],
    body: bytes,
    args: argparse.Namespace,
    server_core,
    load_core,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """`rounds` wrk runs of this code and of `commit`, alternated (this, then `commit`, each round), both
    servers started once and pinned to the same core: a drift of the machine's load during the run falls on
    both sides instead of on whichever was measured later. Returns (this code, commit) figures per round."""
    now_port = free_port()
    now = start(pinned(uvicorn_command("sales_serving.app:app", now_port), server_core), env, now_port)
    then, then_port = start_commit(commit, workdir, env, server_core)
    try:
        return [
            (
                wrk(now, now_port, body, args.connections, args.seconds, load_core),
                wrk(then, then_port, body, args.connections, args.seconds, load_core),
            )
            for _ in range(rounds)
        ]
    finally:
        stop(now)
        stop(then)


def print_paired(commit: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """The alternated rounds as a table and the median ratios (this code / `commit`) of req/s and of server
    CPU per request, with the 5% verdict issue 24 asks for."""
    import statistics

    print(f"\nalternated rounds, this code against {commit} (same bundle, same core, same wrk)")
    print("| round | req/s now | req/s then | ratio | CPU us/req now | CPU us/req then | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for number, (now, then) in enumerate(pairs, 1):
        print(
            f"| {number} | {now['rps']:,.0f} | {then['rps']:,.0f} | {now['rps'] / then['rps']:.3f} "
            f"| {now['cpu_us_per_request']:.0f} | {then['cpu_us_per_request']:.0f} "
            f"| {now['cpu_us_per_request'] / then['cpu_us_per_request']:.3f} |"
        )
    rps = statistics.median(now["rps"] / then["rps"] for now, then in pairs)
    cpu = statistics.median(now["cpu_us_per_request"] / then["cpu_us_per_request"] for now, then in pairs)
    verdict = "within 5%" if rps >= 0.95 else "NOT within 5%"
    print(f"median ratio req/s {rps:.3f}, server CPU per request {cpu:.3f} ({verdict} of {commit})")


def find_or_build_bundle(workdir: Path) -> tuple[Path, str]:
    settings = ServingSettings()
    try:
        version = served_version(settings.model_dir)
        return settings.data_dir.resolve(), f"real bundle {version} under {settings.model_dir}"
    except BundleError:
        from sales_tests.serving.bundle_factory import export_onnx, train_pipeline, write_bundle

        pipeline, _ = train_pipeline(rows=2823, seed=0, n_estimators=200)
        write_bundle(workdir / "models" / "sales_regressor", "bench-gbr200", pipeline, export_onnx(pipeline))
        return workdir, "synthetic GradientBoosting (200 trees, depth 3) bundle with interval calibration"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections")
    parser.add_argument(
        "--before",
        metavar="COMMIT",
        help="also measure sales_serving as it was at COMMIT (git archive), same bundle, same run",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="with --before: also N alternated wrk runs of this code and COMMIT, and their median ratio",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    two_cores = (os.cpu_count() or 1) >= 2
    server_core, load_core = (0, 1) if two_cores else (None, None)
    body = json.dumps(EXAMPLE_ROW).encode()

    with tempfile.TemporaryDirectory() as workdir:
        data_dir, source = find_or_build_bundle(Path(workdir))
        model = load_current(data_dir / "models" / "sales_regressor")
        layers = layer_costs(data_dir, model)
        env = {"SALES_DATA_DIR": str(data_dir)}
        results: dict[str, dict[str, Any]] = {}

        port = free_port()
        server = start(pinned(uvicorn_command("sales_serving.app:app", port), server_core), env, port)
        try:
            results["service /predict, 1 worker (core 0)"] = wrk(
                server, port, body, args.connections, args.seconds, load_core
            )
        finally:
            stop(server)

        busy_us = layers["whole ASGI app, /predict (no network)"]
        port = free_port()
        busy = start(
            pinned(uvicorn_command("bench_serving:busy_app", port, app_dir=ROOT / "bench"), server_core),
            {"BENCH_BUSY_US": f"{busy_us:.1f}"},
            port,
        )
        try:
            results[f"bare ASGI app spinning {busy_us:.0f} us a request, 1 worker (core 0)"] = wrk(
                busy, port, body, args.connections, args.seconds, load_core
            )
        finally:
            stop(busy)

        if args.before:
            results[f"sales_serving at {args.before}, 1 worker (core 0)"] = measure_commit(
                args.before, Path(workdir), env, body, args, server_core, load_core
            )

        pairs = (
            paired_rounds(args.before, args.rounds, Path(workdir), env, body, args, server_core, load_core)
            if args.before and args.rounds > 0
            else []
        )

        port = free_port()
        seed_env = {"BENCH_BUNDLE_DIR": str(model.directory)}
        seed = start(
            pinned(uvicorn_command("bench_serving:seed_app", port, app_dir=ROOT / "bench"), server_core),
            seed_env,
            port,
        )
        try:
            results["seed-style /predict, 1 worker (core 0)"] = wrk(
                seed, port, body, args.connections, args.seconds, load_core
            )
        finally:
            stop(seed)

        for workers in (1, 2):
            port = free_port()
            command = [str(Path(sys.executable).parent / "sales-serve"), "--port", str(port)]
            command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
            server = start(command, env, port)
            try:
                results[f"sales-serve --workers {workers} (cores shared with wrk)"] = wrk(
                    server, port, body, args.connections, args.seconds, None
                )
            finally:
                stop(server)

    service = results["service /predict, 1 worker (core 0)"]
    seed_figures = results["seed-style /predict, 1 worker (core 0)"]
    ratio = service["rps"] / seed_figures["rps"]
    print(
        f"bundle: {source}; backend {model.backend}; intervals {'on' if model.metadata.intervals else 'off'}"
    )
    print(
        f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; load average at the end {os.getloadavg()}"
    )
    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds:g}s, POST /predict with the seed example row")
    print("| run | req/s | p50 ms | p99 ms | server CPU us/request | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, figures in results.items():
        print(
            f"| {name} | {figures['rps']:,.0f} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} "
            f"| {figures['cpu_us_per_request']:.0f} | {figures['non_2xx']} |"
        )
    met = "met" if ratio >= GOAL_RATIO and service["p99_ms"] <= GOAL_P99_MS else "NOT met"
    print(
        f"\nratio service / seed-style: {ratio:.1f}x; service p99 {service['p99_ms']:.2f} ms "
        f"(goal >= {GOAL_RATIO:g}x and p99 <= {GOAL_P99_MS:g} ms: {met})"
    )
    cpu_ratio = seed_figures["cpu_us_per_request"] / service["cpu_us_per_request"]
    print(f"ratio at equal CPU (seed-style CPU per request / service CPU per request): {cpu_ratio:.1f}x")
    print(f"wrk time per request on one worker: {1e6 / service['rps']:.0f} us")
    print("\nin-process CPU cost per single-row request\n| layer | CPU us |\n| --- | --- |")
    for name, microseconds in layers.items():
        print(f"| {name} | {microseconds:.1f} |")
    http_share = service["cpu_us_per_request"] - layers["whole ASGI app, /predict (no network)"]
    print(
        f"| uvicorn: HTTP parsing and writing (server CPU per request minus the whole ASGI app) | {http_share:.1f} |"
    )
    if pairs:
        print_paired(args.before, pairs)


if __name__ == "__main__":
    main()
