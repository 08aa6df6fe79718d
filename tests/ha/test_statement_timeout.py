"""A database that holds a statement (a lock never released, a server frozen with its connections open)
is bounded by REGISTER_DB_STATEMENT_TIMEOUT_SECONDS: the server cancels the statement and the request is
answered 503 `database_unavailable` with Retry-After, never a 500 and never a hang (SPEC.md, "Many
machines"). PostgreSQL only: SQLite has no statement timeout (its writers queue at the writer gate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from register.config import Settings
from register.crypto.keys import StaticKeys
from register.storage.db import make_engine, postgres_connect_args
from tests.conftest import ADMIN_TOKEN, fresh_app

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class TestStatementTimeout:
    def test_a_statement_held_behind_a_lock_past_the_timeout_is_answered_503(
            self, backend: str, tmp_path: Path, data_dir: Path, keys: StaticKeys):
        if backend != "postgres":
            pytest.skip("PostgreSQL's statement_timeout")
        with fresh_app(backend, tmp_path, data_dir, keys, db_statement_timeout_seconds=1) as app, \
                TestClient(app, raise_server_exceptions=False) as client:
            assert client.post("/v1/institutions", json={"name": "Before", "role": "lender"},
                               headers=ADMIN).status_code == 201
            holder = make_engine(app.state.register.settings.resolved_database_url, pool_size=1)
            try:
                with holder.connect() as conn:  # a transaction that never lets go of the table
                    conn.execute(text("LOCK TABLE institutions IN ACCESS EXCLUSIVE MODE"))
                    r = client.post("/v1/institutions", json={"name": "Held", "role": "lender"}, headers=ADMIN)
                    assert r.status_code == 503, r.text
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert r.json()["code"] == "database_unavailable" and int(r.headers["retry-after"]) > 0
                    conn.rollback()
            finally:
                holder.dispose()
            r = client.post("/v1/institutions", json={"name": "After", "role": "lender"}, headers=ADMIN)
            assert r.status_code == 201, r.text  # the lock gone, the same server answers again

    def test_the_timeout_is_on_by_default_and_the_url_may_set_its_own(self):
        assert Settings().db_statement_timeout_seconds == 30
        url = "postgresql+psycopg://u@h/db"
        assert postgres_connect_args(url, statement_timeout=30)["options"] == "-c statement_timeout=30000"
        assert "options" not in postgres_connect_args(url)  # migrations and the operator's commands: none
        assert "options" not in postgres_connect_args(url + "?options=-c%20statement_timeout%3D0",
                                                      statement_timeout=30)
