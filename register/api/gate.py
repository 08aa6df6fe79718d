"""Per-institution bounds on requests in flight, applied before a request's body is read.

An institution that opens many slow requests (a body that trickles in, a response it does not read)
holds a slot for each until the request ends; past `max_requests` slots (`max_uploads` for batch
uploads) it gets 429 `concurrency_limited` with Retry-After, and everyone else is served as before.
The caller is resolved from its bearer token here (cache first, else a short read of its own) and left
in the request's state for `deps.current_principal`. Consumers' ID tokens (JWTs) and requests without
a token pass through: they belong to persons and anonymous pages, which never hold a slot of an
institution's. The bounds are per server process (SPEC section 8).
"""

from __future__ import annotations

import threading
from collections import Counter

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from register.api.deps import GATE_PRINCIPAL, AppState
from register.api.problems import problem_response
from register.services.bearer import authenticate_bearer, cached_bearer


class Slots:
    """Counted slots per key, with a smaller bound for one kind of request (uploads)."""

    def __init__(self, max_requests: int, max_uploads: int) -> None:
        self.max_requests, self.max_uploads = max_requests, max_uploads
        self._requests: Counter[str] = Counter()
        self._uploads: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, key: str, *, upload: bool) -> bool:
        with self._lock:
            if self._requests[key] >= self.max_requests or (upload and self._uploads[key] >= self.max_uploads):
                return False
            self._requests[key] += 1
            if upload:
                self._uploads[key] += 1
            return True

    def release(self, key: str, *, upload: bool) -> None:
        with self._lock:
            self._requests[key] -= 1
            if self._requests[key] <= 0:
                del self._requests[key]
            if upload:
                self._uploads[key] -= 1
                if self._uploads[key] <= 0:
                    del self._uploads[key]

    def in_flight(self, key: str) -> int:
        return self._requests[key]


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class InstitutionGate:
    def __init__(self, app: ASGIApp, *, slots: Slots, upload_paths: tuple[str, ...]) -> None:
        self.app, self.slots, self.upload_paths = app, slots, upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer_token(scope) if scope["type"] == "http" else None
        if token is None or token.count(".") == 2:  # none, or a person's ID token
            await self.app(scope, receive, send)
            return
        state: AppState = scope["app"].state.register
        principal = cached_bearer(token, admin_token=state.admin_token, cache=state.tokens)
        if principal is None:
            principal = await run_in_threadpool(
                authenticate_bearer, state.sessions, token, admin_token=state.admin_token, now=state.clock(),
                cache=state.tokens)  # fmt: skip
        if principal is not None:  # deps.current_principal takes it from here: one lookup per request
            scope.setdefault("state", {})[GATE_PRINCIPAL] = principal
        if principal is None or principal.institution_id is None:  # refused later (401), or the operator
            await self.app(scope, receive, send)
            return
        key = principal.institution_id
        upload = scope["method"] == "POST" and scope["path"] in self.upload_paths
        if not self.slots.acquire(key, upload=upload):
            bound = self.slots.max_uploads if upload else self.slots.max_requests
            what = "batch uploads" if upload else "requests"
            response = problem_response(
                429, "concurrency_limited", "Too many requests",
                f"this institution already has {bound} {what} in flight on this server; retry when one has ended",
                headers={"Retry-After": "1", "Connection": "close"}, request_id=scope["state"].get("request_id"),
            )
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release(key, upload=upload)
