"""SQL for exposure: the lines of debt naming one person, and the records of answers given."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from register.storage.models import ExposureRecord, Institution, Obligation, ObligationDebtor


def debt_rows_for_person(session: Session, person_id: str) -> list[tuple[Obligation, str, str, int]]:
    """(obligation, this person's role, creditor name, number of primary/co-debtors) for every obligation
    naming the person that has not been retracted. One query, using the debtor index."""
    mine = aliased(ObligationDebtor)
    own_count = (
        select(func.count())
        .select_from(ObligationDebtor)
        .where(ObligationDebtor.obligation_id == Obligation.id, ObligationDebtor.role.in_(("primary", "co_debtor")))
        .correlate(Obligation)
        .scalar_subquery()
    )
    stmt = (
        select(Obligation, mine.role, Institution.name, own_count)
        .join(mine, mine.obligation_id == Obligation.id)
        .join(Institution, Institution.id == Obligation.institution_id)
        .where(mine.person_id == person_id, Obligation.retracted_at.is_(None))
    )
    return [tuple(row) for row in session.execute(stmt).all()]  # type: ignore[misc]


def add_exposure_record(session: Session, record: ExposureRecord) -> None:
    session.add(record)
    session.flush()


def get_exposure_record(session: Session, exposure_id: str) -> ExposureRecord | None:
    return session.get(ExposureRecord, exposure_id)
