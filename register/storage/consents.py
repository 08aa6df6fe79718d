"""SQL for consents."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from register.storage.models import Consent


def add_consent(session: Session, consent: Consent) -> Consent:
    session.add(consent)
    session.flush()
    return consent


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
