"""Consent use cases: a person grants and revokes; a lender records consent it collected itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.consent import ConsentSource, Purpose, check_new_consent
from register.domain.identity import NationalId
from register.domain.permission import INSTITUTION_ROLES, Principal, Role
from register.errors import Conflict, InvalidInput, NotFound
from register.services import identities
from register.services import outbox as told
from register.services.events import record_event, record_per_person
from register.storage import consents as store
from register.storage import persons as person_store
from register.storage.institutions import get_institution
from register.storage.models import Consent, Person
from register.storage.persons import get_persons


def _consumer_person(session: Session, cipher: FieldCipher, principal: Principal, *, create: bool) -> Person | None:
    assert principal.national_id is not None
    if create:
        return identities.resolve_person(session, cipher, principal.national_id)
    return identities.find_person(session, cipher, principal.national_id)


def grant_consent(
    session: Session, cipher: FieldCipher, *, principal: Principal, institution_id: str, purpose: Purpose,
    expires_at: datetime, now: datetime, request_id: str | None,
) -> Consent:
    check_new_consent(expires_at=expires_at, now=now)
    inst = get_institution(session, institution_id)
    if inst is None or Role(inst.role) not in INSTITUTION_ROLES or inst.role == Role.regulator:
        raise InvalidInput("no lender or collector with that id", code="unknown_institution",
                           errors=[{"loc": ["body", "institution_id"], "msg": "unknown institution"}])
    person = _consumer_person(session, cipher, principal, create=True)
    assert person is not None
    consent = store.add_consent(session, Consent(
        id=str(uuid.uuid4()), person_id=person.id, institution_id=inst.id, purpose=purpose.value,
        source=ConsentSource.consumer.value, evidence=None, granted_at=now, expires_at=expires_at,
    ))  # fmt: skip
    record_event(session, principal=principal, action="consent:grant", now=now, purpose=purpose.value,
                 consent_id=consent.id, request_id=request_id, details={"institution_id": inst.id})
    told.consent(session, "consent.given", consent, now=now)
    return consent


def attest_consent(
    session: Session, cipher: FieldCipher, *, principal: Principal, nid: NationalId, purpose: Purpose,
    expires_at: datetime, evidence: dict[str, Any], now: datetime, request_id: str | None,
) -> tuple[Consent, bool]:
    """A lender records a consent it collected itself (a signed application). Marked as attested
    everywhere; the person sees it and can revoke it like any other. Returns the consent and whether it
    is new.

    The evidence's reference names one consent of the institution. The same reference again for the same
    person and purpose is a repeat (a retry): the consent recorded first is returned as it stands, neither
    extended nor revived if the person revoked it. For another person or purpose it is refused
    (`409 reference_reused`), and the refusal is recorded about the person it was tried on."""
    assert principal.institution_id is not None
    check_new_consent(expires_at=expires_at, now=now)
    subject = identities.blind_index(cipher, nid)
    reference = evidence["reference"]
    existing = store.consent_by_reference(session, institution_id=principal.institution_id, reference=reference)
    if existing is not None:
        return _repeat(session, existing, principal=principal, subject=subject, purpose=purpose, now=now,
                       request_id=request_id), False
    person = identities.resolve_person(session, cipher, nid)
    consent = Consent(
        id=str(uuid.uuid4()), person_id=person.id, institution_id=principal.institution_id,
        purpose=purpose.value, source=ConsentSource.attested.value, evidence=evidence,
        evidence_reference=reference, granted_at=now, expires_at=expires_at,
    )  # fmt: skip
    if not store.add_referenced_consent(session, consent):  # a concurrent request took the reference first
        winner = store.consent_by_reference(session, institution_id=principal.institution_id, reference=reference)
        assert winner is not None
        return _repeat(session, winner, principal=principal, subject=subject, purpose=purpose, now=now,
                       request_id=request_id), False
    record_event(session, principal=principal, action="consent:attest", now=now, purpose=purpose.value,
                 consent_id=consent.id, subject=person.blind_index, request_id=request_id)
    told.consent(session, "consent.given", consent, now=now)
    return consent, True


def _repeat(
    session: Session, existing: Consent, *, principal: Principal, subject: bytes, purpose: Purpose, now: datetime,
    request_id: str | None,
) -> Consent:
    """The consent a repeated reference names, if the repeat is for the same person and purpose."""
    person = person_store.get_person_by_blind_index(session, subject)
    if person is not None and person.id == existing.person_id and existing.purpose == purpose.value:
        return existing
    exc = Conflict(
        "this evidence reference names another consent of this institution"
        + ("" if person is not None and person.id == existing.person_id else ", for another person")
        + "; each signed application has its own reference", code="reference_reused",
    )
    record_event(session, principal=principal, action="consent:attest", now=now, outcome="refused",
                 reason=exc.code, purpose=purpose.value, subject=subject, request_id=request_id)
    exc.commit = True  # the attempt stays in the access log of the person it was tried on
    raise exc


def revoke_consent(
    session: Session, cipher: FieldCipher, *, principal: Principal, consent_id: str, now: datetime,
    request_id: str | None,
) -> Consent:
    """Revoke at once. Only the person it names can; anyone else gets 404, as for a missing consent."""
    person = _consumer_person(session, cipher, principal, create=False)
    consent = store.get_consent(session, consent_id, for_update=True)
    if consent is None or person is None or consent.person_id != person.id:
        raise NotFound("no consent with that id")
    if consent.revoked_at is None:
        consent.revoked_at = now
        session.flush()
        record_event(session, principal=principal, action="consent:revoke", now=now, purpose=consent.purpose,
                     consent_id=consent.id, request_id=request_id)
        told.consent(session, "consent.revoked", consent, now=now)
    return consent


def my_consents(session: Session, cipher: FieldCipher, *, principal: Principal) -> list[Consent]:
    person = _consumer_person(session, cipher, principal, create=False)
    return [] if person is None else store.consents_of_person(session, person.id)


def consents_granted_to(
    session: Session, *, principal: Principal, now: datetime, request_id: str | None = None
) -> list[tuple[Consent, Person]]:
    """The consents persons gave (or the caller recorded for) this institution, each with its person.
    Each person the answer names sees the read once (`consents:list`, with their consents' ids)."""
    assert principal.institution_id is not None
    consents = store.consents_to_institution(session, principal.institution_id)
    persons = get_persons(session, {c.person_id for c in consents})
    record_per_person(session, principal=principal, action="consents:list", now=now, request_id=request_id,
                      returned=[(persons[c.person_id].blind_index, c.id) for c in consents], item="consent_id")
    return [(c, persons[c.person_id]) for c in consents]
