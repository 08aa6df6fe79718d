"""A PostgreSQL that is down or restarting: every request is answered 503 `database_unavailable` with
Retry-After, at once (never a 500, never a hang, never a closed connection), and once the database is back
the same server answers again without a restart. The database is one the test starts and stops itself."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from register.storage.migrate import upgrade
from tests import server
from tests.factories import consumer_headers, national_id, obligation_body
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
