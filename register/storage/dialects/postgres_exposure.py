"""The exposure answer's statements on PostgreSQL: the lines and the credit ban, the quota's count with the
access event and the stored answer in one statement (also sent by `postgres.PostgresStatements` in a
session), and the lender's hot path (`storage.dialect.LenderConnection`): one prepared statement for
every read and one for every write, on a connection with no ORM session, in autocommit. Two drivers of the
same statements: `_Lender` on a (psycopg) connection of the engine's pool, for a worker thread, and
`_AsyncLender` on an asyncpg connection of `AsyncLenders`, this process's pool for its event loop (no thread
hop per answer, and half psycopg's CPU a statement)."""

from __future__ import annotations

import asyncio
import functools
import random
import re
import socket
import time
import urllib.parse
from collections import namedtuple
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import psycopg
from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from register.storage.dialect import LenderRead, QuotaTake, shard_share
from register.storage.models import AccessEvent, ExposureRecord
from register.storage.pseudonyms import epoch_of
from register.unavailable import sqlstate_unavailable

def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None




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

_Line = namedtuple("_Line", "id institution_id external_ref kind currency balance credit_limit monthly_payment "
                   "overdue_amount days_past_due status as_of collects_institution_id collects_external_ref "
                   "handed_to_institution_id handed_to_external_ref role creditor own_debtors disputed stated")
_Ban = namedtuple("_Ban", "id reason since")

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
_SHARE = ("%(q_{total})s::bigint / %(q_shards)s::bigint"
          " + CASE WHEN shard < %(q_{total})s::bigint %% %(q_shards)s::bigint THEN 1 ELSE 0 END")
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


def _read_params(*, blind_index: bytes, consent_id: str, institution_id: str, purpose: str, epoch: str,
                 now: datetime, neighbours: Sequence[bytes] = (), since: datetime | None = None) -> dict[str, Any]:
    since = since or now
    return {"blind_index": blind_index, "consent_id": consent_id, "institution_id": institution_id,
            "purpose": purpose, "epoch": epoch, "now": now,
            "seq_a": neighbours[0] if neighbours else None, "seq_b": neighbours[-1] if neighbours else None,
            "seq_e1": epoch_of(since)[0], "seq_e2": epoch, "seq_since": since}


def _lender_read(rows: list[Any]) -> LenderRead:
    first = rows[0]
    consent = None
    if first[1] is not None:
        consent = _Consent(first[1], first[2], first[3], first[4], _utc(first[5]), _utc(first[6]), first[7])
    pseudonym = bytes(first[8]) if first[8] is not None else None
    ban = _Ban(first[10], first[11], _utc(first[12])) if first[10] is not None else None
    lines = [_Line(*r[_HEAD:])._replace(as_of=_utc(r[_HEAD + 11])) for r in rows if r[_HEAD] is not None]
    return LenderRead(person_id=first[0], consent=consent, pseudonym=pseudonym, granted=first[9],
                      lines=lines, ban=ban, sequential=bool(first[13]))


class _Lender:
    """`storage.dialect.LenderConnection` on one psycopg connection in autocommit: each statement is
    prepared once per connection and is a transaction of its own, committed (durable: synchronous_commit)
    when it returns, with no BEGIN or COMMIT round trip beside it. The reads need no transaction with the
    writes: under READ COMMITTED every statement had its own snapshot anyway, and the reads lock nothing."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def read(self, **question: Any) -> LenderRead:
        return _lender_read(self.conn.execute(_LENDER_READ, _read_params(**question), prepare=True).fetchall())

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
def lender_connection(engine: Engine) -> Iterator[_Lender]:
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


# The lane on the event loop speaks to PostgreSQL through asyncpg: per statement it took half the CPU of
# psycopg's AsyncConnection (24 against 57 microseconds with 30 parameters, BENCHMARKS.md), and a server
# process's CPU an answer fell by a seventh. The statements are the same text, their `%(name)s` parameters
# numbered (`_numbered`) as asyncpg takes them; asyncpg prepares each once per connection (its cache).
_PARAM = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=64)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with each `%(name)s` as `$n` (one number a name) and `%%` as `%`, and the names in order."""
    names: dict[str, int] = {}
    text = _PARAM.sub(lambda m: f"${names.setdefault(m.group(1), len(names) + 1)}", sql)
    return text.replace("%%", "%"), tuple(names)


def _unavailable(exc: BaseException) -> bool:
    """Whether asyncpg's `exc` says the database could not be reached, went away, gave up the statement or
    takes no writes, as `api.problems.database_unavailable` says of psycopg's: what psycopg raises as
    OperationalError (the same SQLSTATE classes: connection, operator intervention, a cancelled statement,
    insufficient resources...) or ReadOnlySqlTransaction (a primary being demoted), a connection closed
    under it, no answer in time, or no host of a multi-host URL that takes writes (a failover's seconds).
    Also asyncpg's InternalClientError, whose protocol met what the server sent out of turn (a connection
    the server ended while it waited: "another operation is in progress"; CI's failover test met it): the
    connection is dropped and the question may be asked again."""
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    state = getattr(exc, "sqlstate", None)
    return state is not None and sqlstate_unavailable(state)


class _AsyncLender:
    """`_Lender`'s statements on an asyncpg connection (no transaction: each statement commits when it
    returns, as in autocommit), awaited on the event loop."""

    __slots__ = ("conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def _fetch(self, sql: str, params: dict[str, Any]) -> list[Any]:
        text, names = _numbered(sql)
        return await self.conn.fetch(text, *[params[name] for name in names])

    async def read(self, **question: Any) -> LenderRead:
        return _lender_read([tuple(r) for r in await self._fetch(_LENDER_READ, _read_params(**question))])

    async def make_pseudonym(self, *, pseudonym: bytes, blind_index: bytes, epoch: str, epoch_end: datetime) -> bytes:
        params = {"pseudonym": pseudonym, "blind_index": blind_index, "epoch": epoch, "epoch_end": epoch_end}
        rows = await self._fetch(_MAKE_PSEUDONYM, params) or await self._fetch(_PSEUDONYM, params)
        return bytes(rows[0][0])

    async def grant_answer(self, *, quota: QuotaTake | None, event: dict[str, Any], record: dict[str, Any],
                           encoded: bytes) -> int | None:
        params = _grant_params(event, record, encoded)
        if quota is None:
            return await self._one(_grant(tuple(event), tuple(record), None), params)
        shards = _quota_params(params, quota)
        seq = await self._one(_grant(tuple(event), tuple(record), _QUOTA_SHARD), params)
        if seq is not None or shards == 1:
            return seq
        await self._fetch(_QUOTA_ROWS, params)  # its shard is used up: any other with room (rare)
        return await self._one(_grant(tuple(event), tuple(record), _QUOTA_ANY), params)

    async def _one(self, sql: str, params: dict[str, Any]) -> Any:
        return (await self._fetch(sql, params))[0][0]


def _asyncpg_args(engine: Engine, connect_args: dict[str, object]) -> dict[str, Any]:
    """asyncpg's `connect` arguments for the engine's database, with the bounds of its pool's connections
    (`storage.db.postgres_connect_args`). libpq's parameters, from SQLAlchemy's psycopg dialect (a
    multi-host URL, Patroni's members with `target_session_attrs=read-write`, becomes lists of hosts and
    ports, tried in turn as libpq does), are asked of asyncpg by their names there: `connect_timeout` is its
    `timeout`; `options`' `-c name=value` settings (statement_timeout) its server settings; the TLS ones
    (sslmode, sslrootcert, ...) go in its DSN. The TCP bounds (keepalives, tcp_user_timeout) are set on the
    socket once connected (`_bound_socket`)."""
    _, params = engine.dialect.create_connect_args(engine.url)
    params = {k: v for k, v in {**params, **connect_args}.items() if k != "context" and v is not None}
    tls = {k: params.pop(k) for k in list(params) if k.startswith("ssl")}
    hosts = [h for h in str(params.pop("host", "")).split(",") if h] or None
    ports = [int(p) for p in str(params.pop("port", "")).split(",") if p] or None
    options = str(params.pop("options", ""))
    settings = dict(m.groups() for m in re.finditer(r"-c\s*([\w.]+)=(\S+)", options))
    args: dict[str, Any] = {
        "dsn": f"postgresql://?{urllib.parse.urlencode(tls)}" if tls else None,
        "host": hosts, "port": ports if ports is None or len(ports) > 1 else ports[0],
        "user": params.pop("user", None), "password": params.pop("password", None),
        "database": params.pop("dbname", None), "timeout": float(params.pop("connect_timeout", 60)) * len(hosts or [None]),  # libpq's is per host
        "target_session_attrs": params.pop("target_session_attrs", None),
        "server_settings": {**settings, **({"application_name": str(params.pop("application_name"))}
                                            if "application_name" in params else {})},
        "statement_cache_size": 64,
    }
    # as libpq's connect_timeout and the engine's `statement_timeout`, a bound in this process too: asyncpg
    # gives up a statement (TimeoutError) a second after the server should have cancelled it
    if timeout := settings.get("statement_timeout"):
        args["command_timeout"] = int(timeout) / 1000 + 1
    return {k: v for k, v in args.items() if v is not None}


def _bound_socket(conn: asyncpg.Connection, connect_args: dict[str, object]) -> None:
    """The engine's TCP bounds on a new connection's socket: a server whose machine went away is found
    dead by keepalives when idle, and by TCP_USER_TIMEOUT when data goes unacknowledged."""
    transport = getattr(conn, "_transport", None)  # asyncpg has no socket options of its own
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket: no TCP to bound
    options = [("tcp_user_timeout", "TCP_USER_TIMEOUT")]  # as libpq: not tied to keepalives
    if connect_args.get("keepalives"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        options += [("keepalives_idle", "TCP_KEEPIDLE"), ("keepalives_interval", "TCP_KEEPINTVL"),
                    ("keepalives_count", "TCP_KEEPCNT")]
    for name, option in options:
        if name in connect_args and hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), int(connect_args[name]))  # type: ignore[call-overload]


def _drop(conn: asyncpg.Connection) -> None:
    """Close a connection of another event loop, without awaiting; that loop may be closed already (a
    test's), and then its socket goes with it."""
    try:
        conn.terminate()
    except RuntimeError:  # its loop is closed
        pass


class AsyncLenders:
    """This process's connections for the lender's path on its event loop (`storage.dialect.LenderPool`):
    at most `size`, made with the engine's database and the same bounds as its pool's
    (`storage.db.postgres_connect_args`: connect timeout, keepalives, `statement_timeout`). A question waits
    at most `timeout` seconds for one, then fails as the engine's pool does (503). A connection that a
    statement left with an error (a task cancelled in the middle of a statement included: asyncpg cancels
    the statement on the server) is closed, never given to another question, as is one older than the
    engine's `pool_recycle`. An error that says the database is unavailable is raised as SQLAlchemy's
    OperationalError, which the API answers 503 as from the engine. Made lazily, on the loop that first
    asks (each server process has its own)."""

    RECYCLE = 300.0  # as storage.db.make_engine's pool_recycle

    def __init__(self, engine: Engine, *, size: int, timeout: float, connect_args: dict[str, object]) -> None:
        self._connect_args = connect_args
        self._args = _asyncpg_args(engine, connect_args)
        self.size, self.timeout = size, timeout
        self._idle: list[tuple[float, _AsyncLender]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = asyncio.Semaphore(size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[_AsyncLender]:
        if (loop := asyncio.get_running_loop()) is not self._loop:  # a new loop (tests): its own connections
            self._loop, self._free, idle, self._idle = loop, asyncio.Semaphore(self.size), self._idle, []
            for _, old in idle:
                _drop(old.conn)
        if self._free.locked():  # all in use: wait as the engine's pool would
            try:
                async with asyncio.timeout(self.timeout):
                    await self._free.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no lender connection free within {self.timeout:g} s") from None
        else:
            await self._free.acquire()  # returns at once
        try:
            born, lender = time.monotonic(), None
            while self._idle:  # one the server ended while it waited here (a failover, a restart) is not handed out
                born, lender = self._idle.pop()
                if not lender.conn.is_closed():
                    break
                born, lender = time.monotonic(), None
            try:
                if lender is None:
                    lender = _AsyncLender(await asyncpg.connect(**self._args))
                    _bound_socket(lender.conn, self._connect_args)
                yield lender
            except BaseException as exc:
                if lender is not None:  # left mid-statement or failed: never handed on
                    await self._discard(lender.conn)
                if isinstance(exc, Exception) and _unavailable(exc):
                    raise OperationalError("the lender's lane", None, exc) from exc  # type: ignore[arg-type]
                raise
            if lender.conn.is_closed() or time.monotonic() - born > self.RECYCLE:
                await lender.conn.close(timeout=1)
            else:
                self._idle.append((born, lender))
        finally:
            self._free.release()

    @staticmethod
    async def _discard(conn: asyncpg.Connection) -> None:
        """Close `conn` once asyncpg's cancel of a statement in flight (sent when the question's task was
        cancelled) has been answered, so that the statement stops on the server too; at most a second."""
        try:
            await asyncio.shield(conn.close(timeout=1))
        except BaseException:
            conn.terminate()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        same_loop = asyncio.get_running_loop() is self._loop
        for _, lender in idle:
            if same_loop:
                await lender.conn.close(timeout=1)
            else:  # made on another loop (a test's): closed without awaiting it
                _drop(lender.conn)
