"""Per-route request metrics without a middleware: FastAPI's custom route class counts and times each request
of the routes it serves (FastAPI docs, "Custom Request and APIRoute class")."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.routing import APIRoute

from sales_serving.errors import status_for
from sales_serving.metrics import LATENCY, request_counter


class InstrumentedRoute(APIRoute):
    """Counts and times each request of its routes (FastAPI's custom route class), errors included."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        endpoint = self.path_format
        latency = LATENCY.labels(endpoint)

        async def instrumented(request: Request) -> Response:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status_code
                return response
            except Exception as error:
                status = status_for(error, endpoint)
                raise
            finally:
                latency.observe(time.perf_counter() - started)
                request_counter(endpoint, request.method, str(status)).inc()

        return instrumented
