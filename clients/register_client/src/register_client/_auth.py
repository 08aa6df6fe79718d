"""Signing in with a key pair (OAuth2 client credentials with `private_key_jwt`, RFC 7523): the register
exchanges a short assertion the institution signs for a short-lived `rat_` access token, and this keeps
one at hand, so that nobody handles access tokens by hand.

`ClientAssertionAuth` is an `httpx.Auth`. Before each request it makes sure it holds an access token good
for a while yet (it refreshes `REFRESH_EARLY` seconds before the expiry, or half the token's life if that
is shorter); otherwise it signs in, sending the extra requests through the same client and transport:
once, the register's metadata (`GET /.well-known/oauth-authorization-server`, RFC 8414) for the audience
to sign for, unless one was given; then `POST /v1/oauth/token`. A request refused with 401 while an
older token was used (the operator revoked it, say) is sent once more after a new sign-in, when its body
can be sent again. All threads using one client share one token (a lock), as do the tasks of one event
loop. A refused sign-in raises the register's problem: `InvalidClient` for an unknown or revoked key.

What is signed, and with what, lives in `register_client.keys` (the `keys` extra, with `cryptography`):
this module needs no cryptography, so the plain SDK does not either.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx
import pydantic

from register_client._exceptions import InvalidRequest, ProtocolError, api_error

TOKEN_PATH = "/v1/oauth/token"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REFRESH_EARLY = 30.0  # seconds before an access token expires that a new one is fetched

# A sign-in: the requests it needs sent, each answered with its (read) response; it stores the token it got.
SignIn = Generator[httpx.Request, httpx.Response, str]


class _TokenAnswer(pydantic.BaseModel):
    access_token: str = pydantic.Field(min_length=1)
    expires_in: int = pydantic.Field(gt=0)


class ClientAssertionAuth(httpx.Auth):
    """An access token from signed client assertions, fetched when needed. `sign(audience, now)` makes a
    fresh assertion for `audience`, issued at `now` (seconds since the epoch)."""

    def __init__(self, sign: Callable[[str, float], str], *, audience: str | None = None) -> None:
        self._sign = sign
        self._audience = audience
        self._base: str | None = None  # the register's base URL, once a client is made with this auth
        self._token: str | None = None
        self._refresh_at = 0.0  # seconds since the epoch, on `_clock`
        self._lock = threading.RLock()
        self._async_lock: asyncio.Lock | None = None
        self._clock: Callable[[], float] = time.time  # the assertions' iat and exp; tests move it

    def _bind(self, base_url: str) -> None:
        """Called by the client this auth is given to: sign-ins go to that register."""
        if self._base is not None and self._base != base_url:
            raise InvalidRequest(f"this sign-in is for the register at {self._base}; make another for {base_url}")
        self._base = base_url

    # --- the flows httpx runs around each request ---------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token, fresh = self._held(), False
            if token is None:
                yield from _run_sync(self._sign_in(request))
                token, fresh = self._token, True
        response = yield _with_token(request, token)
        if response.status_code != 401:
            return
        with self._lock:
            self._forget(token)
            if fresh or not _replayable(request):
                return  # the next call signs in again
            if self._held() is None:
                yield from _run_sync(self._sign_in(request))
            token = self._token
        yield _with_token(request, token)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # A generator cannot `yield from` in async code: the sign-in's requests are yielded one by one here.
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        async with self._async_lock:
            token, fresh = self._held(), False
            if token is None:
                fresh, flow, answer = True, self._sign_in(request), None
                while (step := _step(flow, answer)) is not None:
                    answer = yield step
                    await answer.aread()
                token = self._token
        response = yield _with_token(request, token)
        if response.status_code != 401:
            return
        async with self._async_lock:
            self._forget(token)
            if fresh or not _replayable(request):
                return
            if self._held() is None:
                flow, answer = self._sign_in(request), None
                while (step := _step(flow, answer)) is not None:
                    answer = yield step
                    await answer.aread()
            token = self._token
        yield _with_token(request, token)

    # --- signing in ---------------------------------------------------------------------------------

    def _held(self) -> str | None:
        """The access token held, if it is good for a while yet."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def _forget(self, token: str) -> None:
        if self._token == token:
            self._token, self._refresh_at = None, 0.0

    def _sign_in(self, request: httpx.Request) -> SignIn:
        base = self._base or f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        if self._audience is None:
            answer = yield _sub_request(request, "GET", base + METADATA_PATH)
            self._audience = _audience_from(answer, base)
        now = self._clock()
        answer = yield _sub_request(request, "POST", base + TOKEN_PATH, data={
            "grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": self._sign(self._audience, now)})  # fmt: skip
        if answer.is_error:
            raise api_error(answer)
        try:
            issued = _TokenAnswer.model_validate_json(answer.content)
        except pydantic.ValidationError:
            raise ProtocolError(f"POST {TOKEN_PATH} answered {answer.status_code} without an access token") from None
        self._token = issued.access_token
        self._refresh_at = now + issued.expires_in - min(REFRESH_EARLY, issued.expires_in / 2)
        return issued.access_token

    def _token_now(self, http: httpx.Client) -> str:
        """An access token, signing in through `http` if none is held: for a tool that must hand a bearer
        token to another program (`register-client audit verify`)."""
        with self._lock:
            token = self._held()
            if token is None:
                flow, answer = self._sign_in(http.build_request("GET", "/")), None
                while (step := _step(flow, answer)) is not None:
                    answer = http.send(step, auth=None)  # the sign-in itself carries no token
                    answer.read()
                token = self._token
            assert token is not None
            return token


def signed_in_token(client: Any) -> str:
    """The access token a `RegisterClient` made with a key pair's sign-in uses, signing in if needed."""
    auth = client._auth
    if not isinstance(auth, ClientAssertionAuth):
        raise InvalidRequest("this client does not sign in with a key pair")
    return auth._token_now(client._http)


def _step(flow: SignIn, answer: httpx.Response | None) -> httpx.Request | None:
    """The sign-in's next request, or None when it is done (it has stored the token)."""
    try:
        return flow.send(answer)  # type: ignore[arg-type]
    except StopIteration:
        return None


def _run_sync(flow: SignIn) -> Generator[httpx.Request, httpx.Response, None]:
    """Run a sign-in inside a sync auth flow: each request it needs goes out as one of the flow's."""
    answer: httpx.Response | None = None
    while (step := _step(flow, answer)) is not None:
        answer = yield step
        answer.read()


def _with_token(request: httpx.Request, token: str) -> httpx.Request:
    request.headers["Authorization"] = f"Bearer {token}"
    return request


def _replayable(request: httpx.Request) -> bool:
    """Whether the body can be sent again (bytes can; an upload read from a file as it goes cannot)."""
    return isinstance(request.stream, httpx.ByteStream)


def _sub_request(request: httpx.Request, method: str, url: str, data: dict[str, str] | None = None) -> httpx.Request:
    """A sign-in request on behalf of `request`: its timeout and User-Agent, never its Authorization."""
    headers = {"Accept": "application/json"}
    if "user-agent" in request.headers:
        headers["User-Agent"] = request.headers["user-agent"]
    extensions: dict[str, Any] = {}
    if "timeout" in request.extensions:
        extensions["timeout"] = request.extensions["timeout"]
    return httpx.Request(method, url, data=data, headers=headers, extensions=extensions)


def _audience_from(answer: httpx.Response, base: str) -> str:
    """The `aud` the register expects, from its metadata. A register that has no metadata document
    expects its token endpoint's URL (RFC 7523 section 3)."""
    if answer.status_code == 404:
        return base + TOKEN_PATH
    if answer.is_error:
        raise api_error(answer)
    try:
        doc = answer.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for field in ("client_assertion_audience", "token_endpoint"):
            if isinstance(doc.get(field), str) and doc[field]:
                return doc[field]
    raise ProtocolError(f"GET {METADATA_PATH} answered {answer.status_code} without the audience to sign for")
