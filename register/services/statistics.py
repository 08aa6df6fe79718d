"""Public statistics (issue #21, SPEC.md "Public statistics"): totals of live lines by country and kind,
persons by arrears bucket, persons with a collection claim, lookups per month and disputes by state, small
cells suppressed (`domain.statistics`).

The figures are aggregates over the whole register, so they are computed at most once per
`REGISTER_STATISTICS_SECONDS` per server process, by one request at a time, and served from memory in
between: however often the public asks, the database does the work once an interval, and lenders'
answers do not queue behind it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from register.domain.statistics import BUCKETS, MIN_PERSONS, row, to_csv
from register.storage import statistics as store

SECTIONS = ("obligations", "arrears", "collection", "lookups", "disputes")
MONTHS = 12


def _month_starts(now: datetime, months: int) -> list[datetime]:
    """The first moments of the last `months` calendar months (UTC), oldest first, and of the next month."""
    y, m = now.year, now.month
    starts = []
    for _ in range(months + 1):
        starts.append(datetime(y, m, 1, tzinfo=UTC))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    starts.reverse()
    nxt = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return starts[1:] + [nxt]


def compute(session: Session, now: datetime, *, min_persons: int = MIN_PERSONS) -> dict[str, Any]:
    persons = {(r.country, r.kind, r.currency): r.persons for r in store.persons_by_kind(session)}
    obligations = [row({"country": r.country or None, "kind": r.kind, "currency": r.currency},
                       persons.get((r.country, r.kind, r.currency), 0),
                       {"lines": r.lines, "balance": int(r.balance)}, min_persons=min_persons)
                   for r in sorted(store.lines_by_kind(session), key=lambda r: (r.country, r.kind, r.currency))]
    order = {name: i for i, (name, _, _) in enumerate(BUCKETS)}
    arrears = [row({"country": r.country or None, "bucket": r.bucket}, r.persons, {}, min_persons=min_persons)
               for r in sorted(store.arrears_buckets(session), key=lambda r: (r.country, order[r.bucket]))]
    collection = [row({"country": r.country or None}, r.persons, {"claims": r.claims}, min_persons=min_persons)
                  for r in sorted(store.collection_persons(session), key=lambda r: r.country)]
    starts = _month_starts(now, MONTHS)
    lookups = []
    for start, end in zip(starts, starts[1:]):
        r = store.lookups_between(session, start, end)
        lookups.append(row({"month": start.strftime("%Y-%m")}, r.persons, {"granted": r.granted, "refused": r.refused},
                           min_persons=min_persons))
    disputes = [row({"state": r.state}, r.persons, {"disputes": r.disputes}, min_persons=min_persons)
                for r in sorted(store.disputes_by_state(session, now), key=lambda r: r.state)]
    return {"as_of": now.isoformat().replace("+00:00", "Z"), "min_persons": min_persons,
            "obligations": obligations, "arrears": arrears, "collection": collection, "lookups": lookups,
            "disputes": disputes}  # fmt: skip


def as_csv(doc: dict[str, Any]) -> str:
    return to_csv(doc, SECTIONS)


class Statistics:
    """The latest figures of this process, recomputed when older than `seconds`: one request computes
    while the others (and later ones) are served the figures before it, or wait for the first ever."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime], seconds: float, *,
                 on_replica: bool = False) -> None:
        """`on_replica`: `sessions` are a standby's (SPEC.md, "Many machines": read routing), so the figures
        are always computed in a session of their own there, never in the caller's on the primary."""
        self._sessions, self._clock, self._seconds, self._on_replica = sessions, clock, seconds, on_replica
        self._lock = threading.Lock()
        self._doc: dict[str, Any] | None = None
        self._at = 0.0

    def current(self, session: Session | None = None) -> dict[str, Any]:
        """The figures; computed, when due, in `session` if given (a request that holds a transaction
        already: on SQLite a second one in the same thread would wait for the first's turn at the writer
        gate forever), else in a session of its own."""
        doc = self._doc
        if doc is not None and time.monotonic() - self._at < self._seconds:
            return doc
        if not self._lock.acquire(blocking=doc is None):
            return doc  # type: ignore[return-value]  # someone is computing; these figures are still served
        try:
            if self._doc is None or time.monotonic() - self._at >= self._seconds:
                if session is not None and not self._on_replica:
                    self._doc = compute(session, self._clock())
                else:
                    with self._sessions() as own:
                        self._doc = compute(own, self._clock())
                self._at = time.monotonic()
            return self._doc
        finally:
            self._lock.release()


def statistics_of(state: Any) -> Statistics:
    """The figures of this server process (`state`: the app's state, with `sessions`, `read_sessions`,
    `clock` and `settings`), made on first use: two made at once by a race would both be right. Computed on a
    standby when there is one (`read_sessions`): figures up to REGISTER_STATISTICS_SECONDS old may as well
    be a replication delay older."""
    found = getattr(state, "statistics", None)
    if found is None:
        reads = getattr(state, "read_sessions", None) or state.sessions
        found = Statistics(reads, state.clock, state.settings.statistics_seconds,
                           on_replica=reads is not state.sessions)
        state.statistics = found
    return found
