"""SQL for consents."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from register.storage.dialect import statements
from register.storage.models import Consent


def add_consent(session: Session, consent: Consent) -> Consent:
    session.add(consent)
    session.flush()
    return consent


def add_referenced_consent(session: Session, consent: Consent) -> bool:
    """Add an attested consent whose `evidence_reference` is unique per institution; False (nothing
    added) if a concurrent request took the reference first, which the caller then reads."""
    try:
        with session.begin_nested():
            session.add(consent)
            session.flush()
    except IntegrityError:
        return False
    return True


def consent_by_reference(session: Session, *, institution_id: str, reference: str) -> Consent | None:
    stmt = select(Consent).where(Consent.institution_id == institution_id, Consent.evidence_reference == reference)
    return session.execute(stmt).scalar_one_or_none()


def get_consent(session: Session, consent_id: str, *, for_update: bool = False) -> Consent | None:
    stmt = select(Consent).where(Consent.id == consent_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def consents_of_person(session: Session, person_id: str, *, limit: int = 1000) -> list[Consent]:
    stmt = select(Consent).where(Consent.person_id == person_id).order_by(Consent.granted_at.desc(), Consent.id)
    return list(session.execute(stmt.limit(limit)).scalars())


def consents_to_institution(session: Session, institution_id: str, *, limit: int = 1000) -> list[Consent]:
    stmt = (
        select(Consent)
        .where(Consent.institution_id == institution_id)
        .order_by(Consent.granted_at.desc(), Consent.id)
    )
    return list(session.execute(stmt.limit(limit)).scalars())


def has_any_consent(session: Session, *, person_id: str, institution_id: str) -> bool:
    stmt = select(Consent.id).where(Consent.person_id == person_id, Consent.institution_id == institution_id)
    return session.execute(stmt.limit(1)).first() is not None


def person_and_consent(session: Session, *, blind_index: bytes, consent_id: str) -> tuple[str | None, Any]:
    """The person with this blind index (id or None) and the consent with this id (row or None), in one
    round trip: the exposure query's whole read before any debt is looked at."""
    return statements(session).person_and_consent(session, blind_index=blind_index, consent_id=consent_id)


def consent_ids_of_person(session: Session, person_id: str, consent_ids: list[str]) -> set[str]:
    """Those of these consent ids that are the person's own consents."""
    if not consent_ids:
        return set()
    stmt = select(Consent.id).where(Consent.person_id == person_id, Consent.id.in_(sorted(set(consent_ids))))
    return set(session.execute(stmt).scalars())
