"""The regulator's view of the access log. Reading it is itself recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal
from register.services import identities
from register.services.events import record_event
from register.services.paging import decode_cursor, encode_cursor
from register.storage.events import EventFilter, list_events
from register.storage.signals import events_by_ids
from register.storage.institutions import names_by_id
from register.storage.log import leaf_indexes_for
from register.storage.models import AccessEvent


def search_events(
    session: Session,
    cipher: FieldCipher,
    *,
    reads: Session | None = None,
    principal: Principal,
    institution_id: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    identity: tuple[str, str] | None,
    cursor: str | None,
    limit: int,
    now: datetime,
    request_id: str | None,
    allow_test_ids: bool,
) -> tuple[list[tuple[AccessEvent, str | None, int | None]], str | None]:
    """A page of events in time order, filtered, each with its institution's name and its leaf index in the
    transparency log (None until integrated) (`since` inclusive, `until` exclusive). `identity` (country,
    number) narrows to one person, by blind index. The events are read in `reads` (a standby's session:
    a moment old, SPEC.md "Many machines") when given; the regulator's own access event is written in
    `session`, the request's transaction on the primary."""
    reads = reads or session
    subject = None
    if identity is not None:
        nid = identities.parse_identity(*identity, allow_test=allow_test_ids, loc=("body", "national_id"))
        subject = identities.blind_index(cipher, nid)
    flt = EventFilter(institution_id=institution_id, action=action, outcome=outcome, since=since, until=until,
                      subject=subject)
    after = decode_cursor(cursor) if cursor else None
    rows = list_events(reads, flt, after=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    names = names_by_id(reads, {e.actor_id for e in page if e.actor_id})
    leaves = leaf_indexes_for(reads, [e.seq for e in page if e.seq is not None])
    record_event(
        session, principal=principal, action="regulator:events:search" if subject else "regulator:events:read",
        now=now, subject=subject, request_id=request_id,
        details={k: v for k, v in {"institution_id": flt.institution_id, "action": flt.action,
                                   "outcome": flt.outcome}.items() if v},
    )  # fmt: skip
    next_cursor = encode_cursor(page[-1].occurred_at, page[-1].id) if more else None
    return [(e, names.get(e.actor_id) if e.actor_id else None, leaves.get(e.seq) if e.seq is not None else None)
            for e in page], next_cursor


def events_by_id(session: Session, event_ids: list[str]) -> list[tuple[AccessEvent, str | None]]:
    """The access events with these ids, in log order, each with its institution's name: a signal's evidence,
    shown on the regulator's desk beside the ids. Not recorded again: the signal read that named the ids is
    (as GET /v1/regulator/signals?proofs=true gives the same events whole under that one read)."""
    events = events_by_ids(session, event_ids)
    names = names_by_id(session, {e.actor_id for e in events if e.actor_id})
    return [(e, names.get(e.actor_id) if e.actor_id else None) for e in events]
