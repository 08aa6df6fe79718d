"""SQL for credit bans: the one in force for a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from register.storage.dialect import statements
from register.storage.models import CreditBan


def active_ban_statement(person_id: str, now: datetime) -> Select[tuple[CreditBan]]:
    return (
        select(CreditBan)
        .where(CreditBan.person_id == person_id, CreditBan.since <= now,
               or_(CreditBan.until.is_(None), CreditBan.until > now),
               or_(CreditBan.lift_effective_at.is_(None), CreditBan.lift_effective_at > now))
        .order_by(CreditBan.since.desc())
        .limit(1)
    )  # fmt: skip


def active_ban(session: Session, person_id: str, now: datetime, *, for_update: bool = False) -> CreditBan | None:
    """The ban in force for this person at `now`, if any, as a row to change."""
    stmt = active_ban_statement(person_id, now)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def active_ban_brief(session: Session, person_id: str, now: datetime) -> Any:
    """The ban in force, with what an answer needs (id, reason, since), or None: on the exposure path, so
    a statement of the session's database (storage.dialect)."""
    return statements(session).active_ban_brief(session, person_id, now)
