"""ASGI middleware of the service: the request body limit (answered before the body is read when declared)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sales_serving.errors import ServiceError, body_too_large_message, error_response
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
