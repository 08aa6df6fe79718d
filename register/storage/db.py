"""Engines and sessions. SQLite runs in WAL mode with synchronous=FULL and takes the write lock at
BEGIN (every request here writes at least an access event, so a deferred lock upgrade would only fail
later with SQLITE_BUSY)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from register.storage import writer_gate
from register.storage.dialect import KEY, Statements
from register.storage.dialects.postgres import PostgresStatements
from register.storage.dialects.sqlite import SqliteStatements


def make_engine(url: str, *, pool_size: int = 10, pool_timeout: float = 5.0) -> Engine:
    """`pool_timeout`: the longest a request waits for a connection before it is refused (503), so that
    a busy pool never makes a client wait long, whatever another client does."""
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
    # recycled instead, and a dead one fails its request, which the client may retry.
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout, pool_recycle=300,
        hide_parameters=True,
    )


_STATEMENTS: dict[str, Statements] = {"postgresql": PostgresStatements(), "sqlite": SqliteStatements()}


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions on `engine`, each carrying the statements of its database (storage.dialect): the one
    place where PostgreSQL and SQLite part ways."""
    chosen = _STATEMENTS[engine.dialect.name]
    return sessionmaker(engine, expire_on_commit=False, autoflush=False, info={KEY: chosen})
