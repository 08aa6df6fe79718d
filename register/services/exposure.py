"""The lender's question: with this person's consent, what do they owe?

Order of work: the institution's rate, then validate the identity, read the consent (an attested one of
this institution takes from the attested rate too), check it (before any debt is looked up), then load
the debts and the credit ban, compute, and at last, in one step (`storage.exposure.grant_answer`), count
the answer against the daily quota (and the attested quota), write the access event and keep the answer,
all in one transaction. A refusal writes its access event too and is then raised
with `commit=True`, so a refused query leaves the same trace as a granted one.

On PostgreSQL a granted answer takes a shorter way (`answer_on_lane`): no ORM session, one statement for
every read and one for every write, on a pooled connection of its own (`storage.exposure.lender_connection`).
It gives only the plain granted answer; anything else (a refusal, an attested consent of the asking
institution, a line with a dispute statement to decrypt, a quota used up) is left, with nothing written,
to `query_exposure`, which reads again and answers as before.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
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
from register.storage.dialect import AsyncLenderConnection, LenderConnection, LenderPool, LenderRead
from register.storage.exposure import (
    debt_rows_and_ban, debt_rows_for_person, grant_answer, lender_connection, lender_pool,
)  # fmt: skip
from register.storage.pseudonyms import epoch_of

__all__ = ["LenderPool", "Taken", "answer_on_lane", "answer_on_lane_async", "lane_steps", "lender_connection",
           "lender_pool", "lines_for_person", "query_exposure", "take_rate"]


@dataclass(slots=True)
class Taken:
    """What a question has already taken from its institution's rates (`answer_on_lane`), so that
    `query_exposure`, answering what the lane left, takes nothing twice: the refusal of the rate (None: a
    token taken), and whether the attested rate was taken too, with its refusal."""

    rate_refusal: TooManyRequests | None = None
    attested: bool = False
    attested_refusal: TooManyRequests | None = None


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
    taken: Taken | None = None,
) -> dict[str, Any]:
    """The answer, or its refusal. With `taken`, what the caller has already taken from the institution's
    rates (the rate itself always; see `Taken`)."""
    assert principal.institution_id is not None
    event = {"principal": principal, "action": "exposure:query", "now": now, "purpose": purpose.value,
             "consent_id": consent_id, "request_id": request_id}  # fmt: skip
    if limits is not None:
        exc = taken.rate_refusal if taken is not None else take_rate(limits, principal.institution_id)
        if exc is not None:
            subject = _subject_if_valid(cipher, country, national_id, allow_test_ids)
            ev = record_event(session, outcome="refused", reason=exc.code, subject=subject, **event)
            exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
            raise exc
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
        exc = (taken.attested_refusal if taken is not None and taken.attested
               else take_attested_rate(limits, principal.institution_id))
        if exc is not None:
            ev = record_event(session, outcome="refused", reason=exc.code, subject=subject, **event)
            exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
            raise exc
    try:
        check_consent(facts, institution_id=principal.institution_id, person_id=person_id, purpose=purpose.value,
                      now=now)
    except ConsentRequired as exc:
        ev = record_event(session, outcome="refused", reason=exc.code, subject=subject, **event)
        exc.commit, exc.extra = True, {"receipt": tlog.receipt(ev)}
        raise
    assert person_id is not None and consent is not None

    rows, ban = debt_rows_and_ban(session, person_id, now)  # one round trip on PostgreSQL
    exposure_id, answer, encoded = _answer(_lines(session, rows, person_id, cipher), nid=nid, now=now,
                                           purpose=purpose, consent=consent, ban=ban)
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


def take_rate(limits: ExposureLimits, institution_id: str) -> TooManyRequests | None:
    """Take one answer from the institution's rate: None, or the refusal if the rate is used up."""
    try:
        limits.check_rate(institution_id)
    except TooManyRequests as exc:
        return exc
    return None


def take_attested_rate(limits: ExposureLimits, institution_id: str) -> TooManyRequests | None:
    """Take one answer with an attested consent from the institution's attested rate (as `take_rate`)."""
    try:
        limits.check_attested_rate(institution_id)
    except TooManyRequests as exc:
        return exc
    return None


def _answer(lines: list[Line], *, nid: Any, now: datetime, purpose: Purpose, consent: Any,
            ban: Any) -> tuple[str, dict[str, Any], bytes]:
    """A granted answer's id, its content and its canonical JSON (encoded once: the stored answer, its hash
    and the response all come from it)."""
    exposure_id = str(uuid.uuid4())
    answer: dict[str, Any] = {
        "exposure_id": exposure_id,
        "subject": {"country": nid.country, "national_id_masked": nid.masked()},
        "as_of": now,
        "purpose": purpose.value,
        "consent_id": consent.id,
        "consent_source": consent.source,
        "credit_ban": credit_ban.in_answer(ban),
        **compute_exposure(lines, now=now),
    }
    return exposure_id, answer, canonical_json(answer)


def answer_on_lane(conn: LenderConnection, cipher: FieldCipher, **question: Any) -> bytes | None:
    """`lane_steps` on a connection of the thread's (`storage.exposure.lender_connection`)."""
    steps = lane_steps(cipher, **question)
    try:
        step, kwargs = next(steps)
        while True:
            step, kwargs = steps.send(getattr(conn, step)(**kwargs))
    except StopIteration as done:
        return done.value


async def answer_on_lane_async(conn: AsyncLenderConnection, cipher: FieldCipher, **question: Any) -> bytes | None:
    """`lane_steps` on a connection of the event loop's (`storage.exposure.lender_pool`): no thread hop."""
    steps = lane_steps(cipher, **question)
    try:
        step, kwargs = next(steps)
        while True:
            step, kwargs = steps.send(await getattr(conn, step)(**kwargs))
    except StopIteration as done:
        return done.value


def lane_steps(
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
    taken: Taken,
) -> Generator[tuple[str, dict[str, Any]], Any, bytes | None]:
    """A plain granted answer (the rate already taken: `take_rate`, in `taken`), as the response's JSON
    bytes: the same content as `query_exposure`'s, its access event durable and its answer and hash stored
    when this returns. None, with nothing written, for anything else (`taken` says what was taken from the
    attested rate): `query_exposure` answers that. Written once for both drivers (`answer_on_lane`,
    `answer_on_lane_async`): it yields each statement as the name of a `LenderConnection` method and its
    arguments, and is sent the method's result; it does no I/O of its own."""
    institution_id = principal.institution_id
    assert institution_id is not None
    try:
        nid = identities.parse_identity(country, national_id, allow_test=allow_test_ids,
                                        loc=("body", "national_id"))
    except InvalidNationalIdentity:
        return None
    blind_index = identities.blind_index(cipher, nid)
    epoch, epoch_end = epoch_of(now)
    read: LenderRead = yield "read", dict(
        blind_index=blind_index, consent_id=consent_id, institution_id=institution_id, purpose=purpose.value,
        epoch=epoch, now=now, neighbours=sequential.neighbour_indexes(cipher, nid), since=now - sequential.WINDOW)
    consent = read.consent
    if not read.granted or consent is None:
        return None  # a refusal, given by query_exposure
    # granted only for a consent to this institution: an attested one is limited apart (see query_exposure)
    attested = consent.source == ConsentSource.attested
    if limits is not None and attested:
        taken.attested, taken.attested_refusal = True, take_attested_rate(limits, institution_id)
        if taken.attested_refusal is not None:
            return None
    try:
        check_consent(ConsentFacts(institution_id=consent.institution_id, person_id=consent.consent_person,
                                   purpose=consent.purpose, expires_at=consent.expires_at,
                                   revoked_at=consent.revoked_at),
                      institution_id=institution_id, person_id=read.person_id, purpose=purpose.value, now=now)
    except ConsentRequired:
        return None
    if any(r.stated for r in read.lines):
        return None  # an upheld dispute's statement is decrypted in a session (services.disputes)
    assert read.person_id is not None
    exposure_id, _, encoded = _answer(_lines(None, read.lines, read.person_id, None),  # type: ignore[arg-type]
                                      nid=nid, now=now, purpose=purpose, consent=consent, ban=read.ban)
    pseudonym = read.pseudonym or (yield "make_pseudonym", dict(
        pseudonym=secrets.token_bytes(32), blind_index=blind_index, epoch=epoch, epoch_end=epoch_end))
    details: dict[str, Any] = {"exposure_id": exposure_id}
    if read.sequential:  # as query_exposure's `seen`: a flag, never the number
        details["sequential"] = True
    if read.ban is not None:
        details["credit_ban_active"] = True
    granted = event_values(principal, action="exposure:query", now=now, outcome="granted", subject=None,
                           purpose=purpose.value, consent_id=consent_id, request_id=request_id, details=details)
    granted["subject"] = pseudonym  # the month's pseudonym, as event_values makes it in a session
    quota = limits.quota_take(institution_id=institution_id, now=now, attested=attested) if limits else None
    seq = yield "grant_answer", dict(quota=quota, event=granted, encoded=encoded, record={
        "id": exposure_id, "event_id": granted["id"], "institution_id": institution_id,
        "person_id": read.person_id, "consent_id": consent.id, "created_at": now, "response": None,
        "response_sha256": hashlib.sha256(encoded).hexdigest(),
    })  # fmt: skip
    if seq is None:
        return None  # the quota is used up: refused, with its event, by query_exposure
    # The receipt covers the access event, not the answer: added after the answer's hash is taken, as the
    # last member (as query_exposure's answer gets it), without encoding the answer again.
    receipt = orjson.dumps(tlog.receipt(EventRecord(seq=seq, **granted)))
    return b"".join((encoded[:-1], b',"receipt":', receipt, b"}"))


def _subject_if_valid(cipher: FieldCipher, country: str, national_id: str, allow_test_ids: bool) -> bytes | None:
    """The blind index of the person asked about, for a query refused before its identity was checked."""
    try:
        nid = identities.parse_identity(country, national_id, allow_test=allow_test_ids, loc=("body", "national_id"))
    except InvalidNationalIdentity:
        return None
    return identities.blind_index(cipher, nid)
