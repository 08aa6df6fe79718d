"""SQL for institutions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from register.storage.models import Institution


def get_institution_by_token_hash(session: Session, token_hash: str) -> Institution | None:
    return session.execute(select(Institution).where(Institution.token_hash == token_hash)).scalar_one_or_none()


def get_institution(session: Session, institution_id: str) -> Institution | None:
    return session.get(Institution, institution_id)


def list_institutions(session: Session) -> list[Institution]:
    return list(session.execute(select(Institution).order_by(Institution.created_at, Institution.id)).scalars())


def names_by_id(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Institution.id, Institution.name).where(Institution.id.in_(ids)))
    return {i: n for i, n in rows}


def contacts_by_id(session: Session, ids: set[str]) -> dict[str, dict[str, str | None]]:
    """How a person reaches each of these creditors: {id: {phone, email, url}}."""
    if not ids:
        return {}
    rows = session.execute(select(Institution.id, Institution.contact_phone, Institution.contact_email,
                                  Institution.contact_url).where(Institution.id.in_(ids)))
    return {i: {"phone": p, "email": e, "url": u} for i, p, e, u in rows}
