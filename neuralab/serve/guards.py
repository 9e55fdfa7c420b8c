"""ASGI middleware around the app: a request body size limit, and request counts and
latency histograms for `/metrics`.

Both are plain ASGI callables rather than Starlette's `BaseHTTPMiddleware`, which costs
a task and a stream per request: on a tiny model that is a visible share of the latency.
"""

from __future__ import annotations

import time

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neuralab.errors import NeuralabError

# Latency buckets in seconds, from a cached tiny-model prediction to a slow first load.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def error_body(where: str, what: str, hint: str = "") -> bytes:
    """The JSON every error response carries."""
    return orjson.dumps({"error": {"where": where, "what": what, "hint": hint}})


class ApiError(Exception):
    """A `NeuralabError` that must answer with a particular status (404, 401, ...)."""

    def __init__(self, status: int, error: NeuralabError) -> None:
        super().__init__(str(error))
        self.status, self.error = status, error


class BodyLimit:
    """Refuses a request body over `max_bytes` with 413 before the app reads any of it.

    The declared Content-Length is checked first; a chunked body is counted as it
    arrives, and buffered (it is at most `max_bytes`) so the app sees it unchanged.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # after the body, only a disconnect can come
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = error_body(
            "request", f"body larger than {self.max_bytes} bytes", "send fewer samples per request"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """Counts requests by route and status and times them, into `registry`.

    The route label is the matched path template (`/v1/models/{name}/predict`), never the
    raw path, so probing many URLs cannot grow the number of series without bound.
    """

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "neuralab_requests",
            "HTTP requests answered, by route, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "neuralab_request_seconds",
            "Time from request to response, by route.",
            ("route",),
            buckets=BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = _route(scope)
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", "unmatched")
