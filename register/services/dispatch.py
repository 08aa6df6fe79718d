"""The dispatcher: takes the outbox (storage.outbox) after commit and hands it to its consumers.

A consumer is anything with a `name` (its cursor in `outbox_cursors`) and three methods::

    class Consumer(Protocol):
        name: str
        def due(self, session, *, now: datetime) -> bool:
            # A cheap read: whether `deliver` has anything to do at `now`.
        def take(self, session, events: list[OutboxEvent], *, now: datetime) -> None:
            # In the transaction that moves this consumer's cursor past `events` (oldest first): queue the
            # work they make, in the consumer's own tables. Runs exactly once per event.
        def deliver(self, sessions: sessionmaker[Session], *, now: datetime) -> int:
            # Outside that transaction: do the queued work that is due (send it), record each outcome,
            # retry later what failed. Returns how many were attempted.

The webhooks are one consumer (services.webhooks.WebhookConsumer); a second (e-mail notices) plugs in by
passing it to `Dispatcher(consumers=[...])` or `dispatch_once`. `take` runs exactly once per event and
consumer (the cursor moves in its transaction), `deliver` at least once per queued item: a receiver may
see an event twice and tells by its id.

On PostgreSQL several dispatchers (server processes, `register events dispatch`) share the work: a cursor
is taken with SKIP LOCKED (one fans out at a time, the others pass on to delivering) and so are due
deliveries. On SQLite the writer gate lets one write at a time. An idle pass is one short read (is any
event past a cursor, is anything due?): a server that has nothing to tell writes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from register.services import outbox as told
from register.storage import outbox, webhooks
from register.storage.event_tables import OutboxEvent
from register.storage.types import utcnow

log = logging.getLogger("register.dispatch")
PAGE = 500  # events fanned out per transaction
OVERDUE_INTERVAL = 60.0  # seconds between two looks for disputes past their deadline (a write each)


class Consumer(Protocol):
    name: str

    def due(self, session: Session, *, now: datetime) -> bool: ...

    def take(self, session: Session, events: list[OutboxEvent], *, now: datetime) -> None: ...

    def deliver(self, sessions: sessionmaker[Session], *, now: datetime) -> int: ...


def fan_out(sessions: sessionmaker[Session], consumer: Consumer, *, now: datetime) -> int:
    """Hand the consumer every event past its cursor, a page per transaction; how many."""
    total = 0
    while True:
        with sessions.begin() as s:
            cursor = outbox.take_cursor(s, consumer.name, now=now)
            if cursor is None:  # another dispatcher is moving it on
                return total
            events = outbox.events_after(s, cursor.last_seq, limit=PAGE)
            if events:
                consumer.take(s, events, now=now)
                outbox.move_cursor(s, consumer.name, last_seq=events[-1].seq, now=now)
        total += len(events)
        if len(events) < PAGE:
            return total


def dispatch_once(sessions: sessionmaker[Session], consumers: Sequence[Consumer], *, now: datetime,
                  overdue: bool = True) -> dict[str, int]:
    """One pass: record disputes that fell overdue (unless `overdue` is False), fan new events out,
    deliver what is due. Each step that writes runs only if a first read found work for it."""
    counts = {"overdue": told.detect_overdue(sessions, now=now) if overdue else 0}
    with sessions() as s:
        behind = {c.name for c in consumers if outbox.has_events_after(s, c.name)}
        due = {c.name for c in consumers if c.due(s, now=now)}
    for c in consumers:
        counts[f"{c.name}.taken"] = fan_out(sessions, c, now=now) if c.name in behind else 0
        counts[f"{c.name}.attempted"] = c.deliver(sessions, now=now) if c.name in behind | due else 0
    return counts


class Dispatcher:
    """The server's background dispatcher (and `register events dispatch`'s loop): `dispatch_once` every
    `interval` seconds, or at once when woken."""

    def __init__(self, sessions: sessionmaker[Session], consumers: Sequence[Consumer], interval: float,
                 clock: Callable[[], datetime] = utcnow, overdue_interval: float = OVERDUE_INTERVAL) -> None:
        self.sessions, self.consumers, self.interval, self.clock = sessions, list(consumers), interval, clock
        self.overdue_interval, self._overdue_at = overdue_interval, 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self.run_forever, name="dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def wake(self) -> None:
        self._wake.set()

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                overdue = time.monotonic() - self._overdue_at >= self.overdue_interval
                dispatch_once(self.sessions, self.consumers, now=self.clock(), overdue=overdue)
                if overdue:
                    self._overdue_at = time.monotonic()
            except Exception:  # noqa: BLE001 - the next pass retries; each step is whole or not at all
                log.exception("dispatch pass failed; will retry")
            self._wake.wait(self.interval)
            self._wake.clear()


# --- what the operator sees (`register events status|dead|retry`) -----------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def status(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """How far the outbox and each consumer are, and webhook deliveries by state."""
    with sessions() as s:
        return {"last_seq": outbox.last_seq(s),
                "consumers": [{"name": c.name, "last_seq": c.last_seq, "position_at": _iso(c.position_at),
                               "updated_at": _iso(c.updated_at)} for c in outbox.cursors(s)],
                "deliveries": webhooks.count_by_state(s)}  # fmt: skip


def dead_letters(sessions: sessionmaker[Session], *, limit: int) -> list[dict[str, Any]]:
    with sessions() as s:
        return [{"id": d.id, "webhook_id": d.webhook_id, "institution_id": d.institution_id,
                 "event_id": d.event_id, "event_type": d.event_type, "attempts": d.attempts,
                 "last_attempt_at": _iso(d.last_attempt_at), "last_status": d.last_status,
                 "last_error": d.last_error} for d in webhooks.deliveries(s, state=webhooks.DEAD, limit=limit)]


def retry_dead(sessions: sessionmaker[Session], *, delivery_id: str | None, now: datetime) -> int:
    """Dead-lettered deliveries (one, or all if None) back to pending, due now; how many."""
    with sessions.begin() as s:
        return webhooks.retry_dead(s, now=now, delivery_id=delivery_id)
