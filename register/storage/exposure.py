"""SQL for exposure: the lines of debt naming one person, and the records of answers given."""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session, aliased

from register.storage import fastpath
from register.storage.models import Dispute, ExposureRecord, Institution, Obligation, ObligationDebtor


_mine = aliased(ObligationDebtor)
_own_count = (
    select(func.count())
    .select_from(ObligationDebtor)
    .where(ObligationDebtor.obligation_id == Obligation.id, ObligationDebtor.role.in_(("primary", "co_debtor")))
    .correlate(Obligation)
    .scalar_subquery()
)
_disputed = (
    select(Dispute.id).where(Dispute.obligation_id == Obligation.id, Dispute.state == "open")
    .correlate(Obligation).exists()
)
_stated = (
    select(Dispute.id)
    .where(Dispute.obligation_id == Obligation.id, Dispute.person_id == bindparam("person_id"),
           Dispute.state == "upheld", Dispute.statement_enc.is_not(None))
    .correlate(Obligation).exists()
)  # fmt: skip
_LINES = (
    select(Obligation.id, Obligation.institution_id, Obligation.external_ref, Obligation.kind, Obligation.currency,
           Obligation.balance, Obligation.credit_limit, Obligation.monthly_payment, Obligation.overdue_amount,
           Obligation.days_past_due, Obligation.status, Obligation.as_of, Obligation.collects_institution_id,
           Obligation.collects_external_ref, Obligation.handed_to_institution_id, Obligation.handed_to_external_ref,
           _mine.role, Institution.name.label("creditor"),
           _own_count.label("own_debtors"), _disputed.label("disputed"), _stated.label("stated"))
    .join(_mine, _mine.obligation_id == Obligation.id)
    .join(Institution, Institution.id == Obligation.institution_id)
    .where(_mine.person_id == bindparam("person_id"), Obligation.retracted_at.is_(None))
)  # fmt: skip


_PG_LINES = """
SELECT o.id, o.institution_id, o.external_ref, o.kind, o.currency, o.balance, o.credit_limit,
       o.monthly_payment, o.overdue_amount, o.days_past_due, o.status, o.as_of, o.collects_institution_id,
       o.collects_external_ref, o.handed_to_institution_id, o.handed_to_external_ref, d.role, i.name AS creditor,
       (SELECT count(*) FROM obligation_debtors x
         WHERE x.obligation_id = o.id AND x.role IN ('primary', 'co_debtor')) AS own_debtors,
       EXISTS (SELECT 1 FROM disputes q WHERE q.obligation_id = o.id AND q.state = 'open') AS disputed,
       EXISTS (SELECT 1 FROM disputes q WHERE q.obligation_id = o.id AND q.person_id = %(person_id)s
                AND q.state = 'upheld' AND q.statement_enc IS NOT NULL) AS stated
  FROM obligation_debtors d
  JOIN obligations o ON o.id = d.obligation_id
  JOIN institutions i ON i.id = o.institution_id
 WHERE d.person_id = %(person_id)s AND o.retracted_at IS NULL
"""


def debt_rows_for_person(session: Session, person_id: str) -> list:
    """Every obligation naming the person that has not been retracted, with this person's role, the
    creditor's name, how many primary/co-debtors it has, whether a dispute on it is open (`disputed`) and
    whether this person has a statement on it (`stated`; the text is read only then). One query, using the debtor index: a
    prepared statement on PostgreSQL (the lender's hot path, see storage.fastpath), Core on SQLite."""
    if not fastpath.is_pg(session):
        return session.execute(_LINES, {"person_id": person_id}).all()
    return [r._replace(as_of=fastpath.utc(r.as_of)) for r in fastpath.fetch(session, _PG_LINES, {"person_id": person_id})]


_INSERT_EXPOSURE = insert(ExposureRecord)
_PG_INSERT_EXPOSURE = """
INSERT INTO exposures (id, event_id, institution_id, person_id, consent_id, created_at, response, response_sha256)
VALUES (%(id)s, %(event_id)s, %(institution_id)s, %(person_id)s, %(consent_id)s, %(created_at)s, %(response)s,
        %(response_sha256)s)
"""


def add_exposure_record(session: Session, values: dict, *, encoded: bytes) -> None:
    """Store an answer; `encoded` is its canonical JSON (already made for its hash: sent as is on
    PostgreSQL instead of being encoded again)."""
    if not fastpath.is_pg(session):
        session.execute(_INSERT_EXPOSURE, values)
        return
    fastpath.execute(session, _PG_INSERT_EXPOSURE, {**values, "response": encoded.decode()})


def get_exposure_record(session: Session, exposure_id: str) -> ExposureRecord | None:
    return session.get(ExposureRecord, exposure_id)
