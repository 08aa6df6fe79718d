"""A real server, killed with SIGKILL in the middle of a batch report, restarts and finishes the report;
no line it had counted as accepted is lost, none is applied twice. On both databases."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from register.storage.migrate import upgrade
from tests import server
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database
from tests.factories import national_id, obligation_body

LINES = 50_000


def start(url: str, data_dir: Path, port: int):
    return server.start(url, data_dir, port, REGISTER_REPORT_STALE_SECONDS="2")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'crash.db'}" if request.param == "sqlite" else create_pg_database()
    upgrade(url)
    yield url
    if request.param == "postgres":
        drop_pg_database(url)


def test_killed_in_the_middle_of_a_report(database, tmp_path):
    port = server.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(database, tmp_path, port)
    try:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        token = httpx.post(f"{base}/v1/institutions", json={"name": "Crash Bank", "role": "lender"},
                           headers=admin).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        people = [national_id() for _ in range(500)]
        body = "".join(
            json.dumps({**obligation_body(debtors=[{"country": "SE", "national_id": people[i % 500], "role": "primary"}],
                                          balance=i), "external_ref": f"C-{i}"}) + "\n"
            for i in range(LINES))
        r = httpx.post(f"{base}/v1/reports", content=body.encode(), timeout=120,
                       headers={**auth, "Content-Type": "application/x-ndjson", "Idempotency-Key": "crash-1"})
        assert r.status_code == 202, r.text
        rid = r.json()["id"]
        # Wait until some, but not all, of it is committed; then kill the server without warning.
        deadline = time.time() + 120
        while time.time() < deadline:
            doc = httpx.get(f"{base}/v1/reports/{rid}", headers=auth).json()
            if 0 < doc["lines_read"] < LINES:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"never caught the report mid-way: {doc}")
        server.kill(proc)
        seen_accepted = doc["accepted"]

        engine = create_engine(database)
        with engine.connect() as conn:
            status, committed = conn.execute(text("SELECT status, lines_read FROM reports WHERE id = :i"),
                                             {"i": rid}).one()
            stored = conn.execute(text("SELECT count(*) FROM obligations")).scalar()
        assert status == "processing" and committed >= seen_accepted and stored >= seen_accepted
        # Lines up to the committed mark are all there: the acknowledged progress was not a lie.
        with engine.connect() as conn:
            present = conn.execute(text("SELECT count(*) FROM obligations WHERE version = 1")).scalar()
        assert present == committed

        proc = start(database, tmp_path, port)
        # A re-sent upload after the crash is recognised, not applied twice.
        again = httpx.post(f"{base}/v1/reports", content=body.encode(), timeout=120,
                           headers={**auth, "Content-Type": "application/x-ndjson", "Idempotency-Key": "crash-1"})
        assert again.status_code == 200 and again.json()["id"] == rid
        deadline = time.time() + 300
        while time.time() < deadline:
            doc = httpx.get(f"{base}/v1/reports/{rid}", headers=auth).json()
            if doc["status"] in ("done", "failed"):
                break
            time.sleep(0.2)
        assert doc["status"] == "done", doc
        assert (doc["lines_read"], doc["accepted"], doc["rejected"]) == (LINES, LINES, 0)
        with engine.connect() as conn:
            count, versions, max_version = conn.execute(text(
                "SELECT count(*), (SELECT count(*) FROM obligation_versions), max(version) FROM obligations")).one()
            balances = conn.execute(text("SELECT count(*) FROM obligations WHERE balance = "
                                         "CAST(substr(external_ref, 3) AS INTEGER)")).scalar()
        engine.dispose()
        assert count == LINES and versions == LINES and max_version == 1  # nothing lost, nothing twice
        assert balances == LINES
    finally:
        proc.kill()
        proc.wait()
