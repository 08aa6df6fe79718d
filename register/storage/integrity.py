"""Rows that name what is gone: the references the database no longer checks on the rows a report writes
(migration 8f3c2a7d1e45; SPEC §2). The register keeps them true by how it writes and deletes; this says
whether it did. The tests run it after every workflow that deletes, on both databases."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, func, not_, select
from sqlalchemy.orm import Session

from register.storage.models import Institution, Obligation, ObligationDebtor, ObligationVersion, Person

_REFERENCES: dict[str, tuple[type, ColumnElement[bool]]] = {
    "obligations.institution_id": (Obligation, exists().where(Institution.id == Obligation.institution_id)),
    "obligation_debtors.obligation_id": (ObligationDebtor,
                                         exists().where(Obligation.id == ObligationDebtor.obligation_id)),
    "obligation_debtors.person_id": (ObligationDebtor, exists().where(Person.id == ObligationDebtor.person_id)),
    "obligation_versions.obligation_id": (ObligationVersion,
                                          exists().where(Obligation.id == ObligationVersion.obligation_id)),
}


def dangling(session: Session) -> dict[str, int]:
    """For each unchecked reference, how many rows name a row that does not exist (0 everywhere when sound)."""
    return {name: session.execute(select(func.count()).select_from(table).where(not_(present))).scalar_one()
            for name, (table, present) in _REFERENCES.items()}
