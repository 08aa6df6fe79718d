"""What the API answers 503 `database_unavailable` (api.problems.database_unavailable): the database's own
errors as they reach a request, and an unrelated bug, which stays a 500. The errors are made by a real
session on the test database where the database can make them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError, PendingRollbackError
from sqlalchemy.orm import Session

from register.api.problems import database_unavailable
from register.storage.models import Institution


def institution() -> Institution:
    return Institution(id=str(uuid.uuid4()), name="Unavailable Bank", role="lender", token_hash=uuid.uuid4().hex,
                       created_at=datetime.now(UTC))


def test_a_session_used_again_after_its_write_met_a_read_only_database(database_url, backend):
    """A primary being demoted refuses the flush (ReadOnlySqlTransaction); the session, used again, raises
    SQLAlchemy's PendingRollbackError, which names that error only in its message."""
    if backend != "postgres":
        pytest.skip("PostgreSQL's read-only transactions")
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            session.execute(text("SET TRANSACTION READ ONLY"))
            session.add(institution())
            with pytest.raises(Exception) as first:
                session.flush()
            assert database_unavailable(first.value)
            with pytest.raises(PendingRollbackError) as again:
                session.execute(text("SELECT 1"))
            assert "ReadOnlySqlTransaction" in str(again.value)
            assert database_unavailable(again.value)
    finally:
        engine.dispose()


def test_a_session_used_again_after_a_bug_of_its_own_is_not(database_url):
    """The same PendingRollbackError after a client's or the register's own error (a duplicate key) is no
    database outage: a 500, not a 503 that would invite the same request again."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            first = institution()
            session.add(first)
            session.flush()
            session.add(Institution(**{**first.model_dump(), "id": str(uuid.uuid4())}))  # the same token hash
            with pytest.raises(IntegrityError):
                session.flush()
            with pytest.raises(PendingRollbackError) as again:
                session.execute(text("SELECT 1"))
            assert not database_unavailable(again.value)
            session.rollback()
    finally:
        engine.dispose()


def test_a_database_error_behind_another_errors_cause_is_found():
    """Raised `from` something else while an unavailable database's error was being handled: the database's
    error is the request's context, not its cause, and still makes the answer a 503."""
    try:
        try:
            raise OperationalError("INSERT", {}, psycopg.OperationalError("server closed the connection"))
        except OperationalError:
            raise RuntimeError("could not finish the answer") from KeyError("receipt")
    except RuntimeError as exc:
        outer = exc
    assert outer.__cause__ is not None and isinstance(outer.__context__, OperationalError)
    assert database_unavailable(outer)


def test_a_long_chain_is_followed_to_its_end():
    """Handlers that each raise while handling the last (retries, clean-ups) make a long chain."""
    exc: BaseException = psycopg.OperationalError("the primary is gone")
    for i in range(20):
        new = ValueError(i)
        new.__context__ = exc
        exc = new
    assert database_unavailable(exc)


def test_a_bug_is_not():
    try:
        try:
            {}["missing"]
        except KeyError as exc:
            raise ValueError("a bug") from exc
    except ValueError as exc:
        assert not database_unavailable(exc)
    assert not database_unavailable(ExceptionGroup("group", [ValueError("a"), TypeError("b")]))
    assert database_unavailable(ExceptionGroup("group", [ValueError("a"), psycopg.OperationalError("b")]))


def test_the_lender_lane_and_the_api_count_the_same_database_errors_as_unavailable():
    """The lane (asyncpg) and every other route (psycopg) answer a database error the same way: for every
    SQLSTATE asyncpg knows, its error is 503 on the lane exactly when psycopg's error of that SQLSTATE is 503
    through the API. Both read one list (register.unavailable); two copies of it once drifted apart."""
    import inspect

    import asyncpg

    from register.storage.dialects.postgres_exposure import _unavailable

    checked, unavailable = 0, set()
    for _, cls in inspect.getmembers(asyncpg.exceptions, inspect.isclass):
        state = getattr(cls, "sqlstate", None)
        if not state or not issubclass(cls, asyncpg.PostgresError):
            continue
        lane = _unavailable(cls("refused"))
        api = database_unavailable(psycopg.errors.lookup(state)("refused"))
        assert lane == api, (cls.__name__, state, lane, api)
        checked += 1
        if lane:
            unavailable.add(state)
    assert checked > 200
    assert {"08006", "57014", "53300", "25006", "57P01"} <= unavailable  # connection, cancelled, too many, read-only, shutdown
    assert not {"23505", "42P01", "22P02", "42501"} & unavailable  # unique, no table, bad input, no privilege
