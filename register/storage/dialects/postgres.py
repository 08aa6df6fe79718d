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
import random
from collections import namedtuple
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Engine, MetaData, Select, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from register.storage.dialect import LenderConnection, LenderRead, QuotaTake, shard_share
from register.storage.models import AccessEvent, ExposureRecord, Obligation, Person
from register.storage.pseudonyms import epoch_of

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


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


_PERSON_AND_CONSENT = """
SELECT (SELECT id FROM persons WHERE blind_index = %(blind_index)s
        UNION ALL SELECT id FROM persons WHERE blind_index_next = %(blind_index)s LIMIT 1) AS person_id, c.institution_id,
       c.person_id AS consent_person, c.purpose, c.expires_at, c.revoked_at, c.source, c.id
  FROM (SELECT 1) AS one LEFT JOIN consents c ON c.id = %(consent_id)s
"""

_LINES = """
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

_ACTIVE_BAN = """
SELECT id, reason, since FROM credit_bans
 WHERE person_id = %(person_id)s AND since <= %(now)s AND (until IS NULL OR until > %(now)s)
   AND (lift_effective_at IS NULL OR lift_effective_at > %(now)s)
 ORDER BY since DESC LIMIT 1
"""

_LINES_AND_BAN = f"""
SELECT b.id AS ban_id, b.reason AS ban_reason, b.since AS ban_since, l.*
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL ({_ACTIVE_BAN}) AS b ON true
  LEFT JOIN LATERAL ({_LINES}) AS l ON true
"""
_Line = namedtuple("_Line", "id institution_id external_ref kind currency balance credit_limit monthly_payment "
                   "overdue_amount days_past_due status as_of collects_institution_id collects_external_ref "
                   "handed_to_institution_id handed_to_external_ref role creditor own_debtors disputed stated")
_Ban = namedtuple("_Ban", "id reason since")

# The lender's hot path reads all it needs in one statement (`_Lender.read`): the person, the consent,
# this month's pseudonym of the blind index, and, only for a consent the statement itself finds active for
# this institution, person and purpose (`g`: the grant rule of `domain.consent.check_consent`, stated in
# SQL so that no debt row is read past a refusal), the credit ban and the lines. Python still checks the
# consent (`check_consent`, the authority, which names the refusal): where the two disagree the answer is
# not given here (services.exposure). It also asks the `sequential_lookups` probe (services.sequential):
# the neighbours' events in the window through ix_access_events_subject, the institution looked for among
# them only (a LIMITed lateral: the planner cannot walk the busy institution's own range). NULL: false.
_SEQUENTIAL = """EXISTS (SELECT 1 FROM subject_pseudonyms sp CROSS JOIN LATERAL (SELECT e.actor_id, e.action
  FROM access_events e WHERE e.subject = sp.pseudonym AND e.occurred_at >= %(seq_since)s
  AND e.occurred_at < %(now)s LIMIT 1000) AS e WHERE sp.blind_index IN (%(seq_a)s, %(seq_b)s)
  AND sp.epoch IN (%(seq_e1)s, %(seq_e2)s) AND e.actor_id = %(institution_id)s AND e.action = 'exposure:query')"""

_LENDER_READ = f"""
WITH c AS (SELECT id, institution_id, person_id AS consent_person, purpose, expires_at, revoked_at, source
             FROM consents WHERE id = %(consent_id)s),
     p AS (SELECT (SELECT id FROM persons WHERE blind_index = %(blind_index)s
                   UNION ALL SELECT id FROM persons WHERE blind_index_next = %(blind_index)s LIMIT 1) AS person_id),
     g AS (SELECT p.person_id FROM p JOIN c ON c.consent_person = p.person_id
            WHERE c.institution_id = %(institution_id)s AND c.purpose = %(purpose)s
              AND (c.revoked_at IS NULL OR c.revoked_at > %(now)s) AND c.expires_at > %(now)s)
SELECT p.person_id, c.id, c.institution_id, c.consent_person, c.purpose, c.expires_at, c.revoked_at, c.source,
       (SELECT pseudonym FROM subject_pseudonyms WHERE blind_index = %(blind_index)s AND epoch = %(epoch)s),
       g.person_id IS NOT NULL, b.id, b.reason, b.since, {_SEQUENTIAL}, l.*
  FROM p LEFT JOIN c ON true LEFT JOIN g ON true
  LEFT JOIN LATERAL ({_ACTIVE_BAN.replace("%(person_id)s", "g.person_id")}) AS b ON true
  LEFT JOIN LATERAL ({_LINES.replace("%(person_id)s", "g.person_id")}) AS l ON true
"""
_HEAD = 14  # the columns before the line's
_Consent = namedtuple("_Consent", "id institution_id consent_person purpose expires_at revoked_at source")

# As storage.pseudonyms._MAKE; RETURNING nothing when a concurrent answer made it first (then read apart,
# in a statement of its own, whose snapshot sees that answer's commit).
_MAKE_PSEUDONYM = """
INSERT INTO subject_pseudonyms (pseudonym, blind_index, epoch, epoch_end)
VALUES (%(pseudonym)s, %(blind_index)s, %(epoch)s, %(epoch_end)s)
ON CONFLICT (blind_index, epoch) DO NOTHING RETURNING pseudonym
"""
_PSEUDONYM = "SELECT pseudonym FROM subject_pseudonyms WHERE blind_index = %(blind_index)s AND epoch = %(epoch)s"


class _Lender:
    """`storage.dialect.LenderConnection` on one psycopg connection in autocommit: each statement is
    prepared once per connection and is a transaction of its own, committed (durable: synchronous_commit)
    when it returns, with no BEGIN or COMMIT round trip beside it. The reads need no transaction with the
    writes: under READ COMMITTED every statement had its own snapshot anyway, and the reads lock nothing."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def read(self, *, blind_index: bytes, consent_id: str, institution_id: str, purpose: str, epoch: str,
             now: datetime, neighbours: Sequence[bytes] = (), since: datetime | None = None) -> LenderRead:
        since = since or now
        rows = self.conn.execute(_LENDER_READ, {
            "blind_index": blind_index, "consent_id": consent_id, "institution_id": institution_id,
            "purpose": purpose, "epoch": epoch, "now": now,
            "seq_a": neighbours[0] if neighbours else None, "seq_b": neighbours[-1] if neighbours else None,
            "seq_e1": epoch_of(since)[0], "seq_e2": epoch, "seq_since": since}, prepare=True).fetchall()
        first = rows[0]
        consent = None
        if first[1] is not None:
            consent = _Consent(first[1], first[2], first[3], first[4], _utc(first[5]), _utc(first[6]), first[7])
        pseudonym = bytes(first[8]) if first[8] is not None else None
        ban = _Ban(first[10], first[11], _utc(first[12])) if first[10] is not None else None
        lines = [_Line(*r[_HEAD:])._replace(as_of=_utc(r[_HEAD + 11])) for r in rows if r[_HEAD] is not None]
        return LenderRead(person_id=first[0], consent=consent, pseudonym=pseudonym, granted=first[9],
                          lines=lines, ban=ban, sequential=bool(first[13]))

    def make_pseudonym(self, *, pseudonym: bytes, blind_index: bytes, epoch: str, epoch_end: datetime) -> bytes:
        params = {"pseudonym": pseudonym, "blind_index": blind_index, "epoch": epoch, "epoch_end": epoch_end}
        row = self.conn.execute(_MAKE_PSEUDONYM, params).fetchone()
        if row is None:
            row = self.conn.execute(_PSEUDONYM, params).fetchone()
        return bytes(row[0])

    def grant_answer(self, *, quota: QuotaTake | None, event: dict[str, Any], record: dict[str, Any],
                     encoded: bytes) -> int | None:
        params = _grant_params(event, record, encoded)
        if quota is None:
            return self._one(_grant(tuple(event), tuple(record), None), params)
        shards = _quota_params(params, quota)
        seq = self._one(_grant(tuple(event), tuple(record), _QUOTA_SHARD), params)
        if seq is not None or shards == 1:
            return seq
        with psycopg.ClientCursor(self.conn) as cur:  # its shard is used up: any other with room (rare)
            cur.execute(_QUOTA_ROWS, params)
        return self._one(_grant(tuple(event), tuple(record), _QUOTA_ANY), params)

    def _one(self, sql: str, params: dict[str, Any]) -> Any:
        return self.conn.execute(sql, params, prepare=True).fetchone()[0]


@contextmanager
def _lender_connection(engine: Engine) -> Iterator[_Lender]:
    """A connection of the engine's pool (no ORM session, no SQLAlchemy `Connection`), in autocommit for
    the block and given back as it came. A connection an error left unusable is dropped from the pool."""
    fairy = engine.raw_connection()
    conn: psycopg.Connection = fairy.driver_connection
    try:
        conn.autocommit = True
        yield _Lender(conn)
    except BaseException as exc:
        if conn.closed or conn.broken:  # the server went away: every connection of its time with it, as
            engine.pool._invalidate(fairy, exc)  # SQLAlchemy does on a disconnect (storage.db.make_engine)
            raise
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            fairy.invalidate()
            raise
        conn.autocommit = False
        fairy.close()
        raise
    conn.autocommit = False
    fairy.close()


def _grant_params(event: dict[str, Any], record: dict[str, Any], encoded: bytes) -> dict[str, Any]:
    details = event["details"]
    return {**event, "details": orjson.dumps(details).decode() if details is not None else None,
            **{f"r_{k}": v for k, v in record.items()}, "r_response": encoded.decode()}


def _quota_params(params: dict[str, Any], quota: QuotaTake) -> int:
    """`quota`'s parameters, with its shard picked at random among those with room (added to `params`);
    how many shards have room at all."""
    shards = quota.shards_open(QUOTA_SHARDS)
    shard = random.randrange(shards)
    params |= {"q_institution_id": quota.institution_id, "q_day": quota.day, "q_quota": quota.quota,
               "q_attested": quota.attested, "q_count_attested": int(quota.count_attested),
               "q_shards": QUOTA_SHARDS, "q_shard": shard,
               "q_cap": shard_share(quota.quota, QUOTA_SHARDS, shard),
               "q_attested_cap": shard_share(quota.attested, QUOTA_SHARDS, shard)}
    return shards


_INSERT_EXPOSURE = """
INSERT INTO exposures (id, event_id, institution_id, person_id, consent_id, created_at, response, response_sha256)
VALUES (%(id)s, %(event_id)s, %(institution_id)s, %(person_id)s, %(consent_id)s, %(created_at)s, %(response)s,
        %(response_sha256)s)
"""


@functools.lru_cache(maxsize=8)
def _insert_event(columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO access_events ({', '.join(columns)}) "
            f"VALUES ({', '.join(f'%({c})s' for c in columns)}) RETURNING seq")


def _casts(table: Table, cols: tuple[str, ...], prefix: str = "") -> str:
    """`%(col)s::type, ...`: in `INSERT ... SELECT` PostgreSQL cannot take a parameter's type from its column."""
    dialect = postgresql.dialect()
    return ", ".join(f"%({prefix}{c})s::{table.c[c].type.compile(dialect=dialect)}" for c in cols)


QUOTA_SHARDS = 16  # counters per institution and day (storage.quota); 16 connections rarely meet on one

# See storage.quota. The chosen shard first: a conflicting INSERT becomes the UPDATE, whose WHERE leaves the
# row alone (and returns nothing) once the shard's share (q_cap, q_attested_cap) is used up.
_QUOTA_SHARD = """
q AS (INSERT INTO quota_usage (institution_id, day, shard, used, attested)
      VALUES (%(q_institution_id)s, %(q_day)s, %(q_shard)s, 1, %(q_count_attested)s)
      ON CONFLICT (institution_id, day, shard) DO UPDATE
        SET used = quota_usage.used + 1, attested = quota_usage.attested + %(q_count_attested)s
      WHERE quota_usage.used < %(q_cap)s AND quota_usage.attested + %(q_count_attested)s <= %(q_attested_cap)s
      RETURNING 1),"""

# Then any shard with room, in shard order, each row locked and re-read before it counts (FOR UPDATE under
# READ COMMITTED skips a row another answer has just used up and takes the next one). A scalar subquery,
# run once: as a joined subquery in UPDATE ... FROM, PostgreSQL 15 ran it again per row and counted 15 shards.
_SHARE = "%(q_{total})s / %(q_shards)s + CASE WHEN shard < %(q_{total})s %% %(q_shards)s THEN 1 ELSE 0 END"
_QUOTA_ANY = f"""
q AS (UPDATE quota_usage SET used = used + 1, attested = attested + %(q_count_attested)s
       WHERE institution_id = %(q_institution_id)s AND day = %(q_day)s AND shard = (
             SELECT shard FROM quota_usage
              WHERE institution_id = %(q_institution_id)s AND day = %(q_day)s AND shard < %(q_shards)s
                AND used < {_SHARE.format(total="quota")}
                AND attested + %(q_count_attested)s <= {_SHARE.format(total="attested")}
              ORDER BY shard LIMIT 1 FOR UPDATE)
      RETURNING 1),"""
_QUOTA_ROWS = """
INSERT INTO quota_usage (institution_id, day, shard, used, attested)
SELECT %(q_institution_id)s, %(q_day)s, g, 0, 0 FROM generate_series(0, %(q_shards)s - 1) AS g
ON CONFLICT (institution_id, day, shard) DO NOTHING
"""


@functools.lru_cache(maxsize=16)
def _grant(event_cols: tuple[str, ...], record_cols: tuple[str, ...], quota: str | None) -> str:
    """One statement for a granted answer's writes: the quota's count (`quota`: how it is taken), the
    access event and the stored answer. With a quota, the two inserts happen only if a counter moved (`q`
    returned a row); the statement returns the event's seq, or NULL when nothing was counted or written."""
    gate = " WHERE EXISTS (SELECT 1 FROM q)" if quota else ""
    return (
        "WITH" + (quota or "")
        + f" e AS (INSERT INTO access_events ({', '.join(event_cols)}) SELECT {_casts(AccessEvent.__table__, event_cols)}"
        + f"{gate} RETURNING seq),"
        + f" x AS (INSERT INTO exposures ({', '.join(record_cols)}) SELECT {_casts(ExposureRecord.__table__, record_cols, 'r_')}"
        + f"{gate})"
        + " SELECT (SELECT seq FROM e) AS seq"
    )


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
        if name == "JSON":
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


_STAGE = Obligation.__table__.to_metadata(MetaData(), name="stage_obligations")
_STAGE_PERSONS = Person.__table__.to_metadata(MetaData(), name="stage_persons")


class PostgresStatements:
    """`storage.dialect.Statements` on PostgreSQL."""

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
        return _lender_connection(engine)

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
        retention never forgets a person a batch is naming (storage.retention)."""
        rows = session.connection().exec_driver_sql(
            "SELECT id, CASE WHEN blind_index = ANY(%s::bytea[]) THEN blind_index ELSE blind_index_next END"
            " FROM persons WHERE blind_index = ANY(%s::bytea[]) OR blind_index_next = ANY(%s::bytea[])"
            " FOR KEY SHARE", (_bytea_array(keys),) * 3).all()
        return [(pid, bytes(bidx)) for pid, bidx in rows]

    def obligations_for_update(self, session: Session, *, institution_id: str, refs: list[str]) -> list[Any]:
        return list(session.connection().exec_driver_sql(
            "SELECT id, external_ref, as_of, state_hash, retracted_at, version FROM obligations "
            "WHERE institution_id = %s AND external_ref = ANY(%s::text[]) FOR UPDATE",
            (institution_id, _text_array(refs))).all())

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
