"""The person's web sessions: found by the hash of the cookie's token, touched on each request, deleted
on sign-out or when found idle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from register.storage.models import WebSession


def add_web_session(session: Session, row: WebSession) -> WebSession:
    session.add(row)
    session.flush()
    return row


def get_web_session(session: Session, token_hash: str) -> WebSession | None:
    return session.execute(select(WebSession).where(WebSession.token_hash == token_hash)).scalar_one_or_none()


def touch_web_session(session: Session, token_hash: str, *, now: datetime) -> None:
    session.execute(update(WebSession).where(WebSession.token_hash == token_hash).values(last_seen_at=now))


def delete_web_session(session: Session, token_hash: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


def delete_idle_web_sessions(session: Session, *, seen_before: datetime) -> int:
    """Sessions nobody used since `seen_before`: refused anyway, so their rows are only clutter."""
    result = session.execute(delete(WebSession).where(WebSession.last_seen_at < seen_before))
    return result.rowcount or 0
