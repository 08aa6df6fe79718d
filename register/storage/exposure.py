"""SQL for exposure: the lines of debt naming one person, and the records of answers given."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from register.storage.db import postgres_connect_args
from register.storage.dialect import KEY, LenderConnection, LenderPool, QuotaTake, statements
from register.storage.models import ExposureRecord


def debt_rows_for_person(session: Session, person_id: str) -> list:
    """Every obligation naming the person that has not been retracted, with this person's role, the
    creditor's name, how many primary/co-debtors it has, whether a dispute on it is open (`disputed`) and
    whether this person has a statement on it (`stated`; the text is read only then). One query, using the
    debtor index, of the session's database (the lender's hot path, see storage.dialect)."""
    return statements(session).debt_rows_for_person(session, person_id)


def debt_rows_and_ban(session: Session, person_id: str, now: datetime) -> tuple[list, Any]:
    """`debt_rows_for_person` and the credit ban in force (id, reason, since; or None), read together: on
    PostgreSQL in one round trip."""
    return statements(session).debt_rows_and_ban(session, person_id, now)


def lender_connection(sessions: sessionmaker) -> AbstractContextManager[LenderConnection] | None:
    """For the lender's hot path: a connection of the pool `sessions` draw on, with no session, whose
    `read` and `grant_answer` are one statement each (`storage.dialect.LenderConnection`); None where the
    database has none (SQLite), and the question goes through a session."""
    return sessions.kw["info"][KEY].lender_connection(sessions.kw["bind"])


def lender_pool(sessions: sessionmaker, *, size: int, timeout: float, statement_timeout: float | None,
                ) -> LenderPool | None:
    """For the lender's hot path on the event loop: this process's own connections to the database `sessions`
    use (`storage.dialect.LenderPool`); None where the database has none (SQLite)."""
    engine = sessions.kw["bind"]
    connect_args = postgres_connect_args(str(engine.url), statement_timeout=statement_timeout)  # as make_engine's
    return sessions.kw["info"][KEY].lender_pool(engine, size=size, timeout=timeout, connect_args=connect_args)


def grant_answer(session: Session, *, quota: QuotaTake | None, event: dict[str, Any], record: dict[str, Any],
                 encoded: bytes) -> int | None:
    """A granted answer's writes, the quota's count first (see `Statements.grant_answer`): the access
    event's seq, or None, with nothing written, if the quota is used up. On PostgreSQL one statement sent
    with its COMMIT, so the quota's row is locked for as little time as possible: the transaction ends
    here there, and the answer's access event is durable when this returns."""
    return statements(session).grant_answer(session, quota=quota, event=event, record=record, encoded=encoded)


def add_exposure_record(session: Session, values: dict, *, encoded: bytes) -> None:
    """Store an answer; `encoded` is its canonical JSON (already made for its hash: PostgreSQL sends it as
    is instead of encoding it again)."""
    statements(session).add_exposure_record(session, values, encoded=encoded)


def get_exposure_record(session: Session, exposure_id: str) -> ExposureRecord | None:
    return session.get(ExposureRecord, exposure_id)
