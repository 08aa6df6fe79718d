"""Limits on exposure queries, per institution: a rate (a token bucket in the store the server processes
share, `register.shared`) and a daily quota (a counter in the database); and, for queries with an
attested consent, a second, lower rate and quota on top of those.

The rate stops a runaway or hostile client from flooding the register: N processes (on M hosts, with
REGISTER_LIMITS_URL) admit the rate once between them, not N times. The quota bounds how many people's
debts one institution can see in a day however many processes serve it, so it is counted durably, in the
answer's own transaction (see `storage.quota`).

An attested consent is one the institution recorded itself, for a person it names: with those, it alone
chooses whose debts it reads. Their lookups are bounded apart, so that the general limits, sized for a
lender's whole traffic, do not also bound how fast it could read people it merely named.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from register.errors import TooManyRequests
from register.shared import Counters
from register.shared.memory import MemoryCounters
from register.storage import quota as store


class TokenBuckets:
    """One bucket per key: `burst` tokens, refilled at `rate` per second; a request takes one. The buckets
    are kept in `counters` under `kind:key`, where every process that shares them takes from the same one."""

    def __init__(self, rate: float, burst: int, counters: Counters, kind: str) -> None:
        self.rate, self.burst, self.counters, self.kind = rate, burst, counters, kind

    def take(self, key: str) -> float:
        """Take a token: 0.0 if one was there, else the seconds until one will be (nothing taken). Raises
        `LimitsUnavailable` (503) if the shared store does not answer: never unlimited."""
        if self.rate <= 0:
            return 0.0
        return self.counters.take(f"{self.kind}:{key}", rate=self.rate, burst=self.burst)


class ExposureLimits:
    def __init__(self, *, rate: float, burst: int, daily_quota: int, attested_rate: float = 0.0,
                 attested_daily_quota: int = 0, clock: Callable[[], float] = time.monotonic,
                 counters: Counters | None = None) -> None:
        counters = counters if counters is not None else MemoryCounters(clock)
        self.buckets = TokenBuckets(rate, burst, counters, "exposure")
        self.daily_quota = daily_quota
        # One second's worth at once: a branch sends its applicants' lookups one by one, never in bulk.
        self.attested_buckets = TokenBuckets(attested_rate, max(1, math.ceil(attested_rate)), counters, "attested")
        self.attested_daily_quota = attested_daily_quota

    def check_rate(self, institution_id: str) -> None:
        wait = self.buckets.take(institution_id)
        if wait > 0:
            raise TooManyRequests(
                f"more than {self.buckets.rate:g} exposure queries per second; retry after the wait given",
                code="rate_limited", headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def check_attested_rate(self, institution_id: str) -> None:
        """For a query with an attested consent, on top of `check_rate`."""
        wait = self.attested_buckets.take(institution_id)
        if wait > 0:
            raise TooManyRequests(
                f"more than {self.attested_buckets.rate:g} exposure queries per second with attested consents; "
                "retry after the wait given",
                code="attested_rate_limited", headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def quota_take(self, *, institution_id: str, now: datetime, attested: bool = False) -> store.QuotaTake | None:
        """What one answer counts against today's (UTC) quotas: the general one and, for an answer with an
        attested consent, the attested one too; None if no quota applies. Counted by the answer's own
        writes (`storage.exposure.grant_answer`)."""
        today = now.astimezone(UTC).date()
        if not attested or self.attested_daily_quota <= 0:
            if self.daily_quota <= 0:
                return None
            return store.QuotaTake(institution_id=institution_id, day=today, quota=self.daily_quota)
        return store.QuotaTake(institution_id=institution_id, day=today,
                               quota=self.daily_quota if self.daily_quota > 0 else store.UNLIMITED,
                               attested=self.attested_daily_quota, count_attested=True)

    def used_up(self, session: Session, take: store.QuotaTake, now: datetime) -> TooManyRequests:
        """The refusal for an answer `take` could not count: which quota is used up, and until when."""
        if not take.count_attested:
            return self._used_up(now, f"the daily quota of {self.daily_quota} exposure answers", "quota_exceeded")
        used, _ = store.usage(session, institution_id=take.institution_id, day=take.day)
        if 0 < self.daily_quota <= used:
            return self._used_up(now, f"the daily quota of {self.daily_quota} exposure answers", "quota_exceeded")
        return self._used_up(now, f"the daily quota of {self.attested_daily_quota} exposure answers with attested "
                                  "consents", "attested_quota_exceeded")

    @staticmethod
    def _used_up(now: datetime, what: str, code: str) -> TooManyRequests:
        today = now.astimezone(UTC).date()
        tomorrow = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
        return TooManyRequests(f"{what} is used up until 00:00 UTC", code=code,
                               headers={"Retry-After": str(max(1, math.ceil((tomorrow - now).total_seconds())))})
