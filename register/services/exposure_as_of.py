"""The regulator's and the person's questions about exposure answers: what was a lender told (a stored
answer, proved), and what would the register have answered at a past moment (computed again from the
versions kept then).

Neither is on the lender's path: `services.exposure.query_exposure` is untouched by them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.domain.as_of import OUT_CHANGES, check_as_of
from register.domain.exposure import Line, compute_exposure
from register.domain.permission import Principal, Role
from register.errors import InvalidNationalIdentity, NotFound, RegisterError, Shredded
from register.services import credit_ban, disputes, identities, translog
from register.services.events import record_event
from register.services.translog import TransparencyLog
from register.storage import exposure_history as history
from register.storage.exposure import get_exposure_record
from register.storage.log import event_by_id, leaf_indexes_for
from register.storage.persons import get_person_by_blind_index, get_persons

OWN_ROLES = frozenset({"primary", "co_debtor"})


def lines_as_of(session: Session, cipher: FieldCipher | None, *, person_id: str, subject: bytes,
                at: datetime) -> list[Line]:
    """The person's lines as the register stood at `at`: for each obligation, its latest version recorded
    by then, if it named the person and was not retracted then."""
    ids = history.obligations_ever_naming(session, person_id=person_id, subject=subject, until=at)
    picked = []
    for r in history.versions_at(session, ids, at):
        if r.change in OUT_CHANGES:
            continue
        debtors = r.state.get("debtors", [])
        role = next((d["role"] for d in debtors if d["person_id"] == person_id), None)
        if role is not None:
            picked.append((r, role, sum(1 for d in debtors if d["role"] in OWN_ROLES)))
    oids = [r.obligation_id for r, _, _ in picked]
    disputed = history.disputed_at(session, oids, at)
    stated = history.stated_at(session, person_id=person_id, obligation_ids=oids, at=at) if cipher else set()
    texts = disputes.statements_for(session, cipher, person_id=person_id, obligation_ids=stated) if stated else {}
    lines = []
    for r, role, own in picked:
        s = r.state
        collects, handed_to = s.get("collects"), s.get("handed_to")
        lines.append(Line(
            obligation_id=r.obligation_id, institution_id=r.institution_id, creditor_name=r.creditor,
            external_ref=r.external_ref, kind=s["kind"], role=role, own_debtors=own, currency=s["currency"],
            balance=s["balance"], credit_limit=s.get("credit_limit"), monthly_payment=s.get("monthly_payment"),
            overdue_amount=s["overdue_amount"], days_past_due=s["days_past_due"], status=s["status"], as_of=r.as_of,
            collects=(collects["institution_id"], collects["external_ref"]) if collects else None,
            handed_to=(handed_to["institution_id"], handed_to["external_ref"]) if handed_to else None,
            disputed=r.obligation_id in disputed, statement=texts.get(r.obligation_id),
        ))  # fmt: skip
    return lines


def answer_as_of(
    session: Session,
    cipher: FieldCipher,
    *,
    principal: Principal,
    country: str,
    national_id: str,
    purpose: str,
    consent_id: str | None,
    state_as_of: datetime,
    now: datetime,
    request_id: str | None,
    allow_test_ids: bool,
    tlog: TransparencyLog,
) -> dict[str, Any]:
    """What the register would have answered about the person at `state_as_of`, from the versions and
    disputes kept: no consent (none is needed), and the person's credit ban as it stood then. Granted or
    refused, the question is an access event (`exposure:as_of`) the person sees."""
    event = {"principal": principal, "action": "exposure:as_of", "now": now, "purpose": purpose,
             "request_id": request_id}  # fmt: skip
    try:
        nid = identities.parse_identity(country, national_id, allow_test=allow_test_ids, loc=("body", "national_id"))
    except InvalidNationalIdentity:
        nid = None
    try:
        check_as_of(principal.role, purpose=purpose, consent_id=consent_id, state_as_of=state_as_of, now=now)
        if nid is None:
            identities.parse_identity(country, national_id, allow_test=allow_test_ids, loc=("body", "national_id"))
    except RegisterError as exc:
        asked = identities.blind_index(cipher, nid) if nid is not None else None
        ev = record_event(session, outcome="refused", reason=exc.code, subject=asked, **event)
        exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
        raise
    assert nid is not None
    subject = identities.blind_index(cipher, nid)
    if principal.role is Role.consumer and subject != principal.subject:
        # A person asks about themselves only; another person's answer is as absent as a missing one.
        exc = NotFound("a person may ask only about themselves")
        ev = record_event(session, outcome="refused", reason=exc.code, subject=principal.subject, **event)
        exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
        raise exc
    person = get_person_by_blind_index(session, subject)
    lines = lines_as_of(session, cipher, person_id=person.id, subject=subject, at=state_as_of) if person else []
    ban = credit_ban.active_ban(session, person.id, state_as_of) if person else None
    answer = {
        "subject": {"country": nid.country, "national_id_masked": nid.masked()},
        "as_of": now,
        "state_as_of": state_as_of,
        "purpose": purpose,
        "credit_ban": credit_ban.in_answer(ban),
        **compute_exposure(lines, now=state_as_of),
    }
    answer = json.loads(canonical_json(answer))
    ev = record_event(session, outcome="granted", subject=subject, details={"state_as_of": answer["state_as_of"]},
                      **event)
    return {**answer, "receipt": tlog.receipt(ev)}


def stored_answer(session: Session, *, principal: Principal, exposure_id: str, now: datetime,
                  request_id: str | None) -> dict[str, Any]:
    """A stored answer as the lender was told it, for the lender that asked, the person it was about and
    the regulator (404 for anyone else, as for a missing one), with its proof: the stored hash matches
    the stored answer, and the answer's access event is a leaf of the signed log. The read is an access
    event (`exposure:read`) about the person; an answer whose response was shredded is 410."""
    record = get_exposure_record(session, exposure_id)
    person = get_persons(session, {record.person_id}).get(record.person_id) if record is not None else None
    allowed = record is not None and (
        principal.role is Role.regulator
        or (principal.institution_id is not None and principal.institution_id == record.institution_id)
        or (principal.role is Role.consumer and person is not None and person.blind_index == principal.subject))
    if record is None or not allowed:
        raise NotFound("no exposure answer with that id given to you or about you")
    subject = person.blind_index if person is not None else None
    details = {"exposure_id": exposure_id}
    if record.response is None:
        exc = Shredded("the answer was kept for its retention period and has been shredded; its hash remains",
                       extra={"response_sha256": record.response_sha256})
        record_event(session, principal=principal, action="exposure:read", now=now, outcome="refused",
                     reason=exc.code, subject=subject, request_id=request_id, details=details)
        exc.commit = True
        raise exc
    record_event(session, principal=principal, action="exposure:read", now=now, outcome="granted", subject=subject,
                 request_id=request_id, details=details)
    matches = hashlib.sha256(canonical_json(record.response)).hexdigest() == record.response_sha256
    event = event_by_id(session, record.event_id)
    index = leaf_indexes_for(session, [event.seq]).get(event.seq) if event is not None and event.seq else None
    checkpoint = inclusion = None
    if index is not None:
        try:
            cp = translog.latest(session)
        except NotFound:
            cp = None
        if cp is not None and index < cp.size:
            checkpoint = cp.as_json()
            inclusion = translog.inclusion(session, leaf_index=index, leaf_hash=None, tree_size=cp.size)
    return {"answer": record.response, "response_sha256": record.response_sha256,
            "verified": matches and inclusion is not None, "hash_matches": matches, "event_id": record.event_id,
            "leaf_index": index, "checkpoint": checkpoint, "inclusion": inclusion}
