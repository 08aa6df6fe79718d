"""The lender's question: with this person's consent, what do they owe?

Order of work: the institution's rate, then validate the identity, read the consent (an attested one of
this institution takes from the attested rate too), check it (before any debt is looked up), then load
the debts and the credit ban, compute, and at last, in one step (`storage.exposure.grant_answer`), count
the answer against the daily quota (and the attested quota), write the access event and keep the answer,
all in one transaction. A refusal writes its access event too and is then raised
with `commit=True`, so a refused query leaves the same trace as a granted one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.domain.consent import ConsentFacts, ConsentSource, Purpose, check_consent
from register.domain.exposure import Line, compute_exposure
from register.domain.permission import Principal
from register.errors import ConsentRequired, InvalidNationalIdentity, TooManyRequests
from register.services import credit_ban, disputes, identities, sequential
from register.services.events import EventRecord, event_values, record_event
from register.services.limits import ExposureLimits
from register.services.translog import TransparencyLog
from register.storage.consents import person_and_consent
from register.storage.exposure import debt_rows_and_ban, debt_rows_for_person, grant_answer


def lines_for_person(session: Session, person_id: str, cipher: FieldCipher | None = None) -> list[Line]:
    """The person's lines; with `cipher`, an upheld dispute's statement is read for each line that has one."""
    return _lines(session, debt_rows_for_person(session, person_id), person_id, cipher)


def _lines(session: Session, rows: list, person_id: str, cipher: FieldCipher | None) -> list[Line]:
    stated = [r.id for r in rows if r.stated] if cipher is not None else []
    statements = disputes.statements_for(session, cipher, person_id=person_id, obligation_ids=stated) if stated else {}
    return [
        Line(
            obligation_id=r.id, institution_id=r.institution_id, creditor_name=r.creditor, external_ref=r.external_ref,
            kind=r.kind, role=r.role, own_debtors=r.own_debtors, currency=r.currency, balance=r.balance,
            credit_limit=r.credit_limit, monthly_payment=r.monthly_payment, overdue_amount=r.overdue_amount,
            days_past_due=r.days_past_due, status=r.status, as_of=r.as_of,
            collects=(r.collects_institution_id, r.collects_external_ref) if r.collects_institution_id else None,
            handed_to=(r.handed_to_institution_id, r.handed_to_external_ref) if r.handed_to_institution_id else None,
            disputed=bool(r.disputed), statement=statements.get(r.id),
        )  # fmt: skip
        for r in rows
    ]


def query_exposure(
    session: Session,
    cipher: FieldCipher,
    *,
    principal: Principal,
    country: str,
    national_id: str,
    purpose: Purpose,
    consent_id: str,
    now: datetime,
    request_id: str | None,
    allow_test_ids: bool,
    tlog: TransparencyLog,
    limits: ExposureLimits | None = None,
) -> dict[str, Any]:
    assert principal.institution_id is not None
    event = {"principal": principal, "action": "exposure:query", "now": now, "purpose": purpose.value,
             "consent_id": consent_id, "request_id": request_id}  # fmt: skip
    if limits is not None:
        try:
            limits.check_rate(principal.institution_id)
        except TooManyRequests as exc:
            subject = _subject_if_valid(cipher, country, national_id, allow_test_ids)
            ev = record_event(session, outcome="refused", reason=exc.code, subject=subject, **event)
            exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
            raise
    try:
        nid = identities.parse_identity(country, national_id, allow_test=allow_test_ids,
                                        loc=("body", "national_id"))
    except InvalidNationalIdentity as exc:
        ev = record_event(session, outcome="refused", reason=exc.code, **event)
        exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
        raise
    subject = identities.blind_index(cipher, nid)
    # Bulk lookups in identity order: a flag on this query's events, never the number (SPEC.md "Signals").
    seen = sequential.flag(session, cipher, nid, institution_id=principal.institution_id, now=now)
    event["details"] = seen or None
    person_id, consent = person_and_consent(session, blind_index=subject, consent_id=consent_id)
    facts = (
        ConsentFacts(institution_id=consent.institution_id, person_id=consent.consent_person,
                     purpose=consent.purpose, expires_at=consent.expires_at, revoked_at=consent.revoked_at)
        if consent is not None else None
    )  # fmt: skip
    # Its own institution's attested consent: the lookup is one the institution chose alone, limited apart.
    attested = facts is not None and consent.source == ConsentSource.attested and (
        facts.institution_id == principal.institution_id)
    if limits is not None and attested:
        try:
            limits.check_attested_rate(principal.institution_id)
        except TooManyRequests as exc:
            ev = record_event(session, outcome="refused", reason=exc.code, subject=subject, **event)
            exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
            raise
    try:
        check_consent(facts, institution_id=principal.institution_id, person_id=person_id, purpose=purpose.value,
                      now=now)
    except ConsentRequired as exc:
        ev = record_event(session, outcome="refused", reason=exc.code, subject=subject, **event)
        exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
        raise
    assert person_id is not None and consent is not None

    rows, ban = debt_rows_and_ban(session, person_id, now)  # one round trip on PostgreSQL
    computed = compute_exposure(_lines(session, rows, person_id, cipher), now=now)
    exposure_id = str(uuid.uuid4())
    answer: dict[str, Any] = {
        "exposure_id": exposure_id,
        "subject": {"country": nid.country, "national_id_masked": nid.masked()},
        "as_of": now,
        "purpose": purpose.value,
        "consent_id": consent.id,
        "consent_source": consent.source,
        "credit_ban": credit_ban.in_answer(ban),
        **computed,
    }
    encoded = canonical_json(answer)  # once: the stored answer, its hash and the response all come from it
    answer = json.loads(encoded)
    details: dict[str, Any] = {"exposure_id": exposure_id, **seen}
    if ban is not None:  # advisory: the answer is given, and the log says the ban was on
        details["credit_ban_active"] = True
    granted = event_values(outcome="granted", subject=subject, session=session, **{**event, "details": details})
    # The writes last, in one step: counted against the daily quota (and the attested quota), the access
    # event and the stored answer. The quota's row stays locked until commit, so concurrent answers of one
    # institution wait on it: it is taken when nothing is left to do but commit (on PostgreSQL the step
    # ends with the commit itself).
    quota = limits.quota_take(institution_id=principal.institution_id, now=now, attested=attested) if limits else None
    seq = grant_answer(session, quota=quota, event=granted, encoded=encoded, record={
        "id": exposure_id, "event_id": granted["id"], "institution_id": principal.institution_id,
        "person_id": person_id, "consent_id": consent.id, "created_at": now, "response": answer,
        "response_sha256": hashlib.sha256(encoded).hexdigest(),
    })  # fmt: skip
    if seq is None:
        assert limits is not None and quota is not None
        exc = limits.used_up(session, quota, now)
        ev = record_event(session, outcome="refused", reason=exc.code, subject=subject, **event)
        exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
        raise exc
    # The receipt covers the access event, not the answer: it is added after the answer's hash is taken.
    return {**answer, "receipt": tlog.receipt(EventRecord(seq=seq, **granted))}


def _subject_if_valid(cipher: FieldCipher, country: str, national_id: str, allow_test_ids: bool) -> bytes | None:
    """The blind index of the person asked about, for a query refused before its identity was checked."""
    try:
        nid = identities.parse_identity(country, national_id, allow_test=allow_test_ids, loc=("body", "national_id"))
    except InvalidNationalIdentity:
        return None
    return identities.blind_index(cipher, nid)
