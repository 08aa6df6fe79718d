"""Per-institution bounds on requests in flight, applied before a request's body is read.

An institution that opens many slow requests (a body that trickles in, a response it does not read)
holds a slot for each until the request ends; past `max_requests` slots (`max_uploads` for batch
uploads) it gets 429 `concurrency_limited` with Retry-After, and everyone else is served as before.
The caller is resolved from its bearer token here (cache first, else a short read of its own) and left
in the request's state for `deps.current_principal`. Consumers' ID tokens (JWTs) and requests without
a token pass through: they belong to persons and anonymous pages, which never hold a slot of an
institution's. The slots are counted in the store the server processes share (`register.shared`), so the
bounds hold across every process and host that shares it (SPEC section 7, "Processes and hosts"); if that
store does not answer, the request is refused with 503 `limits_unavailable`, never served unbounded.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from register.api.deps import GATE_PRINCIPAL, AppState
from register.api.problems import problem_response
from register.errors import LimitsUnavailable
from register.services.bearer import authenticate_bearer, cached_bearer
from register.shared import Counters, Slot
from register.shared.memory import MemoryCounters


class Slots:
    """Counted slots per key, with a smaller bound for one kind of request (uploads), kept in the store the
    server processes share (`register.shared`): the bounds hold across every process that shares it."""

    def __init__(self, max_requests: int, max_uploads: int, counters: Counters | None = None) -> None:
        self.max_requests, self.max_uploads = max_requests, max_uploads
        self.counters = counters if counters is not None else MemoryCounters()

    def acquire(self, key: str, *, upload: bool) -> Slot | None:
        bounds = [(f"requests:{key}", self.max_requests)]
        if upload:
            bounds.append((f"uploads:{key}", self.max_uploads))
        return self.counters.acquire(bounds)

    def release(self, slot: Slot) -> None:
        self.counters.release(slot)

    def in_flight(self, key: str) -> int:
        return self.counters.in_flight(f"requests:{key}")


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
        remote = self.slots.counters.remote  # a network round trip: off the event loop
        try:
            slot = (await run_in_threadpool(self.slots.acquire, key, upload=upload) if remote
                    else self.slots.acquire(key, upload=upload))  # fmt: skip
        except LimitsUnavailable as exc:
            response = problem_response(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers,
                                        request_id=scope["state"].get("request_id"))
            await response(scope, receive, send)
            return
        if slot is None:
            bound = self.slots.max_uploads if upload else self.slots.max_requests
            what = "batch uploads" if upload else "requests"
            response = problem_response(
                429, "concurrency_limited", "Too many requests",
                f"this institution already has {bound} {what} in flight; retry when one has ended",
                headers={"Retry-After": "1", "Connection": "close"}, request_id=scope["state"].get("request_id"),
            )
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if remote:
                await run_in_threadpool(self.slots.release, slot)
            else:
                self.slots.release(slot)
