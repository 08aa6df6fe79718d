"""SQL for exposure: the lines of debt naming one person, and the records of answers given."""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session, aliased

from register.storage.models import ExposureRecord, Institution, Obligation, ObligationDebtor


_mine = aliased(ObligationDebtor)
_own_count = (
    select(func.count())
    .select_from(ObligationDebtor)
    .where(ObligationDebtor.obligation_id == Obligation.id, ObligationDebtor.role.in_(("primary", "co_debtor")))
    .correlate(Obligation)
    .scalar_subquery()
)
_LINES = (
    select(Obligation.id, Obligation.institution_id, Obligation.external_ref, Obligation.kind, Obligation.currency,
           Obligation.balance, Obligation.credit_limit, Obligation.monthly_payment, Obligation.overdue_amount,
           Obligation.days_past_due, Obligation.status, Obligation.as_of, Obligation.collects_institution_id,
           Obligation.collects_external_ref, _mine.role, Institution.name.label("creditor"),
           _own_count.label("own_debtors"))
    .join(_mine, _mine.obligation_id == Obligation.id)
    .join(Institution, Institution.id == Obligation.institution_id)
    .where(_mine.person_id == bindparam("person_id"), Obligation.retracted_at.is_(None))
)  # fmt: skip


def debt_rows_for_person(session: Session, person_id: str) -> list:
    """Every obligation naming the person that has not been retracted, with this person's role, the
    creditor's name and how many primary/co-debtors it has. One query (Core rows: this is the lender's
    hot path), using the debtor index."""
    return session.execute(_LINES, {"person_id": person_id}).all()


_INSERT_EXPOSURE = insert(ExposureRecord)


def add_exposure_record(session: Session, values: dict) -> None:
    session.execute(_INSERT_EXPOSURE, values)


def get_exposure_record(session: Session, exposure_id: str) -> ExposureRecord | None:
    return session.get(ExposureRecord, exposure_id)
