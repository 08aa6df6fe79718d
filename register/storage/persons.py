"""SQL for persons: found and created by blind index only."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from register.storage.models import Person


def _indexed(values: Sequence[bytes]):  # noqa: ANN202
    """A person indexed under any of these values, in either column: during a blind-index rotation a person
    carries its index under the other live key in blind_index_next (dual lookup; services.keys)."""
    return or_(Person.blind_index.in_(values), Person.blind_index_next.in_(values))


def get_person_by_blind_index(session: Session, blind_index: bytes) -> Person | None:
    return session.execute(select(Person).where(_indexed([blind_index])).limit(1)).scalar_one_or_none()


def get_persons(session: Session, ids: set[str]) -> dict[str, Person]:
    if not ids:
        return {}
    return {p.id: p for p in session.execute(select(Person).where(Person.id.in_(ids))).scalars()}


def get_or_create_person(session: Session, blind_index: bytes | Sequence[bytes], make: Callable[[], Person]) -> Person:
    """The person with this blind index, created by `make()` if absent. Safe against a concurrent
    insert of the same person: the loser of the race re-reads the winner's row. The row found is locked
    against deletion (`FOR KEY SHARE` on PostgreSQL; nothing on SQLite, whose writers take turns) until the
    transaction ends, so retention never forgets a person a report is naming (storage.retention)."""
    values = [blind_index] if isinstance(blind_index, bytes) else list(blind_index)
    stmt = select(Person).where(_indexed(values)).limit(1).with_for_update(key_share=True)
    found = session.execute(stmt).scalar_one_or_none()
    if found is not None:
        return found
    person = make()
    try:
        with session.begin_nested():
            session.add(person)
            session.flush()
    except IntegrityError:
        found = session.execute(select(Person).where(_indexed(values)).limit(1)).scalar_one_or_none()
        if found is None:
            raise
        return found
    return person
