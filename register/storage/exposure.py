"""SQL for exposure: the lines of debt naming one person, and the records of answers given."""

from __future__ import annotations

from sqlalchemy.orm import Session

from register.storage.dialect import statements
from register.storage.models import ExposureRecord


def debt_rows_for_person(session: Session, person_id: str) -> list:
    """Every obligation naming the person that has not been retracted, with this person's role, the
    creditor's name, how many primary/co-debtors it has, whether a dispute on it is open (`disputed`) and
    whether this person has a statement on it (`stated`; the text is read only then). One query, using the
    debtor index, of the session's database (the lender's hot path, see storage.dialect)."""
    return statements(session).debt_rows_for_person(session, person_id)


def add_exposure_record(session: Session, values: dict, *, encoded: bytes) -> None:
    """Store an answer; `encoded` is its canonical JSON (already made for its hash: PostgreSQL sends it as
    is instead of encoding it again)."""
    statements(session).add_exposure_record(session, values, encoded=encoded)


def get_exposure_record(session: Session, exposure_id: str) -> ExposureRecord | None:
    return session.get(ExposureRecord, exposure_id)
