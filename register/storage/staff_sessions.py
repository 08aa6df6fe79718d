"""The regulator's staff sessions on the desk: found by the hash of the cookie's token, touched on each
request, deleted on sign-out or when found idle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from register.storage.models import Institution, StaffSession


def add_staff_session(session: Session, row: StaffSession) -> StaffSession:
    session.add(row)
    session.flush()
    return row


def get_staff_session(session: Session, token_hash: str) -> tuple[StaffSession, Institution] | None:
    """The session and the institution it speaks for, as that institution is now."""
    row = session.execute(select(StaffSession, Institution).join(
        Institution, Institution.id == StaffSession.institution_id).where(
        StaffSession.token_hash == token_hash)).one_or_none()
    return (row[0], row[1]) if row is not None else None


def touch_staff_session(session: Session, token_hash: str, *, now: datetime) -> None:
    session.execute(update(StaffSession).where(StaffSession.token_hash == token_hash).values(last_seen_at=now))


def delete_staff_session(session: Session, token_hash: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash))


def delete_idle_staff_sessions(session: Session, *, seen_before: datetime) -> int:
    result = session.execute(delete(StaffSession).where(StaffSession.last_seen_at < seen_before))
    return result.rowcount or 0


def institutions_of_role(session: Session, role: str) -> list[Institution]:
    return list(session.execute(select(Institution).where(Institution.role == role)
                                .order_by(Institution.name, Institution.id)).scalars())
