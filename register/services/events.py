"""Recording access events: every look and every change, in the transaction of the work it records.

An answer that returns data about persons records one event per distinct person it returned
(`record_per_person`), so each of them finds it in their own access log; the regulator finds an answer
that returned nobody as one event without a subject.

Callers name an event's subject by the person's blind index; the event carries, instead, the person's
pseudonym for the month (`storage.pseudonyms`, SPEC.md section 4, "Leaves"), so that once the person is
forgotten, or the month's events pass their retention period, nothing links the event to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.audit.leaf import LEAF_VERSION
from register.domain.permission import Principal
from register.storage.events import EventRecord, add_event, add_events
from register.storage.pseudonyms import pseudonym_at, pseudonyms_at_once

__all__ = ["EventRecord", "event_values", "record_event", "record_per_person"]

# The ids a per-person event names: enough for the person to tell which of their debts or disputes, and
# a bounded event however many one answer returned (`count` says how many there were).
MAX_IDS_PER_EVENT = 50


def event_values(principal: Principal, *, action: str, now: datetime, outcome: str, subject: bytes | None,
            session: Session | None = None, purpose: str | None = None, consent_id: str | None = None,
            reason: str | None = None, request_id: str | None = None,
            details: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event's row. `subject` is the person's blind index; the row carries their pseudonym for `now`'s
    month, made in `session` (required with a subject) if it is the month's first event about them."""
    if subject is not None:
        if session is None:
            raise TypeError("an event about a person needs the session its pseudonym is read or made in")
        subject = pseudonym_at(session, subject, now)
    return {
        "id": str(uuid.uuid4()), "occurred_at": now, "actor_type": principal.actor_type,
        "actor_id": principal.institution_id, "actor_role": principal.role.value, "action": action,
        "subject": subject, "purpose": purpose, "consent_id": consent_id, "outcome": outcome, "reason": reason,
        "request_id": request_id, "details": details, "leaf_version": LEAF_VERSION,
    }  # fmt: skip


def record_event(
    session: Session,
    *,
    principal: Principal,
    action: str,
    now: datetime,
    outcome: str = "ok",
    subject: bytes | None = None,
    purpose: str | None = None,
    consent_id: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> EventRecord:
    """Add one event. It commits with the request's transaction or not at all: if it cannot be written,
    the request fails and returns nothing."""
    return add_event(session, event_values(
        principal, action=action, now=now, outcome=outcome, session=session,
        subject=subject if subject is not None else principal.subject, purpose=purpose, consent_id=consent_id,
        reason=reason, request_id=request_id, details=details,
    ))  # fmt: skip


def record_per_person(
    session: Session,
    *,
    principal: Principal,
    action: str,
    now: datetime,
    returned: Iterable[tuple[bytes, str]],
    item: str,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Record an answer about persons: one event per distinct person it returned, whose subject is that
    person. `returned` holds (the person's blind index, the id of an object about them in the answer);
    each event's details carry `count`, that person's objects in the answer, and their ids as `{item}s`
    (at most MAX_IDS_PER_EVENT, sorted). An answer that returned nobody is one event without a subject,
    so the regulator still sees every read. In the request's transaction, as `record_event`; returns the
    number of events."""
    by_person: dict[bytes, set[str]] = {}
    for subject, object_id in returned:
        by_person.setdefault(subject, set()).add(object_id)
    common = details or {}
    if not by_person:
        record_event(session, principal=principal, action=action, now=now, request_id=request_id,
                     details={**common, "count": 0})
        return 1
    pseudonyms = pseudonyms_at_once(session, list(by_person), now)
    rows = []
    for subject, ids in sorted(by_person.items()):
        row = event_values(principal, action=action, now=now, outcome="ok", subject=None, request_id=request_id,
                           details={**common, "count": len(ids), f"{item}s": sorted(ids)[:MAX_IDS_PER_EVENT]})
        rows.append({**row, "subject": pseudonyms[subject]})
    add_events(session, rows)
    return len(by_person)
