"""The register's error tree.

Every refusal the register makes is a `RegisterError` with a stable machine-readable `code`, an HTTP
status and a human title; the API renders it as RFC 9457 problem+json. Domain and service code raise
these without knowing about HTTP frameworks. Messages never contain a national identity number.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegisterError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extra = extra or {}  # more members for the problem body (e.g. an access receipt)
        self.commit = False  # True: keep what was flushed (a refusal's own access event) before re-raising
        if code is not None:
            self.code = code  # type: ignore[misc]  # a subclass may refine its code per instance
        self.errors = errors
        self.headers = headers or {}
        super().__init__(self.detail)


class Unauthenticated(RegisterError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class SignInRequired(Unauthenticated):
    """The person's pages: no session, an unknown one, or one idle too long (`expired`). A page answers a GET
    with a redirect to sign-in."""

    code = "sign_in_required"
    title = "Please sign in"

    def __init__(self, detail: str | None = None, *, expired: bool = False) -> None:
        super().__init__(detail)
        self.expired = expired


class OAuthError(RegisterError):
    """A refusal by the OAuth token endpoint (RFC 6749 section 5.2). Still problem+json, with the
    standard `error` (the same as `code`) and `error_description` members, so that OAuth client
    libraries understand it."""

    status = 400
    code = "invalid_request"
    title = "Invalid token request"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.extra = {"error": self.code, "error_description": self.detail, **self.extra}
        self.headers = {"Cache-Control": "no-store", **self.headers}


class InvalidClient(OAuthError):
    """The client assertion did not authenticate the institution."""

    status = 401
    code = "invalid_client"
    title = "Client authentication failed"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"
    title = "Unsupported grant type"


class Forbidden(RegisterError):
    status = 403
    code = "forbidden"
    title = "Not allowed for this role"


class ConsentRequired(Forbidden):
    """Refused for want of a valid consent; `code` says which: consent_missing, consent_expired, ..."""

    code = "consent_missing"
    title = "No valid consent"


class AsOfNotAllowed(Forbidden):
    """An answer as of a past moment, asked for by a lender or a collector: only the regulator and the
    person it is about may ask (SPEC section 5)."""

    code = "as_of_not_allowed"


class NotFound(RegisterError):
    status = 404
    code = "not_found"
    title = "Not found"


class Gone(RegisterError):
    status = 410
    code = "retracted"
    title = "Retracted"


class Shredded(Gone):
    """A stored exposure answer whose response was removed at the end of its retention period."""

    code = "shredded"
    title = "No longer kept"


class Conflict(RegisterError):
    status = 409
    code = "conflict"
    title = "Conflict"


class StaleUpdate(Conflict):
    code = "stale_update"
    title = "Older than the stored state"


class PreconditionFailed(RegisterError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


class PayloadTooLarge(RegisterError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(RegisterError):
    """A body in a format the route does not take (JSON routes: any Content-Type but JSON)."""

    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class InvalidInput(RegisterError):
    """Semantically invalid input that passed schema validation (422)."""

    status = 422
    code = "invalid_input"
    title = "Invalid input"


class InvalidNationalIdentity(InvalidInput):
    code = "invalid_national_id"
    title = "Invalid national identity number"


class TooManyRequests(RegisterError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(RegisterError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"


class RequestTimeout(RegisterError):
    """The client stopped sending its request (headers or body) for longer than the register waits."""

    status = 408
    code = "request_timeout"
    title = "Request timeout"


class DatabaseUnavailable(ServiceUnavailable):
    """No database connection could be had in time (all busy, or the database is down or failing over).
    Nothing was changed; the request may be sent again after Retry-After."""

    code = "database_unavailable"
    title = "Database unavailable"


class LimitsUnavailable(ServiceUnavailable):
    """The store the server processes share their limits in (REGISTER_LIMITS_URL, REGISTER_LIMITS_FILE) did
    not answer: the request is refused rather than served without its bounds. Nothing was changed."""

    code = "limits_unavailable"
    title = "Limits unavailable"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "1"})
        super().__init__(detail or "the store of the shared limits did not answer; nothing was changed, retry "
                                   "shortly", **kwargs)
