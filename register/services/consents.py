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
from register.errors import InvalidInput, NotFound
from register.services import identities
from register.services.events import record_event, record_per_person
from register.storage import consents as store
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
    return consent


def attest_consent(
    session: Session, cipher: FieldCipher, *, principal: Principal, nid: NationalId, purpose: Purpose,
    expires_at: datetime, evidence: dict[str, Any], now: datetime, request_id: str | None,
) -> Consent:
    """A lender records a consent it collected itself (a signed application). Marked as attested
    everywhere; the person sees it and can revoke it like any other."""
    assert principal.institution_id is not None
    check_new_consent(expires_at=expires_at, now=now)
    person = identities.resolve_person(session, cipher, nid)
    consent = store.add_consent(session, Consent(
        id=str(uuid.uuid4()), person_id=person.id, institution_id=principal.institution_id,
        purpose=purpose.value, source=ConsentSource.attested.value, evidence=evidence, granted_at=now,
        expires_at=expires_at,
    ))  # fmt: skip
    record_event(session, principal=principal, action="consent:attest", now=now, purpose=purpose.value,
                 consent_id=consent.id, subject=person.blind_index, request_id=request_id)
    return consent


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
