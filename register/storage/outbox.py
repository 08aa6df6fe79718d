"""The transactional outbox: every change worth telling is written as one row of `outbox_events` in the
same transaction as the change, so a change that rolls back tells nobody and one that commits is never
lost. Consumers take the rows after commit, each at its own pace (services.outbox).

Writing (any service, inside its transaction)::

    from register.storage import outbox
    outbox.record(session, "consent.revoked", institution_id=consent.institution_id,
                  subject=consent.person_id, data={"consent_id": consent.id}, at=now)

- `type`: one of `EVENT_TYPES` (`<noun>.<verb>`; a prefix such as `consent` names every `consent.*`).
- `institution_id`: the institution whose feed (`GET /v1/events`) and webhooks carry it, or None for an
  event that concerns the person alone (a credit ban).
- `subject`: the id (`persons.id`) of the person it concerns, or None. Never an identity number: neither
  here nor in `data`, which every consumer may show.
- `data`: a small JSON object of ids and states, what a receiver needs to fetch the rest.

`seq` grows in commit order: on PostgreSQL `record` takes a transaction-scoped advisory lock before its
insert (storage.dialect `lock_outbox`), so a row with a smaller `seq` is never committed after a reader
has read past it; on SQLite the writer gate already serialises writers. A reader may therefore keep a
plain "last seq seen" (the feed's `after`, a consumer's cursor) and never miss a row.

Lookups (an exposure answer granted or refused) are not written here: they are already recorded, in the
same transaction as the answer, as access events (`storage.events`), and a consumer that tells about them
reads `access_events` by `seq` instead, keeping the lender's hot path free of a second write.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from register.storage.dialect import statements
from register.storage.event_tables import OutboxCursor, OutboxEvent
from register.storage.types import utcnow

EVENT_TYPES = (
    "consent.given", "consent.revoked",
    "dispute.opened", "dispute.answered", "dispute.withdrawn", "dispute.overdue",
    "credit_ban.set", "credit_ban.lifted",
    "report.finished",
)  # fmt: skip
PREFIXES = tuple(sorted({t.split(".")[0] for t in EVENT_TYPES}))
# Recorded with institution_id None: the person's alone, never in a feed or a webhook delivery.
PERSON_ONLY_TYPES = ("credit_ban.set", "credit_ban.lifted")
INSTITUTION_TYPES = tuple(t for t in EVENT_TYPES if t not in PERSON_ONLY_TYPES)
INSTITUTION_PREFIXES = tuple(sorted({t.split(".")[0] for t in INSTITUTION_TYPES}))


def record(session: Session, type: str, *, institution_id: str | None, subject: str | None,  # noqa: A002
           data: dict[str, Any], at: datetime | None = None) -> str:
    """Write one event in the caller's transaction; its stable id (a UUID), which every delivery carries."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event_id = str(uuid.uuid4())
    statements(session).lock_outbox(session)
    session.execute(insert(OutboxEvent).values(
        id=event_id, type=type, institution_id=institution_id, person_id=subject,
        occurred_at=at or utcnow(), data=data))  # fmt: skip
    return event_id


def events_after(session: Session, after: int, *, limit: int, institution_id: str | None = None,
                 since: datetime | None = None) -> list[OutboxEvent]:
    """Events with `seq` > `after`, oldest first; only one institution's if `institution_id` is given, and
    none older than `since`."""
    stmt = select(OutboxEvent).where(OutboxEvent.seq > after)
    if institution_id is not None:
        stmt = stmt.where(OutboxEvent.institution_id == institution_id)
    if since is not None:
        stmt = stmt.where(OutboxEvent.occurred_at >= since)
    return list(session.scalars(stmt.order_by(OutboxEvent.seq).limit(limit)))


def events_by_seq(session: Session, seqs: Sequence[int]) -> dict[int, OutboxEvent]:
    rows = session.scalars(select(OutboxEvent).where(OutboxEvent.seq.in_(list(seqs)))) if seqs else []
    return {e.seq: e for e in rows}


def last_seq(session: Session) -> int:
    from sqlalchemy import func

    return session.execute(select(func.coalesce(func.max(OutboxEvent.seq), 0))).scalar_one()


def take_cursor(session: Session, name: str, *, now: datetime) -> OutboxCursor | None:
    """The cursor of consumer `name`, locked for this transaction; None if another dispatcher holds it
    (PostgreSQL, SKIP LOCKED: that one is moving it on). Created at 0 the first time."""
    if session.get(OutboxCursor, name) is None:
        statements(session).insert_ignore(session, OutboxCursor.__table__,
                                          {"name": name, "last_seq": 0, "position_at": None, "updated_at": now})
    stmt = statements(session).skip_locked(select(OutboxCursor).where(OutboxCursor.name == name))
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def move_cursor(session: Session, name: str, *, last_seq: int | None = None, position_at: datetime | None = None,
                now: datetime) -> None:
    values: dict[str, Any] = {"updated_at": now}
    if last_seq is not None:
        values["last_seq"] = last_seq
    if position_at is not None:
        values["position_at"] = position_at
    session.execute(update(OutboxCursor).where(OutboxCursor.name == name).values(**values))


def has_events_after(session: Session, name: str) -> bool:
    """Whether any event is past consumer `name`'s cursor (all of them, if it has none yet)."""
    last = session.execute(select(OutboxCursor.last_seq).where(OutboxCursor.name == name)).scalar() or 0
    # In seq order, so that the answer is one step of the primary key whatever the statistics: unordered,
    # PostgreSQL scanned the whole table for a row past the cursor (8 ms at 20,000 events, each poll).
    return session.execute(select(OutboxEvent.seq).where(OutboxEvent.seq > last).order_by(OutboxEvent.seq)
                           .limit(1)).first() is not None


def cursors(session: Session) -> list[OutboxCursor]:
    return list(session.scalars(select(OutboxCursor).order_by(OutboxCursor.name)))


def delete_older_than(session: Session, cutoff: datetime, *, limit: int = 5000) -> int:
    """Delete up to `limit` events that occurred before `cutoff` (the retention run, REGISTER_EVENT_FEED_DAYS)."""
    seqs = list(session.scalars(select(OutboxEvent.seq).where(OutboxEvent.occurred_at < cutoff)
                                .order_by(OutboxEvent.seq).limit(limit)))
    if seqs:
        session.execute(delete(OutboxEvent).where(OutboxEvent.seq.in_(seqs)))
    return len(seqs)


def forget_person(session: Session, person_id: str) -> int:
    """Unlink a forgotten person's events from them (the events stay for their institutions' feeds)."""
    return session.execute(update(OutboxEvent).where(OutboxEvent.person_id == person_id)
                           .values(person_id=None)).rowcount or 0
