"""The statements of `storage.dialect.Statements` on PostgreSQL.

Hot path: measured on this machine, one exposure-lines query cost 2.0-2.9 ms through SQLAlchemy Core,
1.0-1.2 ms through `exec_driver_sql` and 0.4-0.5 ms as a prepared psycopg statement (BENCHMARKS.md): most
of an exposure query's time was client-side statement overhead, not PostgreSQL's. So its statements (person
and consent, the person's debts, the credit ban, the quota, the access event, the stored answer) run as
prepared statements on the session's own connection, inside its transaction. Rows come back as named
tuples with the same field names as the Core queries; times in UTC, as `UTCDateTime` returns them.

Batches: binary COPY, and updates through a staging table with one `UPDATE ... FROM`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import JSON, Engine, MetaData, Select, Table, cast, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from register.storage.dialect import LenderConnection, LenderPool, QuotaTake
from register.storage.dialects.postgres_exposure import (
    _ACTIVE_BAN, _LINES, _QUOTA_ANY, _QUOTA_ROWS, _QUOTA_SHARD, AsyncLenders, _Ban, _grant, _grant_params, _Line,
    _quota_params, _utc, lender_connection,
)  # fmt: skip
from register.storage.models import Obligation, Person
from register.storage.types import TextJson

OUTBOX_LOCK = 0x6F7574626F78  # the advisory lock outbox writers take in turn ("outbox" in ASCII)


def _fetch(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    conn = session.connection().connection.driver_connection
    with conn.cursor(row_factory=namedtuple_row) as cur:
        cur.execute(sql, params, prepare=True)
        return cur.fetchall()


def _execute(session: Session, sql: str, params: dict[str, Any]) -> None:
    conn = session.connection().connection.driver_connection
    with conn.cursor() as cur:
        cur.execute(sql, params, prepare=True)


_PERSON_AND_CONSENT = """
SELECT (SELECT id FROM persons WHERE blind_index = %(blind_index)s
        UNION ALL SELECT id FROM persons WHERE blind_index_next = %(blind_index)s LIMIT 1) AS person_id, c.institution_id,
       c.person_id AS consent_person, c.purpose, c.expires_at, c.revoked_at, c.source, c.id
  FROM (SELECT 1) AS one LEFT JOIN consents c ON c.id = %(consent_id)s
"""

_LINES_AND_BAN = f"""
SELECT b.id AS ban_id, b.reason AS ban_reason, b.since AS ban_since, l.*
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL ({_ACTIVE_BAN}) AS b ON true
  LEFT JOIN LATERAL ({_LINES}) AS l ON true
"""
_INSERT_EXPOSURE = """
INSERT INTO exposures (id, event_id, institution_id, person_id, consent_id, created_at, response, response_sha256)
VALUES (%(id)s, %(event_id)s, %(institution_id)s, %(person_id)s, %(consent_id)s, %(created_at)s, %(response)s,
        %(response_sha256)s)
"""


@functools.lru_cache(maxsize=8)
def _insert_event(columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO access_events ({', '.join(columns)}) "
            f"VALUES ({', '.join(f'%({c})s' for c in columns)}) RETURNING seq")


_BINARY_TYPES = {"VARCHAR": "text", "TEXT": "text", "BIGINT": "int8", "INTEGER": "int4", "DATE": "date",
                 "TIMESTAMP WITH TIME ZONE": "timestamptz", "BYTEA": "bytea", "JSON": "text"}


@functools.lru_cache(maxsize=64)
def _copy_plan(table: Table, cols: tuple[str, ...]) -> tuple[str, tuple[str, ...], frozenset[int]]:
    """COPY statement, binary type per column, and which columns are JSON (sent pre-encoded as text,
    which is also json's binary wire form)."""
    dialect = postgresql.dialect()
    types, jsons = [], set()
    for i, c in enumerate(cols):
        name = table.c[c].type.compile(dialect=dialect)
        types.append(_BINARY_TYPES[name.split("(")[0]])
        if name == "JSON" or isinstance(table.c[c].type.dialect_impl(dialect), TextJson):  # text here, the same bytes
            jsons.add(i)
    return f"COPY {table.name} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)", tuple(types), frozenset(jsons)


def _copy(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Binary COPY: psycopg's C dumpers, with JSON encoded by orjson (or given encoded, as bytes). A row of
    obligations costs 5 us this way against 27 us through text COPY with psycopg's Json wrapper
    (BENCHMARKS.md). A unique violation raises SQLAlchemy's IntegrityError, as a Core statement's would, so
    that a caller's retry sees one kind of error."""
    cols = tuple(rows[0])
    _copy_tuples(session, table, cols, [[r[c] for c in cols] for r in rows])


def _copy_tuples(session: Session, table: Table, cols: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
    """`_copy` of rows given as sequences of `cols`' values (a table without JSON columns writes them as
    they are: no row copied)."""
    stmt, types, jsons = _copy_plan(table, cols)
    raw = session.connection().connection.driver_connection
    try:
        with raw.cursor() as cur, cur.copy(stmt) as cp:
            cp.set_types(types)
            write = cp.write_row
            if not jsons:
                for r in rows:
                    write(r)
                return
            for r in rows:
                values = list(r)
                for i in jsons:
                    v = values[i]
                    if v is not None:
                        values[i] = v.decode() if isinstance(v, bytes) else orjson.dumps(v).decode()
                write(values)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(stmt, None, exc) from exc


def _text_array(values: list[str]) -> str:
    """A text[] literal. psycopg dumps a list element by element through two regular expressions: 43 us a
    line of a batch under cProfile, for the two lookups of a batch, against a join here."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _bytea_array(values: list[bytes]) -> str:
    """A bytea[] literal (hex format), for the same reason."""
    return "{" + ",".join('"\\\\x' + v.hex() + '"' for v in values) + "}"


_PROBES_ONLY = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off"
_PLANNER_AS_IT_WAS = "SET LOCAL enable_seqscan = on; SET LOCAL enable_bitmapscan = on"
_STAGE = Obligation.__table__.to_metadata(MetaData(), name="stage_obligations")
_STAGE_PERSONS = Person.__table__.to_metadata(MetaData(), name="stage_persons")


class PostgresStatements:
    """`storage.dialect.Statements` on PostgreSQL."""

    overlapping_writers = True

    def bound_lock_waits(self, session: Session, seconds: float) -> None:
        session.connection().exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, round(seconds * 1000))}")

    def person_and_consent(self, session: Session, *, blind_index: bytes, consent_id: str) -> tuple[str | None, Any]:
        row = _fetch(session, _PERSON_AND_CONSENT, {"blind_index": blind_index, "consent_id": consent_id})[0]
        if row.id is None:
            return row.person_id, None
        return row.person_id, row._replace(expires_at=_utc(row.expires_at), revoked_at=_utc(row.revoked_at))

    def debt_rows_for_person(self, session: Session, person_id: str) -> list[Any]:
        return [r._replace(as_of=_utc(r.as_of)) for r in _fetch(session, _LINES, {"person_id": person_id})]

    def active_ban_brief(self, session: Session, person_id: str, now: datetime) -> Any:
        rows = _fetch(session, _ACTIVE_BAN, {"person_id": person_id, "now": now})
        return rows[0]._replace(since=_utc(rows[0].since)) if rows else None

    def add_event(self, session: Session, values: dict[str, Any]) -> int:
        details = values["details"]
        params = {**values, "details": orjson.dumps(details).decode() if details is not None else None}
        return _fetch(session, _insert_event(tuple(values)), params)[0].seq

    def add_exposure_record(self, session: Session, values: dict[str, Any], *, encoded: bytes) -> None:
        _execute(session, _INSERT_EXPOSURE, {**values, "response": encoded.decode()})

    def debt_rows_and_ban(self, session: Session, person_id: str, now: datetime) -> tuple[list[Any], Any]:
        """One statement: the ban in force beside every line, and one row of NULL lines if there are none.
        (psycopg's pipeline mode, two statements in one round trip, cost more Python than it saved.)"""
        rows = _fetch(session, _LINES_AND_BAN, {"person_id": person_id, "now": now})
        first = rows[0]
        ban = _Ban(first.ban_id, first.ban_reason, _utc(first.ban_since)) if first.ban_id is not None else None
        lines = [_Line(*r[3:])._replace(as_of=_utc(r.as_of)) for r in rows if r.id is not None]
        return lines, ban

    def grant_answer(self, session: Session, *, quota: QuotaTake | None, event: dict[str, Any],
                     record: dict[str, Any], encoded: bytes) -> int | None:
        params = _grant_params(event, record, encoded)
        if quota is None:
            return self._send_with_commit(session, _grant(tuple(event), tuple(record), None), params)
        shards = _quota_params(params, quota)
        seq = self._send_with_commit(session, _grant(tuple(event), tuple(record), _QUOTA_SHARD), params)
        if seq is not None or shards == 1:
            return seq
        # Its shard is used up: any other with room (rare until the day's quota nears its end).
        with psycopg.ClientCursor(session.connection().connection.driver_connection) as cur:
            cur.execute(_QUOTA_ROWS, params)
        return self._send_with_commit(session, _grant(tuple(event), tuple(record), _QUOTA_ANY), params)

    def lender_connection(self, engine: Engine) -> AbstractContextManager[LenderConnection] | None:
        return lender_connection(engine)

    def lender_pool(self, engine: Engine, *, size: int, timeout: float,
                    connect_args: dict[str, object]) -> LenderPool | None:
        return AsyncLenders(engine, size=size, timeout=timeout, connect_args=connect_args)

    @staticmethod
    def _send_with_commit(session: Session, sql: str, params: dict[str, Any]) -> int | None:
        """`sql` and the COMMIT that ends the transaction in one message (psycopg's client-side binding, the
        simple query protocol): a quota row is locked from this statement to its commit with no Python in
        between, where a thread could wait for the GIL while other answers of the institution wait on the
        row. 16 connections on one process: +10-20 % answers/s against a prepared statement and a separate
        commit, +5-10 % against a pipeline of the two (BENCHMARKS.md)."""
        conn = session.connection().connection.driver_connection
        with psycopg.ClientCursor(conn) as cur:
            cur.execute(sql + ";\nCOMMIT", params)
            return cur.fetchone()[0]

    def try_lock_integrator(self, session: Session, key: int) -> bool:
        """A transaction-scoped advisory lock."""
        return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar())

    def lock_outbox(self, session: Session) -> None:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": OUTBOX_LOCK})

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.with_for_update(skip_locked=True)

    def insert_ignore(self, session: Session, table: Table, values: dict[str, Any]) -> None:
        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing())

    def persons_by_blind_index(self, session: Session, keys: list[bytes]) -> list[tuple[str, bytes]]:
        """One statement with an array parameter: no 1,000-parameter IN list to compile. The rows are
        locked against deletion (FOR KEY SHARE, which blocks no other report) until the batch commits, so
        retention never forgets a person a batch is naming (storage.retention). The array is one parameter
        named three times (psycopg sends it once): PostgreSQL parsed each of three copies, 6 ms a copy for
        5,000 keys, a third of the statement (BENCHMARKS.md, ingest, fourteenth round)."""
        rows = session.connection().exec_driver_sql(
            "SELECT id, CASE WHEN blind_index = ANY(%(keys)s::bytea[]) THEN blind_index ELSE blind_index_next END"
            " FROM persons WHERE blind_index = ANY(%(keys)s::bytea[]) OR blind_index_next = ANY(%(keys)s::bytea[])"
            " FOR KEY SHARE", {"keys": _bytea_array(keys)}).all()
        return [(pid, bytes(bidx)) for pid, bidx in rows]

    def obligations_for_update(self, session: Session, *, institution_id: str, refs: list[str]) -> list[Any]:
        """One probe of `uq_obligations_institution_ref` on both columns a reference, in a nested loop over
        the array. Asked as `external_ref = ANY(array)`, a batch's thousands of references made the planner
        walk all the institution's entries (or scan the table) and filter them by the array, a cost that grew
        with the register: 5,000 new references took 35-46 ms at 166,000 obligations and 1,058 ms at 3 million
        (the 5-million-line file slowed to a third as it grew), against 9 ms probing (BENCHMARKS.md, ingest,
        fourteenth round). The planner's other choices are off for this statement only (`SET LOCAL`, set
        back after it in the same transaction: two round trips more, ~0.1 ms)."""
        conn = session.connection()
        conn.exec_driver_sql(_PROBES_ONLY)
        rows = conn.exec_driver_sql(
            "SELECT o.* FROM unnest(%s::text[]) AS r(ref) CROSS JOIN LATERAL (SELECT id, external_ref, as_of, "
            "state_hash, retracted_at, version FROM obligations WHERE institution_id = %s AND external_ref = r.ref "
            "ORDER BY institution_id, external_ref LIMIT 1 FOR UPDATE) AS o", (_text_array(refs), institution_id)).all()
        conn.exec_driver_sql(_PLANNER_AS_IT_WAS)
        return list(rows)

    def insert_rows(self, session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
        _copy(session, table, rows)

    def insert_tuples(self, session: Session, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        _copy_tuples(session, table, columns, rows)

    def add_persons(self, session: Session, rows: list[dict[str, Any]]) -> set[bytes]:
        """Binary COPY, in a savepoint. When a concurrent report inserted one of these persons (COPY waits
        for its transaction, then hits `uq_persons_blind_index`), again through a staging table with one
        INSERT ... ON CONFLICT DO NOTHING, which skips it. (Array parameters cost twice the Python, and
        staging every batch doubles PostgreSQL's work for the rare race.)"""
        try:
            with session.begin_nested():
                _copy(session, Person.__table__, rows)
            return set()
        except IntegrityError:
            pass
        session.execute(text("CREATE TEMP TABLE IF NOT EXISTS stage_persons ON COMMIT DELETE ROWS AS "
                             "SELECT * FROM persons WITH NO DATA"))
        _copy(session, _STAGE_PERSONS, rows)
        added = session.execute(text("INSERT INTO persons SELECT * FROM stage_persons "
                                     "ON CONFLICT DO NOTHING RETURNING blind_index")).scalars().all()
        session.execute(text("DELETE FROM stage_persons"))
        return {r["blind_index"] for r in rows} - {bytes(b) for b in added}

    def readable_json(self, column: Any) -> Any:
        return cast(column, JSON)  # text here (storage.types.TextJson): read as json where a query looks into it

    def update_obligations(self, session: Session, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
        """One UPDATE ... FROM a COPYed staging table, each row found through the primary key.

        Left to itself the planner, which knows nothing of the freshly filled staging table, hashed the whole
        of `obligations` (a sequential scan) for every batch while the table was small enough for that to
        look cheaper than probing its index (200,000 rows here): 965-1,127 ms against 407-483 ms through the
        index for 5,000 rows (BENCHMARKS.md, ingest, fourth round). Hash and merge joins are off for this
        statement only."""
        cols = ["id", *columns]
        session.execute(text("CREATE TEMP TABLE IF NOT EXISTS stage_obligations ON COMMIT DELETE ROWS AS "
                             "SELECT * FROM obligations WITH NO DATA"))  # every column: a call sets any few
        _copy(session, _STAGE, [{c: r[c] for c in cols} for r in rows])
        sets = ", ".join(f"{c} = s.{c}" for c in columns)
        for setting in ("SET LOCAL enable_hashjoin = off", "SET LOCAL enable_mergejoin = off"):
            session.execute(text(setting))
        session.execute(text(f"UPDATE obligations o SET {sets}, retracted_at = NULL, retraction_reason = NULL "
                             "FROM stage_obligations s WHERE o.id = s.id"))
        for statement in ("RESET enable_hashjoin", "RESET enable_mergejoin", "DELETE FROM stage_obligations"):
            session.execute(text(statement))
