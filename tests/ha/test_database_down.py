"""A PostgreSQL that is down or restarting: every request is answered 503 `database_unavailable` with
Retry-After, at once (never a 500, never a hang, never a closed connection), and once the database is back
the same server answers again without a restart. The database is one the test starts and stops itself."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from register.storage.migrate import upgrade
from tests import server
from tests.factories import consumer_headers, in_days, national_id, obligation_body
from tests.ha.postgres import OwnPostgres, own_postgres

# The bound SPEC.md states for an answer while the database is away: connect_timeout (3 s) per host and
# the pool's wait (5 s), well inside this.
BOUND = 30.0
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def register() -> Iterator[tuple[OwnPostgres, str, Path]]:
    with own_postgres(server.free_port()) as pg:
        upgrade(pg.url)
        data_dir = Path(tempfile.mkdtemp(prefix="register-down-"))
        port = server.free_port()
        proc = server.start(pg.url, data_dir, port, REGISTER_ACCEPT_TEST_IDENTITIES="true")
        try:
            yield pg, f"http://127.0.0.1:{port}", data_dir
        finally:
            server.kill(proc)
            shutil.rmtree(data_dir, ignore_errors=True)


def calls(base: str, data_dir: Path) -> list[tuple[dict[str, str], str, str, dict | None]]:
    lender = httpx.post(f"{base}/v1/institutions", headers=server.ADMIN,
                        json={"name": f"L {uuid.uuid4().hex[:6]}", "role": "lender"}).json()
    regulator = httpx.post(f"{base}/v1/institutions", headers=server.ADMIN,
                           json={"name": f"R {uuid.uuid4().hex[:6]}", "role": "regulator"}).json()
    lh, rh = {"Authorization": f"Bearer {lender['token']}"}, {"Authorization": f"Bearer {regulator['token']}"}
    nid = national_id()
    person = consumer_headers(data_dir, "SE", nid)
    body = obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}])
    assert httpx.put(f"{base}/v1/obligations/FIRST", headers=lh, json=body).status_code == 201
    return [
        (lh, "GET", "/v1/obligations", None),
        (lh, "PUT", "/v1/obligations/SECOND", body),
        (lh, "POST", "/v1/exposure", {"country": "SE", "national_id": nid, "purpose": "credit_application",
                                      "consent_id": str(uuid.uuid4())}),
        (person, "GET", "/v1/me/obligations", None),
        (person, "GET", "/v1/me/credit-ban", None),
        (person, "GET", "/v1/me/access-log", None),
        (rh, "GET", "/v1/audit/checkpoint", None),
        (rh, "GET", "/v1/audit/events", None),
        (server.ADMIN, "GET", "/v1/institutions", None),
        ({**lh, "Content-Type": "application/x-ndjson", "Idempotency-Key": uuid.uuid4().hex}, "POST", "/v1/reports",
         (json.dumps({**body, "external_ref": "THIRD"}) + "\n").encode()),
    ]


def send(base: str, headers: dict[str, str], method: str, path: str, body: dict | bytes | None) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.request(method, base + path, headers=headers, content=body, timeout=BOUND)
    return httpx.request(method, base + path, headers=headers, json=body, timeout=BOUND)


def signed_in(base: str, nid: str) -> httpx.Client:
    """A browser signed in to the person's pages through the development sign-in form."""
    browser = httpx.Client(base_url=base, timeout=BOUND)
    page = browser.get("/app/sign-in")
    r = browser.post("/app/sign-in", data={"csrf": CSRF.search(page.text).group(1), "person": "typed",
                                           "country": "SE", "national_id": nid, "next": "/app/"})
    assert r.status_code == 303 and browser.get("/app/").status_code == 200, r.text
    return browser


class TestADatabaseThatIsDown:
    def test_the_persons_pages_answer_503_and_then_work_again(self, register):
        pg, base, _data_dir = register
        browser = signed_in(base, national_id())
        try:
            pg.stop()
            try:
                for _ in range(2):
                    answer = browser.get("/app/")
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["retry-after"]
            finally:
                pg.start()
            assert browser.get("/app/").status_code == 200
        finally:
            browser.close()

    def test_every_request_is_503_with_retry_after_and_the_server_recovers_by_itself(self, register):
        pg, base, data_dir = register
        requests = calls(base, data_dir)
        assert all(send(base, *r).status_code < 500 for r in requests)  # the pool holds live connections
        pg.stop()
        try:
            for r in requests * 2:  # first on the pool's dead connections, then on new ones refused
                answer = send(base, *r)
                assert answer.status_code == 503, (r[1], r[2], answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["code"] == "database_unavailable"
                assert int(answer.headers["retry-after"]) >= 1
            assert httpx.get(f"{base}/healthz").status_code == 503
        finally:
            pg.start()
        for r in requests:
            assert send(base, *r).status_code < 500, r
        assert httpx.get(f"{base}/healthz").status_code == 200


class TestADatabaseThatTurnsReadOnly:
    """What the register meets when its database stops taking writes while still answering: a primary
    being demoted, or a multi-host URL whose members are all standbys for the seconds of a failover. A
    write is refused 503 `database_unavailable` (the same request may be sent again), on the thread's
    connections and on the event loop's lender lane alike, never a 500."""

    @staticmethod
    def read_only(pg: OwnPostgres, on: bool) -> None:
        with psycopg.connect(pg.url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}")
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # the backends take the reload at their next command

    @staticmethod
    def writes(base: str, data_dir: Path) -> list[tuple[dict[str, str], str, str, dict | bytes | None]]:
        """Requests that write, each answered (< 500) once while the database takes writes: the server's
        pools then hold connections made before it turned read-only."""
        lender = httpx.post(f"{base}/v1/institutions", headers=server.ADMIN,
                            json={"name": f"L {uuid.uuid4().hex[:6]}", "role": "lender"}).json()
        lh = {"Authorization": f"Bearer {lender['token']}"}
        nid = national_id()
        person = consumer_headers(data_dir, "SE", nid)
        body = obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}])
        assert httpx.put(f"{base}/v1/obligations/RO-1", headers=lh, json=body).status_code == 201
        consent = httpx.post(f"{base}/v1/consents", headers=person, json={
            "institution_id": lender["id"], "purpose": "credit_application", "expires_at": in_days(30)}).json()["id"]
        question = {"country": "SE", "national_id": nid, "purpose": "credit_application", "consent_id": consent}
        assert httpx.post(f"{base}/v1/exposure", headers=lh, json=question).status_code == 200  # the lane's
        return [
            (lh, "PUT", "/v1/obligations/RO-2", body),
            (lh, "POST", "/v1/exposure", question),  # granted: the lane's write of its event and answer
            (lh, "POST", "/v1/exposure", {**question, "consent_id": str(uuid.uuid4())}),  # a refusal, logged
            (person, "POST", "/v1/consents", {"institution_id": lender["id"], "purpose": "credit_application",
                                              "expires_at": in_days(30)}),
            (person, "PUT", "/v1/me/credit-ban", {"reason": "self_control"}),
            ({**lh, "Content-Type": "application/x-ndjson", "Idempotency-Key": uuid.uuid4().hex}, "POST",
             "/v1/reports", (json.dumps({**body, "external_ref": "RO-3"}) + "\n").encode()),
        ]

    def test_writes_are_503_while_the_database_is_read_only(self, register):
        pg, base, data_dir = register
        writes = self.writes(base, data_dir)
        lh, person = writes[0][0], writes[3][0]
        self.read_only(pg, True)
        try:
            for r in writes * 2:  # on the connections made before, then on others
                answer = send(base, *r)
                assert answer.status_code == 503, (r[1], r[2], answer.text)
                assert answer.json()["code"] == "database_unavailable" and int(answer.headers["retry-after"]) >= 1
            for headers, path in ((lh, "/v1/obligations"), (person, "/v1/me/obligations")):
                # a read the register logs (who looked) waits for its log as a write does
                assert send(base, headers, "GET", path, None).status_code in (200, 503), path
        finally:
            self.read_only(pg, False)
        for r in writes[:2]:
            assert send(base, *r).status_code in (200, 201), r[2]
        assert server.server_errors(data_dir) == []

    def test_a_url_asking_for_the_primary_finds_none_and_answers_503(self, register):
        """`target_session_attrs=read-write` (a multi-host URL's): while no host takes writes, no connection
        is made, by libpq (the engine's) or asyncpg (the lender lane's), and each write is answered 503."""
        pg, _base, data_dir = register  # a second server on the same database, with its keys
        port = server.free_port()
        proc = server.start(f"{pg.url}?target_session_attrs=read-write", data_dir, port,
                            REGISTER_ACCEPT_TEST_IDENTITIES="true")
        base = f"http://127.0.0.1:{port}"
        try:
            writes = self.writes(base, data_dir)
            self.read_only(pg, True)
            try:
                for r in writes * 3:  # the lane's connection fails its write, and no new one is made
                    answer = send(base, *r)
                    assert answer.status_code == 503, (r[1], r[2], answer.text)
                    assert answer.json()["code"] == "database_unavailable"
            finally:
                self.read_only(pg, False)
            assert send(base, *writes[1]).status_code == 200
            assert server.server_errors(data_dir) == []
        finally:
            server.kill(proc)
