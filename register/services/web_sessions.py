"""The person's sessions on the pages under /app/ (register/web/session.py holds the cookie and the forms).

The cookie holds 32 random bytes; the `web_sessions` row holds only their SHA-256, the identity encrypted
bound to that row, its blind index, and the secret the session's form tokens are made from. A session idle
longer than `idle_seconds` (measured with the app's clock) is deleted when next presented.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.identity import NationalId, parse_national_id
from register.errors import SignInRequired
from register.storage import web_sessions as store
from register.storage.models import WebSession

TABLE, COLUMN = "web_sessions", "national_id_enc"


@dataclass(frozen=True)
class LiveSession:
    """A session presented in time: whose it is (`subject` is the blind index stored with it)."""

    token_hash: str
    national_id: NationalId
    subject: bytes
    csrf_secret: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_web_session(session: Session, cipher: FieldCipher, nid: NationalId, *, method: str, now: datetime,
                      idle_seconds: int) -> str:
    """A new session for the person; returns the cookie's token (never stored). Idle rows are swept here."""
    token = secrets.token_urlsafe(32)
    digest = token_hash(token)
    store.delete_idle_web_sessions(session, seen_before=now - timedelta(seconds=idle_seconds))
    store.add_web_session(session, WebSession(
        token_hash=digest, subject=cipher.blind_index(nid.blind_index_input()), country=nid.country,
        national_id_enc=cipher.encrypt(nid.number.encode(), table=TABLE, column=COLUMN, row_id=digest),
        csrf_secret=secrets.token_hex(32), method=method, created_at=now, last_seen_at=now,
    ))  # fmt: skip
    return token


def end_web_session(session: Session, token: str | None) -> None:
    if token:
        store.delete_web_session(session, token_hash(token))


def live_web_session(session: Session, cipher: FieldCipher, token: str, *, now: datetime,
                     idle_seconds: int) -> LiveSession:
    """The session this cookie's token opened, if it is still live; an idle one is deleted, and the refusal
    keeps that deletion (`commit`)."""
    digest = token_hash(token)
    row = store.get_web_session(session, digest)
    if row is None:
        raise SignInRequired("the session has ended")
    if now - row.last_seen_at > timedelta(seconds=idle_seconds):
        store.delete_web_session(session, digest)
        exc = SignInRequired("the session ended after a while without use", expired=True)
        exc.commit = True  # the idle session's row goes even though the request is refused
        raise exc
    number = cipher.decrypt(row.national_id_enc, table=TABLE, column=COLUMN, row_id=digest).decode()
    return LiveSession(token_hash=digest, national_id=parse_national_id(row.country, number, allow_test=True),
                       subject=row.subject, csrf_secret=row.csrf_secret)


def touch_web_session(session: Session, digest: str, *, now: datetime) -> None:
    """The session was used now: its idle time starts again."""
    store.touch_web_session(session, digest, now=now)
