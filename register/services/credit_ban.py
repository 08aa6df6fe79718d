"""The credit ban a person sets on themselves, after a stolen identity or for self-control.

Advisory, as Finland's: an active ban does not hide anything. Every exposure answer carries
`credit_ban: {active: true, since, reason}` at the top, and every lookup made while it is on is logged with
`credit_ban_active`, so the regulator can see who lent anyway and the person sees each such lookup.

It takes effect at once. Lifting it (DELETE) takes effect only after `credit_ban_lift_seconds` (an hour by
default): a lift asked for under pressure can be taken back within that time by setting the ban again.
Time comes from the caller (the app's one injectable clock).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal
from register.errors import InvalidInput, NotFound
from register.services import identities
from register.services import outbox as told
from register.services.events import record_event
from register.storage import credit_bans
from register.storage.models import CreditBan

REASONS = ("identity_theft", "self_control", "other")


def active_ban(session: Session, person_id: str, now: datetime, *, for_update: bool = False,
               brief: bool = False) -> Any:
    """The ban in force for this person at `now`, if any. `brief`: only what an answer needs (id, reason,
    since), read as fast as the session's database allows, as on the rest of the exposure path."""
    if brief:
        return credit_bans.active_ban_brief(session, person_id, now)
    return credit_bans.active_ban(session, person_id, now, for_update=for_update)


def in_answer(ban: Any) -> dict[str, Any]:
    """What an exposure answer carries at its top."""
    if ban is None:
        return {"active": False}
    return {"active": True, "since": ban.since, "reason": ban.reason}


def state(ban: CreditBan | None) -> dict[str, Any]:
    """What the person sees: whether a ban is on, since when, why, until when, and when a lift takes effect."""
    if ban is None:
        return {"active": False, "since": None, "reason": None, "until": None, "lift_requested_at": None,
                "lift_effective_at": None}  # fmt: skip
    return {"active": True, "since": ban.since, "reason": ban.reason, "until": ban.until,
            "lift_requested_at": ban.lift_requested_at, "lift_effective_at": ban.lift_effective_at}  # fmt: skip


def get_ban(
    session: Session, cipher: FieldCipher, *, principal: Principal, now: datetime, request_id: str | None
) -> dict[str, Any]:
    assert principal.national_id is not None
    person = identities.find_person(session, cipher, principal.national_id)
    ban = active_ban(session, person.id, now) if person is not None else None
    record_event(session, principal=principal, action="consumer:credit_ban:read", now=now, request_id=request_id)
    return state(ban)


def set_ban(
    session: Session, cipher: FieldCipher, *, principal: Principal, reason: str, until: datetime | None,
    now: datetime, request_id: str | None, keep_until: bool = False,
) -> dict[str, Any]:
    """Set a ban now, or change the one in force; setting it again takes back a lift not yet in effect.
    A person the register has never heard of can set one too: that is when a stolen identity is used.
    `keep_until` (the page's "Keep the ban on"): the ban in force keeps its end date instead of `until`."""
    assert principal.national_id is not None
    if until is not None and until <= now:
        raise InvalidInput("`until` must be in the future", code="invalid_credit_ban", errors=[{"loc": ["body", "until"], "msg": "in the past"}])
    person = identities.resolve_person(session, cipher, principal.national_id)
    ban = active_ban(session, person.id, now, for_update=True)
    took_back = ban is not None and ban.lift_requested_at is not None
    if ban is None:
        ban = CreditBan(id=str(uuid.uuid4()), person_id=person.id, reason=reason, since=now, until=until)
        session.add(ban)
    else:
        if keep_until:
            until = ban.until
        ban.reason, ban.until = reason, until
        ban.lift_requested_at = ban.lift_effective_at = None
    session.flush()
    record_event(session, principal=principal, action="credit_ban:set", now=now, request_id=request_id,
                 details={"ban_id": ban.id, "reason": reason, "until": until.isoformat() if until else None,
                          "lift_taken_back": took_back})  # fmt: skip
    told.credit_ban(session, "credit_ban.set", ban, now=now)
    return state(ban)


def request_lift(
    session: Session, cipher: FieldCipher, *, principal: Principal, now: datetime, delay_seconds: int,
    request_id: str | None,
) -> dict[str, Any]:
    """Ask to lift the ban: it stays on for `delay_seconds` more. Asking again does not move the time."""
    assert principal.national_id is not None
    person = identities.find_person(session, cipher, principal.national_id)
    ban = active_ban(session, person.id, now, for_update=True) if person is not None else None
    if ban is None:
        raise NotFound("no credit ban is in force")
    if ban.lift_requested_at is None:
        ban.lift_requested_at, ban.lift_effective_at = now, now + timedelta(seconds=delay_seconds)
        session.flush()
        record_event(session, principal=principal, action="credit_ban:lift", now=now, request_id=request_id,
                     details={"ban_id": ban.id, "effective_at": ban.lift_effective_at.isoformat()})
        told.credit_ban(session, "credit_ban.lifted", ban, now=now)
    return state(ban)
