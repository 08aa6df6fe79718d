"""SQL for persons: found and created by blind index only."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from register.storage.models import Person


def get_person_by_blind_index(session: Session, blind_index: bytes) -> Person | None:
    return session.execute(select(Person).where(Person.blind_index == blind_index)).scalar_one_or_none()


def get_persons(session: Session, ids: set[str]) -> dict[str, Person]:
    if not ids:
        return {}
    return {p.id: p for p in session.execute(select(Person).where(Person.id.in_(ids))).scalars()}


def get_or_create_person(session: Session, blind_index: bytes, make: Callable[[], Person]) -> Person:
    """The person with this blind index, created by `make()` if absent. Safe against a concurrent
    insert of the same person: the loser of the race re-reads the winner's row. The row found is locked
    against deletion (`FOR KEY SHARE` on PostgreSQL; nothing on SQLite, whose writers take turns) until the
    transaction ends, so retention never forgets a person a report is naming (storage.retention)."""
    stmt = select(Person).where(Person.blind_index == blind_index).with_for_update(key_share=True)
    found = session.execute(stmt).scalar_one_or_none()
    if found is not None:
        return found
    person = make()
    try:
        with session.begin_nested():
            session.add(person)
            session.flush()
    except IntegrityError:
        found = get_person_by_blind_index(session, blind_index)
        if found is None:
            raise
        return found
    return person
