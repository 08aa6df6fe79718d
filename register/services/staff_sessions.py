"""The regulator's staff on the desk under /regulator/ (register/web/staff_session.py holds the cookie).

A staff session speaks for one institution, which must hold the regulator role: when the session begins
and again on every request (an institution whose role changed loses its desk at once). The cookie holds
32 random bytes; the `staff_sessions` row holds only their SHA-256, the institution, a SHA-256 of the
staff member's provider and subject (never the subject itself), the form tokens' secret, and the idle clock.
The principal a live session gives is the one the regulator's API token gives (`register.api.deps`), so a
desk page leaves the same access events as the matching API read.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from register.domain.permission import Principal, Role
from register.errors import Forbidden, SignInRequired
from register.storage import staff_sessions as store
from register.storage.models import StaffSession


class NotARegulator(Forbidden):
    """The institution named by the staff member's provider (or picked in development) is not a regulator."""

    code = "not_a_regulator"
    title = "Only a regulator's staff may use the desk"


@dataclass(frozen=True)
class LiveStaffSession:
    token_hash: str
    principal: Principal
    institution_name: str
    csrf_secret: str


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def staff_hash(issuer: str, subject: str) -> str:
    """Who signed in, kept only as a hash: enough to tell two staff members' sessions apart."""
    return _hash(f"{issuer}\n{subject}")


def regulator_principal(session: Session, institution_id: str) -> tuple[Principal, str]:
    """The regulator institution's principal and name, or NotARegulator (unknown, or another role)."""
    found = store.institutions_of_role(session, Role.regulator.value)
    for inst in found:
        if inst.id == institution_id:
            return Principal(role=Role.regulator, name=inst.name, institution_id=inst.id), inst.name
    raise NotARegulator("that institution is not a regulator")


def regulators(session: Session) -> list[tuple[str, str]]:
    """Every regulator institution (id, name), by name: the development sign-in's choice."""
    return [(i.id, i.name) for i in store.institutions_of_role(session, Role.regulator.value)]


def start_staff_session(session: Session, *, institution_id: str, staff: str, method: str, now: datetime,
                        idle_seconds: int) -> str:
    """A new session for a regulator's staff member; returns the cookie's token (never stored)."""
    regulator_principal(session, institution_id)
    token = secrets.token_urlsafe(32)
    store.delete_idle_staff_sessions(session, seen_before=now - timedelta(seconds=idle_seconds))
    store.add_staff_session(session, StaffSession(
        token_hash=_hash(token), institution_id=institution_id, staff=staff, csrf_secret=secrets.token_hex(32),
        method=method, created_at=now, last_seen_at=now,
    ))  # fmt: skip
    return token


def end_staff_session(session: Session, token: str | None) -> None:
    if token:
        store.delete_staff_session(session, _hash(token))


def live_staff_session(session: Session, token: str, *, now: datetime, idle_seconds: int) -> LiveStaffSession:
    """The session this token opened, if it is still live and its institution is still a regulator."""
    digest = _hash(token)
    found = store.get_staff_session(session, digest)
    if found is None:
        raise SignInRequired("the session has ended")
    row, inst = found
    if now - row.last_seen_at > timedelta(seconds=idle_seconds) or inst.role != Role.regulator.value:
        store.delete_staff_session(session, digest)
        exc = SignInRequired("the session ended", expired=inst.role == Role.regulator.value)
        exc.commit = True  # the row goes even though the request is refused
        raise exc
    principal = Principal(role=Role.regulator, name=inst.name, institution_id=inst.id)
    return LiveStaffSession(token_hash=digest, principal=principal, institution_name=inst.name,
                            csrf_secret=row.csrf_secret)


def touch_staff_session(session: Session, digest: str, *, now: datetime) -> None:
    store.touch_staff_session(session, digest, now=now)
