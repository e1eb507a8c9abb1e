"""Prometheus text exposition for the service, kept in-process and dependency-free.

Counts requests by endpoint/method/status, a latency histogram per endpoint, predicted rows, model reloads.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter, defaultdict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _labels(**labels: str) -> str:
    escaped = (
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in labels.items()
    )
    return "{" + ",".join(escaped) + "}"


class ServiceMetrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency_buckets: defaultdict[str, list[int]] = defaultdict(lambda: [0] * len(LATENCY_BUCKETS))
        self.latency_sum: Counter[str] = Counter()
        self.latency_count: Counter[str] = Counter()
        self.predicted_rows: Counter[str] = Counter()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, method, status)] += 1
        index = bisect_left(LATENCY_BUCKETS, seconds)
        if index < len(LATENCY_BUCKETS):
            self.latency_buckets[endpoint][index] += 1
        self.latency_sum[endpoint] += seconds
        self.latency_count[endpoint] += 1

    def observe_predictions(self, backend: str, rows: int) -> None:
        self.predicted_rows[backend] += rows

    def render(self, model_info: dict[str, str] | None, reloads: int, refusals: int) -> str:
        lines = [
            "# HELP sales_http_requests_total HTTP requests by endpoint, method and status code.",
            "# TYPE sales_http_requests_total counter",
        ]
        for (endpoint, method, status), count in sorted(self.requests.items()):
            lines.append(
                f"sales_http_requests_total{_labels(endpoint=endpoint, method=method, status=str(status))} {count}"
            )
        lines += [
            "# HELP sales_http_request_duration_seconds Time from request start to response end.",
            "# TYPE sales_http_request_duration_seconds histogram",
        ]
        for endpoint in sorted(self.latency_count):
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, self.latency_buckets[endpoint], strict=True):
                cumulative += count
                lines.append(
                    f"sales_http_request_duration_seconds_bucket{_labels(endpoint=endpoint, le=repr(bound))} {cumulative}"
                )
            total = self.latency_count[endpoint]
            lines.append(
                f"sales_http_request_duration_seconds_bucket{_labels(endpoint=endpoint, le='+Inf')} {total}"
            )
            lines.append(
                f"sales_http_request_duration_seconds_sum{_labels(endpoint=endpoint)} {self.latency_sum[endpoint]:.6f}"
            )
            lines.append(f"sales_http_request_duration_seconds_count{_labels(endpoint=endpoint)} {total}")
        lines += [
            "# HELP sales_predictions_total Rows scored, by backend.",
            "# TYPE sales_predictions_total counter",
        ]
        for backend, count in sorted(self.predicted_rows.items()):
            lines.append(f"sales_predictions_total{_labels(backend=backend)} {count}")
        lines += [
            "# HELP sales_model_info The served model (value 1), or nothing when no model is loaded.",
            "# TYPE sales_model_info gauge",
        ]
        if model_info:
            lines.append(f"sales_model_info{_labels(**model_info)} 1")
        lines += [
            "# HELP sales_model_reloads_total Bundles loaded since start.",
            "# TYPE sales_model_reloads_total counter",
            f"sales_model_reloads_total {reloads}",
            "# HELP sales_model_refusals_total Bundles refused (the old model kept serving).",
            "# TYPE sales_model_refusals_total counter",
            f"sales_model_refusals_total {refusals}",
        ]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware) so timing every request costs microseconds, not a task switch."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            # Label by route template, never by raw path, so unknown URLs cannot blow up the label set.
            endpoint = getattr(route, "path", "unmatched")
            self.metrics.observe_request(endpoint, scope["method"], status, time.perf_counter() - started)
