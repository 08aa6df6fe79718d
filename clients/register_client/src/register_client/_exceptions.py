"""Every error the SDK raises, in one tree.

```
RegisterError                     anything this SDK raises
├── InvalidRequest                refused by the SDK before sending: nothing reached the register
├── TransportError                no HTTP answer at all (retried for idempotent calls)
│   ├── ConnectError              the register is down or unreachable (refused, DNS, TLS)
│   └── Timeout                   it did not answer in time
├── ProtocolError                 a 2xx answer that is not what the contract describes
└── APIError                      the register answered with a problem (RFC 9457); `.code` is stable
    ├── BadRequest                400
    ├── Unauthenticated           401 unauthenticated: a missing, malformed or unknown token
    │   ├── InvalidIdToken        401 invalid_id_token (consumers)
    │   └── InvalidClient         401 invalid_client: a key pair's sign-in refused (unknown or revoked key,
    │                             wrong audience, clock off); the detail says which check failed
    ├── Forbidden                 403 forbidden: the role lacks the permission
    │   ├── AsOfNotAllowed        as_of_not_allowed: a lender or collector asked for an answer as of a past
    │   │                         moment (only the regulator and the person may)
    │   └── ConsentRequired       403 exposure refused; `.receipt` proves the refusal was logged
    │       ├── ConsentMissing    consent_missing
    │       ├── ConsentMismatch   consent_mismatch: another institution, person or purpose
    │       ├── ConsentRevoked    consent_revoked
    │       └── ConsentExpired    consent_expired
    ├── NotFound                  404 (another institution's object is 404 too)
    ├── Conflict                  409
    │   ├── StaleUpdate           stale_update: an older `as_of` than the stored state
    │   ├── IdempotencyConflict   idempotency_conflict: the key was used for another body
    │   ├── NotYetIntegrated      not_yet_integrated
    │   ├── DisputeClosed         dispute_closed: answering a dispute that is no longer open
    │   ├── DisputeOpen           dispute_open: the person already has an open dispute on that line
    │   ├── DisputeNotUpheld      dispute_not_upheld: a statement on a dispute that was not upheld
    │   └── ReferenceReused       reference_reused: an attested consent's evidence reference names another
    │                             person's (or purpose's) consent of your institution
    ├── Retracted                 410 retracted (every 410 lands here)
    │   └── Shredded              shredded: a stored exposure answer past its retention period (its hash stays)
    ├── PreconditionFailed        412 precondition_failed: a stale If-Match
    ├── PayloadTooLarge           413 payload_too_large
    ├── UnsupportedMediaType      415 unsupported_media_type: a body not sent as JSON (Content-Type)
    ├── InvalidInput              422 (any other 422 code lands here, with its `.code`)
    │   ├── ValidationFailed      validation_error: the body or query does not match the schema
    │   ├── InvalidNationalId     invalid_national_id; `.debtor_index` names the debtor
    │   ├── DuplicateDebtor       duplicate_debtor
    │   ├── InvalidObligation     invalid_obligation: a cross-field rule
    │   ├── InvalidConsent        invalid_consent
    │   ├── InvalidCursor         invalid_cursor
    │   ├── EmptyReport           empty_report
    │   ├── DisputeNotFound       dispute_not_found: `corrects_dispute` names no open dispute on that line
    │   │                         (a 422 about the report, not a NotFound: an unknown dispute id is 404)
    │   ├── StatementTooLong      statement_too_long: a statement over 200 words
    │   ├── InvalidCreditBan      invalid_credit_ban: a credit ban's `until` in the past
    │   └── WebhookUrlRefused     webhook_url_refused: not https to a public address (SSRF)
    ├── RequestTimeout            408 request_timeout: the request's body stopped arriving
    ├── RateLimited               429; `.retry_after` in seconds (retried for idempotent calls); `.code`:
    │   │                         rate_limited, quota_exceeded, or, for lookups with attested consents,
    │   │                         attested_rate_limited, attested_quota_exceeded
    │   └── ConcurrencyLimited    concurrency_limited: the institution has too many requests in flight
    └── ServerError               5xx
        └── ServiceUnavailable    503 (retried for idempotent calls)
            └── DatabaseUnavailable  database_unavailable: no database connection in time; nothing changed
```

The class is chosen by the problem's `code` first and its HTTP status second, so a code the SDK does
not know yet still lands on the right branch (`except InvalidInput` catches every 422). An `APIError`
keeps the whole problem document in `.problem`; messages never contain identity numbers because the
register's never do.

`InvalidRequest` is the SDK's own refusal: a body that does not fit its request model (an unknown field,
a float amount, a consent id that is not a UUID), a token with whitespace or control characters, a base
URL ending in /v1. It is also a `ValueError`. Its `.errors` list `{loc, msg, type}` per problem and, like
its message, never include the refused values (they may be identity numbers or a token). Messages never
contain the token: transport errors that quote the Authorization header are redacted.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pydantic

# A bearer credential quoted in someone else's message (h11's "Illegal header value b'Bearer ...'").
_CREDENTIAL = re.compile(r"(?i)\b(bearer\s+)[^\s'\"]+|\br[ga]t_[^\s'\"]+")


def redact(text: str, token: str | None = None) -> str:
    """`text` without the token, or anything that looks like a bearer credential."""
    if token:
        text = text.replace(token, "[token]")
    return _CREDENTIAL.sub(lambda m: f"{m.group(1)}[token]" if m.group(1) else "[token]", text)


class RegisterError(Exception):
    """Base of every error this SDK raises."""


class InvalidRequest(RegisterError, ValueError):
    """The SDK refused the request (or the client's configuration) before sending anything."""

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = list(errors or [])

    @classmethod
    def from_validation(cls, exc: pydantic.ValidationError, what: str) -> InvalidRequest:
        # pydantic's own message quotes every refused value: an identity number must not end up in a log.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in errors)
        return cls(f"invalid {what}: {problems}", errors=errors)


class TransportError(RegisterError):
    """The request got no HTTP answer."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class ConnectError(TransportError):
    """The register could not be reached: connection refused, DNS, TLS."""


class Timeout(TransportError):
    """The register did not answer within the client's timeout."""


class ProtocolError(RegisterError):
    """A successful answer whose body is not what the contract describes."""


class APIError(RegisterError):
    """The register refused the request; the fields are the problem document's."""

    def __init__(self, problem: dict[str, Any], *, status: int, headers: httpx.Headers | None = None) -> None:
        self.problem = problem
        self.status: int = status
        self.code: str = str(problem.get("code") or "http_error")
        self.title: str = str(problem.get("title") or httpx.codes.get_reason_phrase(status) or "Error")
        self.detail: str = str(problem.get("detail") or self.title)
        self.request_id: str | None = problem.get("request_id") or (headers or {}).get("x-request-id")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        self.headers = headers or httpx.Headers()
        super().__init__(f"{self.title}: {self.detail}" if self.detail != self.title else self.title)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, detail={self.detail!r})"


class BadRequest(APIError):
    pass


class Unauthenticated(APIError):
    pass


class InvalidIdToken(Unauthenticated):
    pass


class InvalidClient(Unauthenticated):
    pass


class Forbidden(APIError):
    pass


class AsOfNotAllowed(Forbidden):
    pass


class ConsentRequired(Forbidden):
    @property
    def receipt(self) -> dict[str, Any] | None:
        """The signed receipt of the refused query's access event, when the register gave one."""
        receipt = self.problem.get("receipt")
        return receipt if isinstance(receipt, dict) else None


class ConsentMissing(ConsentRequired):
    pass


class ConsentMismatch(ConsentRequired):
    pass


class ConsentRevoked(ConsentRequired):
    pass


class ConsentExpired(ConsentRequired):
    pass


class NotFound(APIError):
    pass


class Conflict(APIError):
    pass


class StaleUpdate(Conflict):
    pass


class IdempotencyConflict(Conflict):
    pass


class NotYetIntegrated(Conflict):
    pass


class DisputeClosed(Conflict):
    pass


class DisputeOpen(Conflict):
    pass


class DisputeNotUpheld(Conflict):
    pass


class ReferenceReused(Conflict):
    pass


class Retracted(APIError):
    pass


class Shredded(Retracted):
    pass


class PreconditionFailed(APIError):
    pass


class PayloadTooLarge(APIError):
    pass


class UnsupportedMediaType(APIError):
    pass


class InvalidInput(APIError):
    pass


class ValidationFailed(InvalidInput):
    pass


class InvalidNationalId(InvalidInput):
    @property
    def debtor_index(self) -> int | None:
        """Which debtor's number was refused (0-based), for obligation reports; None elsewhere."""
        for error in self.errors:
            loc = list(error.get("loc") or [])
            if "debtors" in loc and loc.index("debtors") + 1 < len(loc):
                index = loc[loc.index("debtors") + 1]
                if isinstance(index, int):
                    return index
        return None


class DuplicateDebtor(InvalidInput):
    pass


class InvalidObligation(InvalidInput):
    pass


class InvalidConsent(InvalidInput):
    pass


class InvalidCursor(InvalidInput):
    pass


class EmptyReport(InvalidInput):
    pass


class DisputeNotFound(InvalidInput):
    pass


class StatementTooLong(InvalidInput):
    pass


class InvalidCreditBan(InvalidInput):
    pass


class WebhookUrlRefused(InvalidInput):
    """The webhook's URL is not one the register will call (not https, or not a public address)."""


class RateLimited(APIError):
    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ConcurrencyLimited(RateLimited):
    pass


class RequestTimeout(APIError):
    pass


class ServerError(APIError):
    pass


class ServiceUnavailable(ServerError):
    pass


class DatabaseUnavailable(ServiceUnavailable):
    pass


BY_CODE: dict[str, type[APIError]] = {
    "unauthenticated": Unauthenticated,
    "invalid_id_token": InvalidIdToken,
    "invalid_client": InvalidClient,
    "forbidden": Forbidden,
    "as_of_not_allowed": AsOfNotAllowed,
    "consent_missing": ConsentMissing,
    "consent_mismatch": ConsentMismatch,
    "consent_revoked": ConsentRevoked,
    "consent_expired": ConsentExpired,
    "stale_update": StaleUpdate,
    "idempotency_conflict": IdempotencyConflict,
    "not_yet_integrated": NotYetIntegrated,
    "dispute_closed": DisputeClosed,
    "dispute_open": DisputeOpen,
    "dispute_not_upheld": DisputeNotUpheld,
    "reference_reused": ReferenceReused,
    "retracted": Retracted,
    "shredded": Shredded,
    "precondition_failed": PreconditionFailed,
    "payload_too_large": PayloadTooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "validation_error": ValidationFailed,
    "invalid_national_id": InvalidNationalId,
    "duplicate_debtor": DuplicateDebtor,
    "invalid_obligation": InvalidObligation,
    "invalid_consent": InvalidConsent,
    "invalid_cursor": InvalidCursor,
    "empty_report": EmptyReport,
    "dispute_not_found": DisputeNotFound,
    "statement_too_long": StatementTooLong,
    "webhook_url_refused": WebhookUrlRefused,
    "invalid_credit_ban": InvalidCreditBan,
    "rate_limited": RateLimited,
    "concurrency_limited": ConcurrencyLimited,
    "request_timeout": RequestTimeout,
    "unavailable": ServiceUnavailable,
    "database_unavailable": DatabaseUnavailable,
}

BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Retracted,
    412: PreconditionFailed,
    408: RequestTimeout,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidInput,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status: int, code: str | None) -> type[APIError]:
    """The most specific class for a problem: by code, else by status, else by status family."""
    cls = BY_CODE.get(code or "")
    if cls is not None and issubclass(cls, BY_STATUS.get(status, APIError)):
        return cls
    if status in BY_STATUS:
        return BY_STATUS[status]
    return ServerError if status >= 500 else APIError


def api_error(response: httpx.Response) -> APIError:
    """The exception for an error answer. Bodies that are not problem+json (a proxy's HTML page) still
    give the right class by status, with the start of the body as the detail."""
    problem: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict):
            problem = body
    except ValueError:
        text = response.text.strip()
        if text:  # a debugging proxy's page may echo the request's headers
            problem = {"detail": redact(" ".join(text.split()))[:300]}
    return error_class(response.status_code, problem.get("code"))(
        problem, status=response.status_code, headers=response.headers
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the delta form; an HTTP date is ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
