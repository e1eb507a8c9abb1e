"""Instructions per /predict request, this code against an earlier commit, counted by valgrind (callgrind).

Run from the project root (needs valgrind: apt-get install valgrind):
    .venv/bin/python bench/bench_serving_instructions.py --before COMMIT [--requests 400]

wrk's requests/s moves with whatever else the machine runs; an instruction count does not (the same binary,
inputs and environment give the same total, whatever the other cores do). Each side runs the whole ASGI app
in-process (no network, so uvicorn's HTTP parsing, the same code on both sides, is left out) under
`valgrind --tool=callgrind` twice, with `--requests` and with 0 single-row POST /predict requests after the
same warm-up; the difference divided by `--requests` is the cost of one request, start-up excluded. Uses the
bundle `bench_serving.find_or_build_bundle` gives (the synthetic GradientBoosting bundle when no real one
is configured), the same for both sides. Prints the ratio this code / COMMIT (issue 24: within 5%).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 50


def child(data_dir: str, requests: int) -> None:
    """In the measured process: sales_serving from PYTHONPATH, WARM_UP + `requests` POST /predict."""
    from asgi_predict import predict_scope

    from sales_serving.app import create_app
    from sales_serving.schema import EXAMPLE_ROW
    from sales_serving.settings import ServingSettings

    body = json.dumps(EXAMPLE_ROW).encode()
    app = create_app(ServingSettings(data_dir=Path(data_dir)))
    scope = predict_scope(body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"/predict answered {message['status']}")

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for _ in range(WARM_UP + requests):
                await app(dict(scope), receive, send)

    asyncio.run(run())


def instructions(code: Path, data_dir: Path, requests: int, scratch: Path) -> int:
    """Callgrind's instruction total for one child run of sales_serving from `code`."""
    out = scratch / f"callgrind.{os.getpid()}.{requests}.{code.name}"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(data_dir),
        str(requests),
    ]
    # The CURRENT watcher polls on wall-clock time, which valgrind stretches by the machine's load: it is
    # kept out (one poll a day), so the counts depend only on the code and the requests.
    env = os.environ | {
        "PYTHONPATH": str(code),
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "SALES_SERVING_RELOAD_INTERVAL_MS": str(86_400_000),
    }
    done = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"valgrind run failed ({code}, {requests}):\n{done.stderr[-3000:]}")
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", metavar="COMMIT", required=True, help="the commit to compare with")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per side")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from asgi_predict import extract_commit
    from bench_serving import find_or_build_bundle

    with tempfile.TemporaryDirectory() as workdir:
        scratch = Path(workdir)
        data_dir, source = find_or_build_bundle(scratch)
        before = extract_commit(args.before, scratch, ROOT)
        per_request = {}
        for name, code in (("this code", ROOT), (args.before, before)):
            full = instructions(code, data_dir, args.requests, scratch)
            empty = instructions(code, data_dir, 0, scratch)
            per_request[name] = (full - empty) / args.requests
            print(
                f"{name}: {full:,} - {empty:,} instructions = {per_request[name]:,.0f} a request", flush=True
            )
    ratio = per_request["this code"] / per_request[args.before]
    print(f"bundle: {source}; {args.requests} requests after {WARM_UP} warm-up; valgrind callgrind")
    print("| code | instructions per /predict request |\n| --- | ---: |")
    for name, count in per_request.items():
        print(f"| {name} | {count:,.0f} |")
    verdict = "within 5%" if ratio <= 1.05 else "NOT within 5%"
    print(f"ratio this code / {args.before}: {ratio:.3f} ({verdict})")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
