"""The person's own view: their debts, who looked at them, their consents. Each read is itself an event."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.exposure import compute_exposure
from register.domain.permission import Principal
from register.audit.leaf import encode_leaf
from register.errors import Conflict, NotFound
from register.services import credit_ban, disputes, identities, translog
from register.services.events import record_event
from register.services.paging import decode_cursor, encode_cursor
from register.canonical import canonical_json
from register.services.exposure import lines_for_person
from register.storage import consents as consent_store
from register.storage import obligations as obligation_store
from register.storage.events import EventFilter, list_events
from register.storage.log import event_by_id, leaf_indexes_for
from register.storage.institutions import contacts_by_id, names_by_id
from register.storage.models import AccessEvent, Consent, Dispute
from register.storage.pseudonyms import is_about


def my_obligations(
    session: Session, cipher: FieldCipher, *, principal: Principal, now: datetime, request_id: str | None
) -> dict[str, Any]:
    """Every debt naming me (own, joint, guaranteed, closed), with totals computed as a lender sees them."""
    assert principal.national_id is not None
    person = identities.find_person(session, cipher, principal.national_id)
    lines = lines_for_person(session, person.id, cipher) if person else []
    refs = {ln.obligation_id: ln.external_ref for ln in lines}
    doc = compute_exposure(lines, now=now, include_closed=True)
    ban = credit_ban.active_ban(session, person.id, now, brief=True) if person else None
    contacts = contacts_by_id(session, {ln["creditor"]["id"] for ln in doc["obligations"]})
    mine = _latest_disputes(session, person.id, [ln["id"] for ln in doc["obligations"]]) if person else {}
    for ln in doc["obligations"]:
        ln["creditor"] |= contacts.get(ln["creditor"]["id"], {})
        ln["reference"] = refs.get(ln["id"])  # the creditor's own, on their letters (the pages show it)
        d = mine.get(ln["id"])
        ln["dispute"] = None if d is None else {"id": d.id, "state": disputes.shown_state(d, now),
                                                "deadline": d.deadline_at}
    record_event(session, principal=principal, action="consumer:obligations:read", now=now, request_id=request_id)
    doc = {"subject": {"country": principal.national_id.country, "national_id_masked": principal.national_id.masked()},
           "as_of": now, "credit_ban": credit_ban.in_answer(ban), **doc}  # fmt: skip
    return json.loads(canonical_json(doc))


def _latest_disputes(session: Session, person_id: str, obligation_ids: list[str]) -> dict[str, Dispute]:
    """The person's most recent dispute on each of these lines."""
    if not obligation_ids:
        return {}
    rows = session.scalars(select(Dispute).where(Dispute.person_id == person_id,
                                                 Dispute.obligation_id.in_(obligation_ids))
                           .order_by(Dispute.opened_at))  # fmt: skip
    return {d.obligation_id: d for d in rows}


def my_access_log(
    session: Session, cipher: FieldCipher, *, principal: Principal, now: datetime, request_id: str | None,
    limit: int = 100, cursor: str | None = None,
) -> tuple[list[tuple[AccessEvent, str | None, int | None]], str | None]:
    """A page of the events about me made by someone else (institutions, regulators), newest first, with
    names and each event's leaf index in the verifiable log (None until integrated), and the cursor of the
    next (older) page. Every event can be reached: however many reads an institution makes, an older
    lookup is only pages away, never cut off."""
    assert principal.subject is not None
    flt = EventFilter(subject=principal.subject, exclude_actor_type="consumer")
    after = decode_cursor(cursor) if cursor else None
    rows = list_events(session, flt, after=after, limit=limit + 1, newest_first=True)
    events, more = rows[:limit], len(rows) > limit
    names = names_by_id(session, {e.actor_id for e in events if e.actor_id})
    leaves = leaf_indexes_for(session, [e.seq for e in events if e.seq is not None])
    record_event(session, principal=principal, action="consumer:access_log:read", now=now, request_id=request_id)
    next_cursor = encode_cursor(events[-1].occurred_at, events[-1].id) if more else None
    return [(e, names.get(e.actor_id) if e.actor_id else None, leaves.get(e.seq)) for e in events], next_cursor


def my_event_proof(session: Session, *, principal: Principal, event_id: str) -> dict[str, Any]:
    """The inclusion proof of one event about me against the latest checkpoint. Another person's event is
    404, exactly like a missing one."""
    event = event_by_id(session, event_id)
    if event is None or event.subject is None or principal.subject is None or not is_about(
            session, bytes(event.subject), principal.subject):
        raise NotFound("no access event about you with that id")
    cp = translog.latest(session)
    index = leaf_indexes_for(session, [event.seq]).get(event.seq) if event.seq is not None else None
    if index is None or index >= cp.size:
        raise Conflict("the event is not in a signed checkpoint yet; ask again after the merge delay",
                       code="not_yet_integrated")
    proof = translog.inclusion(session, leaf_index=index, leaf_hash=None, tree_size=cp.size)
    leaf = base64.b64encode(encode_leaf(event)).decode()
    return {"event_id": event.id, "leaf_index": index, "leaf": leaf, "inclusion": proof, "checkpoint": cp.as_json()}


def my_consents(
    session: Session, cipher: FieldCipher, *, principal: Principal, now: datetime, request_id: str | None
) -> list[tuple[Consent, str]]:
    assert principal.national_id is not None
    person = identities.find_person(session, cipher, principal.national_id)
    consents = consent_store.consents_of_person(session, person.id) if person else []
    names = names_by_id(session, {c.institution_id for c in consents})
    record_event(session, principal=principal, action="consumer:consents:read", now=now, request_id=request_id)
    return [(c, names.get(c.institution_id, "")) for c in consents]


def my_debts_named(
    session: Session, cipher: FieldCipher, *, principal: Principal, obligation_ids: list[str]
) -> dict[str, dict[str, str]]:
    """Kind and creditor's reference of each of these lines that names me, so that a page tells two debts
    at one creditor apart. Part of the read that shows them (the access log, the disputes): no event of its own."""
    assert principal.national_id is not None
    person = identities.find_person(session, cipher, principal.national_id)
    found = obligation_store.kinds_and_refs_of_person(session, person.id, obligation_ids) if person else {}
    return {i: {"kind": kind, "reference": ref} for i, (kind, ref) in found.items()}


def my_consent_ids(session: Session, cipher: FieldCipher, *, principal: Principal, consent_ids: list[str]) -> set[str]:
    """Which of these consent ids are mine. An event can name one that is not: a lender's refused look with a
    made-up id or another person's; a page links only to the person's own."""
    assert principal.national_id is not None
    person = identities.find_person(session, cipher, principal.national_id)
    return consent_store.consent_ids_of_person(session, person.id, consent_ids) if person else set()


def actor_name(session: Session, actor_id: str | None) -> str | None:
    """The name of the institution that made an event, as the who-looked page shows it (the proof page says
    in words whose entry it proves)."""
    return names_by_id(session, {actor_id}).get(actor_id) if actor_id else None
