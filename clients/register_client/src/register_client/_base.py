"""What the sync and async clients share: configuration, requests, retry decisions, reading answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import pydantic

from register_client._auth import ClientAssertionAuth
from register_client._calls import Call
from register_client._exceptions import (
    ConnectError,
    InvalidRequest,
    ProtocolError,
    Timeout,
    TransportError,
    api_error,
    parse_retry_after,
    redact,
)
from register_client._retry import Retry, RetryHook, RetryNotice
from register_client._version import __version__

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Failures on this side, before anything was sent: the same request would fail again.
NOT_RETRIED = (httpx.LocalProtocolError, httpx.UnsupportedProtocol)


def clean_token(token: str | None) -> str | None:
    """The token as it goes into the Authorization header. Surrounding whitespace (a trailing `\\r` from a
    Windows env file, a newline from `$(cat token)`) is dropped; whitespace or control characters inside
    it are refused here, since httpx would otherwise fail with an error that quotes the header."""
    if token is None:
        return None
    token = token.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise InvalidRequest("the token contains whitespace or control characters")
    if not token.isascii():
        raise InvalidRequest("the token contains characters other than ASCII")
    return token or None


def clean_base_url(base_url: str) -> str:
    if not base_url.startswith(("http://", "https://")):
        raise InvalidRequest(f"base_url must be an http(s) URL, got {base_url!r}")
    base = base_url.rstrip("/")
    if base.endswith("/v1"):  # every path already starts with /v1: this would ask for /v1/v1/...
        raise InvalidRequest(f"base_url is the register's base URL, without /v1: {base[:-3]!r}")
    return base


class BaseClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        retry: Retry | None,
        headers: Mapping[str, str] | None,
        user_agent: str | None,
        on_retry: RetryHook | None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.base_url = clean_base_url(base_url)
        self.retry = retry or Retry()
        self.on_retry = on_retry
        self._token = clean_token(token)
        if auth is not None and self._token:
            raise InvalidRequest("give a token or auth (a key pair's sign-in), not both")
        if isinstance(auth, ClientAssertionAuth):
            auth._bind(self.base_url)
        self._auth = auth
        self._headers = {"Accept": "application/json", "User-Agent": user_agent or f"register-client/{__version__}"}
        if self._token:
            self._headers["Authorization"] = f"Bearer {self._token}"
        self._headers.update(headers or {})

    def _http_options(self, timeout: float | httpx.Timeout | None) -> dict[str, Any]:
        # Redirects are not followed, so the token is never sent to another host.
        return {"base_url": self.base_url, "headers": self._headers, "follow_redirects": False, "auth": self._auth,
                "timeout": DEFAULT_TIMEOUT if timeout is None else timeout}  # fmt: skip

    def _retry_delay(self, call: Call[Any], attempt: int, *, replayable: bool = True,
                     response: httpx.Response | None = None, error: httpx.TransportError | None = None) -> float | None:
        """Seconds to wait before trying `call` again after failed attempt number `attempt`, or None when
        it must not be retried (not idempotent, no attempts left, or a failure retrying cannot fix).
        `on_retry` hears of every retry before the wait."""
        if not (call.idempotent and replayable):
            return None
        if response is None:
            attempts = self.retry.attempts
            if isinstance(error, NOT_RETRIED) or attempt >= attempts:
                return None
            delay = self.retry.delay(attempt)
            reason = self._reason(error) if error is not None else "no answer"
        elif response.status_code not in self.retry.statuses:
            return None
        else:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            attempts = self.retry.attempts_for(response.status_code, retry_after)  # a failover: longer
            if attempt >= attempts:
                return None
            delay = self.retry.delay(attempt, retry_after)
            reason = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        if self.on_retry is not None:
            self.on_retry(RetryNotice(call.method, call.path, attempt + 1, attempts, delay, reason))
        return delay

    def _reason(self, exc: httpx.TransportError) -> str:
        return redact(str(exc) or type(exc).__name__, self._token)

    def _transport_error(self, exc: httpx.TransportError, url: str) -> TransportError:
        reason = self._reason(exc)
        if isinstance(exc, httpx.TimeoutException):
            return Timeout(f"the register at {url} did not answer in time ({reason})", request=exc.request)
        if isinstance(exc, httpx.ConnectError):
            return ConnectError(f"cannot reach the register at {url}: {reason}", request=exc.request)
        return TransportError(f"the connection to the register at {url} failed: {reason}", request=exc.request)

    def _read(self, call: Call[T], response: httpx.Response) -> T:
        """The answer as `call.model`, or the error it means."""
        if response.is_error:
            raise api_error(response)
        if call.model is None:
            return None  # type: ignore[return-value]
        try:
            result = call.model.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            raise ProtocolError(
                f"{call.method} {call.path} answered {response.status_code} with a body that is not "
                f"{call.model.__name__}: {_first_error(exc)}"
            ) from None
        etag = response.headers.get("etag")
        if etag is not None and hasattr(result, "_etag"):
            result._etag = etag
        return result

    def _read_report(self, call: Call[T], response: httpx.Response) -> T:
        """The answer to an upload. The register answers a repeat (the same Idempotency-Key and body) with
        200 and the first report, and a new report with 202."""
        report = self._read(call, response)
        report._repeated = response.status_code == 200  # type: ignore[attr-defined]
        return report

    def _read_line(self, call: Call[T], line: str) -> T:
        """One line of an NDJSON answer."""
        model = call.model
        assert model is not None
        try:
            return model.model_validate(json.loads(line))
        except (ValueError, pydantic.ValidationError) as exc:
            raise ProtocolError(f"{call.path}: a line that is not {model.__name__}: {exc}") from None


def _first_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
