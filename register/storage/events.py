"""SQL for the access log. Inserts only: the table refuses updates and deletes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from register.storage.dialect import statements
from register.storage.models import AccessEvent, Person
from register.storage.pseudonyms import pseudonyms_for


def subjects_of(session: Session, blind_index: bytes) -> list[bytes]:
    """The subjects the events about a person carry, while they can still be linked to them: the one
    function every lookup of a person's events goes through (storage.pseudonyms). While a blind-index
    key rotation runs, a person has an index under each key (`persons.blind_index` and
    `blind_index_next`) and events recorded meanwhile may be linked through either: both are followed."""
    indexes = [blind_index]
    row = session.execute(select(Person.blind_index, Person.blind_index_next).where(
        or_(Person.blind_index == blind_index, Person.blind_index_next == blind_index))).first()
    if row is not None:
        indexes += [bytes(b) for b in row if b is not None and bytes(b) != blind_index]
    return [p for b in indexes for p in pseudonyms_for(session, b)]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An access event as written (events are never updated, so a plain record is all a caller needs)."""

    seq: int
    id: str
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_role: str
    action: str
    subject: bytes | None
    purpose: str | None
    consent_id: str | None
    outcome: str
    reason: str | None
    request_id: str | None
    details: dict | None
    leaf_version: int | None = None


def add_event(session: Session, values: dict) -> EventRecord:
    """Insert one event with a single statement of the session's database (storage.dialect: no unit of work,
    this is on every request's path). A database trigger queues it for the transparency log's integrator
    in the same transaction."""
    return EventRecord(seq=statements(session).add_event(session, values), **values)


def add_events(session: Session, rows: list[dict]) -> None:
    """Insert many events with one executemany (an answer about many persons records one each). The same
    trigger queues each for the transparency log."""
    if rows:
        session.execute(insert(AccessEvent), rows)


@dataclass(frozen=True)
class EventFilter:
    institution_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    subject: bytes | None = None  # a person's blind index: the events about them (`subjects_of`)
    exclude_actor_id: str | None = None
    exclude_actor_type: str | None = None


def list_events(
    session: Session, flt: EventFilter, *, after: tuple[datetime, str] | None, limit: int, newest_first: bool = False
) -> list[AccessEvent]:
    stmt = select(AccessEvent)
    if flt.institution_id is not None:
        stmt = stmt.where(AccessEvent.actor_id == flt.institution_id)
    if flt.action is not None:
        stmt = stmt.where(AccessEvent.action == flt.action)
    if flt.outcome is not None:
        stmt = stmt.where(AccessEvent.outcome == flt.outcome)
    if flt.since is not None:
        stmt = stmt.where(AccessEvent.occurred_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(AccessEvent.occurred_at < flt.until)
    if flt.subject is not None:
        stmt = stmt.where(AccessEvent.subject.in_(subjects_of(session, flt.subject)))
    if flt.exclude_actor_id is not None:
        stmt = stmt.where(or_(AccessEvent.actor_id.is_(None), AccessEvent.actor_id != flt.exclude_actor_id))
    if flt.exclude_actor_type is not None:
        stmt = stmt.where(AccessEvent.actor_type != flt.exclude_actor_type)
    if after is not None:
        ts, eid = after
        if newest_first:
            stmt = stmt.where(or_(AccessEvent.occurred_at < ts, and_(AccessEvent.occurred_at == ts, AccessEvent.id < eid)))
        else:
            stmt = stmt.where(or_(AccessEvent.occurred_at > ts, and_(AccessEvent.occurred_at == ts, AccessEvent.id > eid)))
    order = (AccessEvent.occurred_at.desc(), AccessEvent.id.desc()) if newest_first else (AccessEvent.occurred_at, AccessEvent.id)
    return list(session.execute(stmt.order_by(*order).limit(limit)).scalars())
