"""What the sync and async clients share: configuration, requests, retry decisions, reading answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import pydantic

from register_client._calls import Call
from register_client._exceptions import (
    ConnectError,
    ProtocolError,
    Timeout,
    TransportError,
    api_error,
    parse_retry_after,
)
from register_client._retry import Retry
from register_client._version import __version__

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class BaseClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        retry: Retry | None,
        headers: Mapping[str, str] | None,
        user_agent: str | None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.retry = retry or Retry()
        self._headers = {"Accept": "application/json", "User-Agent": user_agent or f"register-client/{__version__}"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._headers.update(headers or {})

    def _http_options(self, timeout: float | httpx.Timeout | None) -> dict[str, Any]:
        # Redirects are not followed, so the token is never sent to another host.
        return {"base_url": self.base_url, "headers": self._headers, "follow_redirects": False,
                "timeout": DEFAULT_TIMEOUT if timeout is None else timeout}  # fmt: skip

    def _retry_delay(self, call: Call[Any], attempt: int, *, replayable: bool = True,
                     response: httpx.Response | None = None) -> float | None:
        """Seconds to wait before trying `call` again after failed attempt number `attempt`, or None when
        it must not be retried (not idempotent, no attempts left, or a failure retrying cannot fix)."""
        if not (call.idempotent and replayable) or attempt >= self.retry.attempts:
            return None
        if response is None:
            return self.retry.delay(attempt)
        if response.status_code not in self.retry.statuses:
            return None
        return self.retry.delay(attempt, parse_retry_after(response.headers.get("retry-after")))

    @staticmethod
    def _transport_error(exc: httpx.TransportError, url: str) -> TransportError:
        reason = str(exc) or type(exc).__name__
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
