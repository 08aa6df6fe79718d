"""Limits on exposure queries, per institution: a rate (token bucket, per server process) and a daily
quota (a counter in the database, shared by every process).

The rate stops a runaway or hostile client from flooding one process; it is per process because it
guards that process's capacity, and N processes admit N times the rate. The quota bounds how many
people's debts one institution can see in a day however many processes serve it, so it is counted
durably, in the answer's own transaction (see `storage.quota`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from register.errors import TooManyRequests
from register.storage.quota import take_quota


class TokenBuckets:
    """One bucket per key: `burst` tokens, refilled at `rate` per second; a request takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token: 0.0 if one was there, else the seconds until one will be (nothing taken)."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class ExposureLimits:
    def __init__(self, *, rate: float, burst: int, daily_quota: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.buckets = TokenBuckets(rate, burst, clock)
        self.daily_quota = daily_quota

    def check_rate(self, institution_id: str) -> None:
        wait = self.buckets.take(institution_id)
        if wait > 0:
            raise TooManyRequests(
                f"more than {self.buckets.rate:g} exposure queries per second; retry after the wait given",
                code="rate_limited", headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def take_quota(self, session: Session, *, institution_id: str, now: datetime) -> None:
        """Count one answer against today's (UTC) quota, or refuse until tomorrow."""
        if self.daily_quota <= 0:
            return
        today = now.astimezone(UTC).date()
        if take_quota(session, institution_id=institution_id, day=today, quota=self.daily_quota) is None:
            tomorrow = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
            raise TooManyRequests(
                f"the daily quota of {self.daily_quota} exposure answers is used up until 00:00 UTC",
                code="quota_exceeded",
                headers={"Retry-After": str(max(1, math.ceil((tomorrow - now).total_seconds())))},
            )
