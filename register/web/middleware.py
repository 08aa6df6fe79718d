"""Every answer under /app/ is a page's answer, whoever gave it: a page's route, the router (a redirect
from /app to /app/, no such address, a wrong method), or the body-size cap (a form too large). This
middleware gives each the pages' security headers, and answers HEAD as GET without the body.

It wraps the body-size cap, whose 413 for a page is an error page too (`too_large_page`).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from register.web.render import http_error_page, set_security_headers
from register.web.staff_session import is_desk


def is_page(path: str) -> bool:
    return path == "/app" or path.startswith("/app/") or is_desk(path)


class PageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        inner = {**scope, "method": "GET"} if head else scope  # the request log keeps saying HEAD

        async def send_page(message: Message) -> None:
            if message["type"] == "http.response.start":
                set_security_headers(MutableHeaders(scope=message))
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}  # GET's headers (Content-Length too), no body
            await send(message)

        try:
            await self.app(inner, receive, send_page)
        finally:
            if head and "route" in inner:  # for the request log and metrics
                scope["route"] = inner["route"]


async def too_large_page(scope: Scope, max_bytes: int) -> Response | None:
    """The body-size cap's answer to a page's form: an error page (413) in the person's language, with
    their navigation if they are signed in. None elsewhere: the API answers with problem+json."""
    if not is_page(scope["path"]):
        return None
    return await run_in_threadpool(http_error_page, Request(scope), 413, "payload_too_large")
