"""SQL for applying many report lines at once (services.bulk): set-based reads and writes, each the
fastest the session's database offers (storage.dialect): PostgreSQL reads with array parameters and
writes with binary COPY (updates through a staging table and one `UPDATE ... FROM`); SQLite reads in IN
lists of 500 and writes with executemany."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from register.storage.dialect import statements
from register.storage.models import Obligation, ObligationDebtor, ObligationVersion


def batches_overlap(sessions: sessionmaker[Session]) -> bool:
    """Whether two transactions of these sessions may write a report's batches at once (services.report_writer):
    PostgreSQL locks rows; SQLite takes one writer at a time, whose second would wait for the first."""
    with sessions() as session:  # no connection is made
        return statements(session).overlapping_writers


def bound_lock_waits(session: Session, seconds: float) -> None:
    """For the rest of this transaction, a statement that waits longer than `seconds` for a lock fails (see
    `waited_too_long`) instead of waiting on: where a batch is held by another that waits for it in Python,
    which the database cannot see as a deadlock (services.report_writer). Nothing on SQLite."""
    statements(session).bound_lock_waits(session, seconds)


def waited_too_long(exc: BaseException) -> bool:
    """Whether `exc` is a statement given up after `bound_lock_waits`' bound (SQLSTATE 55P03)."""
    return getattr(exc, "sqlstate", None) == "55P03" or getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03"


def persons_by_blind_index(session: Session, keys: list[bytes]) -> list[tuple[str, bytes]]:
    """(id, blind_index) of the persons with these blind indexes."""
    return statements(session).persons_by_blind_index(session, keys)


def obligations_for_update(session: Session, *, institution_id: str, refs: list[str]) -> list[Any]:
    """The institution's obligations with these references (id, external_ref, as_of, state_hash,
    retracted_at, version), locked until the batch commits."""
    return statements(session).obligations_for_update(session, institution_id=institution_id, refs=refs)


def add_persons(session: Session, rows: list[dict[str, Any]]) -> set[bytes]:
    """Add these persons, leaving alone any whose blind index is taken (by a concurrent report: the
    unique constraint `uq_persons_blind_index`); the blind indexes of those not added."""
    return statements(session).add_persons(session, rows)


def add_obligations(session: Session, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Add obligations, each a tuple of `columns`' values."""
    statements(session).insert_tuples(session, Obligation.__table__, tuple(columns), rows)  # type: ignore[attr-defined]


def update_obligations(session: Session, rows: list[dict[str, Any]], *, columns: Sequence[str]) -> None:
    """Set `columns` of many obligations (by `id`), clearing any retraction."""
    statements(session).update_obligations(session, rows, columns)


def replace_debtors(session: Session, obligation_ids: list[str], rows: list[tuple[str, str, str]]) -> None:
    """The debtors of these obligations (already stored ones) become `rows`, each (obligation_id,
    person_id, role) (those of new obligations too)."""
    for i in range(0, len(obligation_ids), 1000):
        session.execute(delete(ObligationDebtor).where(ObligationDebtor.obligation_id.in_(obligation_ids[i : i + 1000])))
    if rows:
        statements(session).insert_tuples(session, ObligationDebtor.__table__, _DEBTOR_COLUMNS, rows)  # type: ignore[attr-defined]


_DEBTOR_COLUMNS = ("obligation_id", "person_id", "role")


def add_versions(session: Session, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Add versions, each a tuple of `columns`' values; a `state` may be given as its JSON, already
    encoded (bytes)."""
    statements(session).insert_tuples(session, ObligationVersion.__table__, tuple(columns), rows)  # type: ignore[attr-defined]
