"""ASGI middleware of the service: the request body limit (answered before the body is read when declared)
and the JSON shape limits (answered before the body is parsed into any model)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sales_serving.errors import ServiceError, body_too_large_message, error_response
from sales_serving.limits import check_json_shape
from sales_serving.metrics import observe_unrouted


class BodyLimitMiddleware:
    """Answers 413 before reading a body whose Content-Length is over the limit, and stops a chunked one there."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            error = ServiceError(413, "payload_too_large", body_too_large_message(self.max_body_bytes))
            observe_unrouted(scope["method"], 413)
            await error_response(error, scope.get("path", ""))(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # FastAPI re-raises HTTPException from body reading, so the 413 handler answers it.
                raise StarletteHTTPException(413)
            return message

        await self.app(scope, receive_within_limit, send)


class BodyShapeMiddleware:
    """Reads a JSON POST body whole (the body limit outside it bounds that) and answers 413 when its shape
    is over the limits (`limits.check_json_shape`), before any route parses it; else hands the same bytes on."""

    def __init__(self, app: ASGIApp, max_keys: int, max_depth: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_keys = max_keys
        self.max_depth = max_depth
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away: let the app see it
                    await self.app(scope, _replay(message, receive), send)
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            check_json_shape(body, self.max_keys, self.max_depth)
        except StarletteHTTPException as stopped:  # the body limit stopped a streamed body
            error = ServiceError(
                stopped.status_code, "payload_too_large", body_too_large_message(self.max_body_bytes)
            )
            observe_unrouted(scope["method"], error.status)
            await error_response(error, scope.get("path", ""))(scope, receive, send)
            return
        except ServiceError as error:
            observe_unrouted(scope["method"], error.status)
            await error_response(error, scope.get("path", ""))(scope, receive, send)
            return
        await self.app(
            scope, _replay({"type": "http.request", "body": body, "more_body": False}, receive), send
        )


def _replay(first: Message, receive: Receive) -> Receive:
    """`receive` that gives `first` once, then the real messages (a disconnect)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return replayed
