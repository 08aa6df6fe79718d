"""When a failed call is tried again, and how long to wait.

Only calls that are safe to repeat are retried: GET, `PUT /v1/obligations/{ref}` (the register keeps
the newest `as_of`, so a repeat is an idempotent 200), `POST /v1/reports` when it carries an
`Idempotency-Key` and its body can be read again, and `POST /v1/consents/attested` (its evidence
reference names one consent: a repeat answers 200 with it). Never another POST (`/v1/exposure` writes an
access event per call; a repeat of a dispute's answer that was taken answers 409 `dispute_closed`), and
never a retraction (a repeat of a successful one answers 410).

A retryable failure is no answer at all (connection refused, reset, timeout) or 429, 502, 503, 504;
not a request this side could not even send (a header h11 refuses, an unsupported URL scheme), which
would fail the same way every time. Waits grow exponentially with full jitter (AWS's "exponential backoff and jitter"), and a Retry-After
header is obeyed up to `max_delay`.

A 503 with Retry-After is the register saying its database is being switched (`database_unavailable`: a
failover, measured at about 15 s) or otherwise coming back soon: such answers are retried past `attempts`,
as many times as their Retry-After waits take to cover `failover` seconds (30 by default: with the
register's `Retry-After: 2`, 16 attempts), so that a safe call outlasts a whole failover by default.
`failover=0` turns this off; `Retry(attempts=1)` never retries at all.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Retry:
    """`attempts` counts the first try: `Retry(attempts=1)` never retries."""

    attempts: int = 4
    backoff: float = 0.5  # seconds before the first retry, at most (jittered)
    max_delay: float = 20.0
    failover: float = 30.0  # seconds of Retry-After waits a 503 is retried for, past `attempts`
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 502, 503, 504}))
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def attempts_for(self, status: int | None, retry_after: float | None) -> int:
        """The most attempts for a call whose last answer was `status` with `retry_after` (None: no
        answer, or no header)."""
        if self.attempts == 1 or status != 503 or retry_after is None or self.failover <= 0:
            return self.attempts
        return max(self.attempts, 1 + math.ceil(self.failover / max(retry_after, 1.0)))

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        ceiling = min(self.max_delay, self.backoff * 2 ** (retry - 1))
        return random.uniform(0, ceiling) if self.jitter else ceiling


NO_RETRY = Retry(attempts=1)


@dataclass(frozen=True)
class RetryNotice:
    """What the client's `on_retry` hook is told before it waits and sends a call again, so that a
    person at a terminal sees a slow retry rather than a hang."""

    method: str
    path: str
    attempt: int  # the attempt about to be made: 2 for the first retry
    attempts: int  # the most there will be (`Retry.attempts`)
    delay: float  # seconds the client waits first
    reason: str  # what failed: "HTTP 503 Service Unavailable", or the connection error (never the token)


RetryHook = Callable[[RetryNotice], None]
