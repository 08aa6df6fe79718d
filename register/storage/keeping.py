"""SQL for the person's "what we keep" view: every obligation naming a person, with what the retention
rules need of it (`storage.retention`'s columns) and how the person knows it (reference, creditor)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from register.storage.models import Institution, Obligation, ObligationDebtor
from register.storage.retention import ended_columns


def obligations_kept(session: Session, person_id: str) -> list[Any]:
    """(id, kind, status, updated_at, retracted_at, had_arrears, country, external_ref, institution_id,
    institution_name) of every obligation naming this person now, retracted and closed ones included."""
    stmt = (
        select(*ended_columns(session), Obligation.external_ref, Obligation.institution_id,
               Institution.name.label("institution_name"))
        .join(Institution, Institution.id == Obligation.institution_id)
        .where(Obligation.id.in_(select(ObligationDebtor.obligation_id).where(ObligationDebtor.person_id == person_id)))
        .order_by(Obligation.updated_at.desc(), Obligation.id)
    )  # fmt: skip
    return list(session.execute(stmt).all())
