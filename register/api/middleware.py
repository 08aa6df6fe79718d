"""Pure ASGI middleware: request ids, the request log, Prometheus metrics and the body-size cap."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from register.api.problems import problem_response
from register.errors import RequestTimeout

log = logging.getLogger("register.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "register_http_requests", "HTTP requests by route and status", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "register_http_request_duration_seconds", "HTTP request latency by route", ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID if well-formed), logs one JSON line per
    request with the route template (never the raw path or query), and records metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def _series(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The request's counter and histogram, looked up once per method, route template and status
        (prometheus_client's `labels` takes a lock and builds its key on every call)."""
        key = (method, route, status)
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = (self.metrics.requests.labels(method, route, str(status)),
                                            self.metrics.latency.labels(method, route))
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            counter, histogram = self._series(scope["method"], route, status)
            counter.inc()
            histogram.observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "actor": scope["state"].get("actor"),
                },
            )


def timed_receive(receive: Receive, timeout: float) -> Receive:
    """`receive` with a deadline on each piece of the request body: a client that stops sending gets
    RequestTimeout instead of holding the request open. Once the body is complete, later calls (Starlette
    listens for a disconnect while it streams a response) wait as long as they need."""
    complete = False

    async def receive_in_time() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        try:
            async with asyncio.timeout(timeout):
                message = await receive()
        except TimeoutError:
            # The rest of the body is never read: the connection is closed after the answer.
            raise RequestTimeout(f"no part of the request body arrived for {timeout:g} seconds",
                                 headers={"Connection": "close"}) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            complete = True
        return message

    return receive_in_time


TooLarge = Callable[[Scope, int], Awaitable[Response | None]]


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, and bodies that stop arriving for `timeout`
    seconds with 408, before the app sees them. Paths in `streaming_paths` take bodies of any size and
    enforce their own limits (the read deadline still holds there: RequestTimeout reaches the route).
    `too_large` may answer the 413 itself (the pages answer with a page); where it gives None, the
    answer is problem+json."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float, streaming_paths: tuple[str, ...] = (),
                 too_large: TooLarge | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.streaming_paths = streaming_paths
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        receive = timed_receive(receive, self.timeout)
        if scope["method"] in ("GET", "HEAD") or scope["path"] in self.streaming_paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        # More than 18 digits is over any cap; int() of over 4,300 digits would raise.
        if declared is not None and declared.isdigit() and (len(declared) > 18 or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
        except RequestTimeout as exc:
            await _refuse(scope, receive, send, exc.status, exc.code, exc.title, exc.detail)
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.too_large(scope, self.max_bytes) if self.too_large else None
        if response is None:
            await _refuse(scope, receive, send, 413, "payload_too_large", "Request body too large",
                          f"request bodies are limited to {self.max_bytes} bytes")
            return
        await response(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, title: str, detail: str) -> None:
    """Answer before the app has seen the request; the rest of the body is not read, so the connection
    is closed after the answer."""
    response = problem_response(status, code, title, detail, headers={"Connection": "close"},
                                request_id=scope.get("state", {}).get("request_id"))
    await response(scope, receive, send)
