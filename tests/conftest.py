"""Fixtures. Every storage-touching test runs twice: on SQLite and on PostgreSQL.

Each run creates its own PostgreSQL database (and drops it at the end), so runs never see each other's
data. Where PostgreSQL is unreachable the PostgreSQL half is skipped with a message, unless `CI` is set:
then it fails, because CI must prove both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from register.config import Settings
from register.crypto.keys import StaticKeys
from register.main import create_app
from register.storage.integrity import dangling
from register.storage.migrate import upgrade
from register.storage.types import utcnow
from tests.factories import Inst, make_institution

PG_URL = os.environ.get("REGISTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "test-admin-token-" + uuid.uuid4().hex
BACKENDS = ["sqlite", "postgres"]


def _pg_unavailable(reason: str) -> None:
    message = f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} is unreachable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


def create_pg_database() -> str:
    """A new, empty PostgreSQL database for this run; returns its URL."""
    name = f"register_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        _pg_unavailable(str(exc).splitlines()[0])
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def assert_nothing_dangles(url: str) -> None:
    """Every reference the database no longer checks (storage.integrity) holds: run when a database that
    tests wrote, reported into and deleted from is done with."""
    engine = create_engine(url)
    try:
        with Session(engine) as s:
            found = dangling(s)
    finally:
        engine.dispose()
    assert not any(found.values()), f"rows name what is gone: {found}"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'register.db'}"
        upgrade(url)
        yield url
        assert_nothing_dangles(url)
        return
    url = create_pg_database()
    try:
        upgrade(url)
        yield url
        assert_nothing_dangles(url)
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="session")
def keys() -> StaticKeys:
    return StaticKeys.generate()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def make_settings(database_url: str, data_dir: Path, **overrides) -> Settings:
    """Test settings. The log integrator and report worker threads are off: tests run them explicitly,
    so they are deterministic."""
    overrides.setdefault("log_integrator", False)
    overrides.setdefault("report_worker", False)
    overrides.setdefault("notices", False)
    overrides.setdefault("dispatcher", False)
    return Settings(database_url=database_url, data_dir=data_dir, admin_token=ADMIN_TOKEN, **overrides)


@contextmanager
def fresh_app(backend: str, tmp_path: Path, data_dir: Path, keys: StaticKeys, **overrides) -> Iterator[FastAPI]:
    """An app on an empty database of its own, for tests whose figures span the whole register (a
    retention run, the public statistics): counts are exact only where nothing else lives."""
    url = f"sqlite:///{tmp_path / 'register.db'}" if backend == "sqlite" else create_pg_database()
    try:
        upgrade(url)
        overrides.setdefault("retention_job", False)
        application = create_app(make_settings(url, data_dir, **overrides), keys=keys)
        try:
            yield application
            assert_nothing_dangles(url)
        finally:
            application.state.register.engine.dispose()
    finally:
        if backend == "postgres":
            drop_pg_database(url)


@pytest.fixture(scope="session")
def app(database_url: str, data_dir: Path, keys: StaticKeys) -> Iterator[FastAPI]:
    application = create_app(make_settings(database_url, data_dir), keys=keys)
    yield application
    application.state.register.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def lender(client: TestClient, admin_headers: dict[str, str]) -> Inst:
    """A fresh lender per test (its own objects, so tests never see each other's)."""
    return make_institution(client, admin_headers, "lender")


@pytest.fixture
def regulator(client: TestClient, admin_headers: dict[str, str]) -> Inst:
    return make_institution(client, admin_headers, "regulator")


class Clock:
    """The app's one clock, moved by hand: deadlines, idle sessions and a lifted ban pass without waiting."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Clock]:
    """Put a hand-moved clock in the app for one test; the real one is back afterwards."""
    state = app.state.register
    before, state.clock = state.clock, Clock()
    try:
        yield state.clock
    finally:
        state.clock = before
