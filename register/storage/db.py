"""Engines and sessions. SQLite runs in WAL mode with synchronous=FULL and takes the write lock at
BEGIN (every request here writes at least an access event, so a deferred lock upgrade would only fail
later with SQLITE_BUSY)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from register.storage import writer_gate
from register.storage.dialect import KEY, Statements
from register.storage.dialects.postgres import PostgresStatements
from register.storage.dialects.sqlite import SqliteStatements


def make_engine(url: str, *, pool_size: int = 10, pool_timeout: float = 5.0, pre_ping: bool = False,
                statement_timeout: float | None = None) -> Engine:
    """`pool_timeout`: the longest a request waits for a connection before it is refused (503), so that
    a busy pool never makes a client wait long, whatever another client does. `statement_timeout`
    (seconds, PostgreSQL): the longest one statement may run or wait for a lock before the server cancels
    it (503 too); None for none (migrations, the operator's commands)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Writers take turns at the writer gate (storage.writer_gate) before BEGIN IMMEDIATE: waiters queue
        # in the operating system, not in SQLite's sleeping busy handler. An in-memory database is one process's.
        gate = writer_gate.WriterGate(f"{database}-writer.lock" if database and database != ":memory:" else None)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30,
                                                  "factory": writer_gate.connection_factory(gate)},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event below own BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        writer_gate.install(engine)  # BEGIN IMMEDIATE, after the connection's turn
        return engine
    # No pre-ping: it costs a round trip on every checkout (10 % of an exposure query); connections are
    # recycled instead, and a dead one fails its request (503, which the client may retry). SQLAlchemy then
    # invalidates the whole pool, so after a restart or a failover one request per process is refused.
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout, pool_recycle=300,
        hide_parameters=True, connect_args=postgres_connect_args(url, statement_timeout=statement_timeout),
        pool_pre_ping=pre_ping,
    )


# The bounds on a database that does not answer (SPEC.md, "Many machines"): connecting gives up after
# CONNECT_TIMEOUT seconds per host (libpq's connect_timeout; a multi-host URL tries each host in turn), and
# a connection whose server stopped answering (its machine gone, a network partition) is found dead by TCP
# after TCP_USER_TIMEOUT_MS of unacknowledged data, or by keepalives after 5 + 2 x 3 s when idle.
CONNECT_TIMEOUT = 3
TCP_USER_TIMEOUT_MS = 10_000


def postgres_connect_args(url: str, *, statement_timeout: float | None = None) -> dict[str, object]:
    """libpq parameters bounding how long a dead or unreachable server can hold a request; what the
    URL sets itself (e.g. `connect_timeout=`, `options=`) wins.

    A server that froze with its connections open (its disk hung, a lock never released) is bounded by
    `statement_timeout`, sent as the connection's `options`: the server cancels the statement
    (QueryCanceled, answered 503 `database_unavailable`). It bounds a lock wait too, so no `lock_timeout`
    is set beside it (migrations set their own, `migrations/env.py`)."""
    given = make_url(url).query
    args: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT, "keepalives": 1, "keepalives_idle": 5,
                               "keepalives_interval": 2, "keepalives_count": 3,
                               "tcp_user_timeout": TCP_USER_TIMEOUT_MS}
    if statement_timeout:
        args["options"] = f"-c statement_timeout={round(statement_timeout * 1000)}"
    return {k: v for k, v in args.items() if k not in given}


def replica_url(url: str) -> str | None:
    """The URL for reads that may be a moment old (SPEC.md, "Many machines": read routing): a multi-host URL
    whose `target_session_attrs` asks for the primary, turned into `prefer-standby` (libpq takes the first
    standby that answers, else the primary). None for any other URL (one host, SQLite): read where you write."""
    if url.startswith("sqlite"):
        return None
    parsed = make_url(url)
    if parsed.query.get("target_session_attrs") not in ("read-write", "primary"):
        return None
    return parsed.update_query_dict({"target_session_attrs": "prefer-standby"}).render_as_string(hide_password=False)


def make_read_sessionmaker(url: str, primary: sessionmaker[Session], *, pool_size: int = 10,
                           pool_timeout: float = 5.0, statement_timeout: float | None = None) -> sessionmaker[Session]:
    """Sessions for reads that may lag: on a standby when `url` is a multi-host URL, else `primary` itself
    (no second pool)."""
    replica = replica_url(url)
    if replica is None:
        return primary
    # Pre-ping here: a standby restarts or is promoted more often than the primary goes, and a read that may
    # lag is worth a round trip more rather than a 503 on a connection that died with its server.
    return make_sessionmaker(make_engine(replica, pool_size=pool_size, pool_timeout=pool_timeout, pre_ping=True,
                                         statement_timeout=statement_timeout))


_STATEMENTS: dict[str, Statements] = {"postgresql": PostgresStatements(), "sqlite": SqliteStatements()}


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions on `engine`, each carrying the statements of its database (storage.dialect): the one
    place where PostgreSQL and SQLite part ways."""
    chosen = _STATEMENTS[engine.dialect.name]
    return sessionmaker(engine, expire_on_commit=False, autoflush=False, info={KEY: chosen})


T = TypeVar("T")


def again_on_conflict(sessions: sessionmaker[Session], work: Callable[[Session], T], *, attempts: int = 3) -> T:
    """`work` in a transaction of its own. One that fails on a unique key, because a concurrent transaction
    committed a row it was about to write (a single report's obligation, a request's row under a new key), is
    run again from its start, when it sees that row: up to `attempts` times, then the error is raised."""
    for attempt in range(attempts):
        try:
            with sessions.begin() as session:
                return work(session)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("attempts must be at least 1")
