"""Statements on the lender's hot path, sent straight to psycopg on PostgreSQL.

Measured on this machine, one exposure-lines query cost 2.0-2.9 ms through SQLAlchemy Core, 1.0-1.2 ms
through `exec_driver_sql` and 0.4-0.5 ms as a prepared psycopg statement (BENCHMARKS.md): most of an
exposure query's time was client-side statement overhead, not PostgreSQL's. So the four statements of an
exposure query (person and consent, the person's debts, the access event, the stored answer) run as
prepared statements on the session's own connection, inside its transaction. SQLite keeps the Core
statements: it is the embedded default, and its column types are adapted by SQLAlchemy.

Rows come back as named tuples with the same field names as the Core queries; times are returned in
UTC, as `UTCDateTime` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy.orm import Session


def is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def fetch(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    conn = session.connection().connection.driver_connection
    with conn.cursor(row_factory=namedtuple_row) as cur:
        cur.execute(sql, params, prepare=True)
        return cur.fetchall()


def execute(session: Session, sql: str, params: dict[str, Any]) -> None:
    conn = session.connection().connection.driver_connection
    with conn.cursor() as cur:
        cur.execute(sql, params, prepare=True)


def utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None
