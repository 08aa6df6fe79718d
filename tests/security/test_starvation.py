"""One institution must not be able to starve everyone else (SPEC section 8, "Starvation").

The attack as it was found: uploads to POST /v1/reports (and ordinary requests) that announce a body
and then send a few bytes. Before the fix each held a database connection while it waited, so twenty of
them emptied the pool and every other institution's request waited 30 s and got 500. Here a real server
(`register serve`, its default pool of 10 + 10 connections) is attacked with more slow uploads and slow
requests than the pool has connections, on both databases; meanwhile another lender, a person, a
regulator and /healthz must be answered correctly, the attacker's excess is refused with 429
`concurrency_limited`, and its slow requests end with 408 once the body deadline passes, freeing the
upload's Idempotency-Key.
"""

from __future__ import annotations

import json
import select as io
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from register.services.reports import ReportWorker
from register.storage.models import Report, ReportChunk
from register.storage.types import utcnow

from tests import server
from tests.conftest import drop_pg_database
from tests.factories import consumer_headers, national_id, new_ref, obligation_body

BODY_TIMEOUT = 8  # long enough for the others' requests below to finish first on a slow machine
SETTINGS = {
    "REGISTER_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    "REGISTER_HEADER_TIMEOUT_SECONDS": "2",
    "REGISTER_INSTITUTION_MAX_REQUESTS": "4",
    "REGISTER_INSTITUTION_MAX_UPLOADS": "2",
    "REGISTER_ACCEPT_TEST_IDENTITIES": "true",
}
# Others' requests must answer, correctly, long before the pool's 30 s wait that starved them before
# the fix; the bound is the client's timeout (never a timing assertion on a shared machine).
ANSWER_WITHIN = 5.0


@pytest.fixture(params=["sqlite", "postgres"])
def running(request, tmp_path: Path):
    url = server.fresh_database(request.param, tmp_path)
    port = server.free_port()
    proc = server.start(url, tmp_path, port, **SETTINGS)
    try:
        yield f"http://127.0.0.1:{port}", port, tmp_path
    finally:
        server.kill(proc)
        if request.param == "postgres":
            drop_pg_database(url)


def institution(base: str, role: str) -> dict[str, str]:
    r = httpx.post(f"{base}/v1/institutions", json={"name": f"{role} {new_ref()}", "role": role},
                   headers=server.ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def slow_request(port: int, method: str, path: str, headers: dict[str, str], declared: int,
                 first: bytes) -> socket.socket:
    """Send the headers and the first bytes of a body that announces `declared` bytes; send no more."""
    sock = socket.create_connection(("127.0.0.1", port))
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {declared}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode() + first)
    return sock


def answer(sock: socket.socket, wait: float) -> tuple[int, dict] | None:
    """The (status, problem body) the server sent on this connection within `wait` seconds, or None."""
    ready, _, _ = io.select([sock], [], [], wait)
    if not ready:
        return None
    data = b""
    sock.settimeout(2)
    try:
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else {}


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed this connection (one more byte sent finds it closed)."""
    try:
        sock.sendall(b"x")
        ready, _, _ = io.select([sock], [], [], 10)
        return bool(ready) and sock.recv(100) == b""
    except (BrokenPipeError, ConnectionResetError):
        return True


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


class TestSlowClientsStarveNoOne:
    def test_others_are_answered_while_one_institution_trickles_more_requests_than_the_pool_has(self, running):
        base, port, data_dir = running
        attacker, honest, regulator = institution(base, "lender"), institution(base, "lender"), \
            institution(base, "regulator")
        person = national_id()
        person_headers = consumer_headers(data_dir, "SE", person)
        upload_headers = {**attacker, "Content-Type": "application/x-ndjson"}

        uploads = [slow_request(port, "POST", "/v1/reports", {**upload_headers, "Idempotency-Key": f"slow-{i}"},
                                10_000_000, b'{"external_ref": "X') for i in range(22)]
        time.sleep(0.3)  # let the first uploads take their slots before the requests
        puts = [slow_request(port, "PUT", f"/v1/obligations/{new_ref()}", {**attacker,
                             "Content-Type": "application/json"}, 900, b'{"kind": ') for _ in range(4)]
        slow = uploads + puts  # 26 slow requests against 20 database connections
        time.sleep(0.5)

        with httpx.Client(base_url=base, timeout=ANSWER_WITHIN) as c:
            ref = new_ref()
            body = obligation_body(debtors=[{"country": "SE", "national_id": person, "role": "primary"}])
            assert c.put(f"/v1/obligations/{ref}", json=body, headers=honest).status_code == 201
            listed = c.get("/v1/obligations", headers=honest).json()["items"]
            assert [o["external_ref"] for o in listed] == [ref]
            mine = c.get("/v1/me/obligations", headers=person_headers)
            assert mine.status_code == 200 and mine.json()["obligations"][0]["balance"] == body["balance"]
            assert c.get("/v1/audit/events", headers=regulator).status_code == 200
            assert c.get("/healthz").status_code == 200
            small = c.post("/v1/reports", headers={**honest, "Content-Type": "application/x-ndjson"},
                           content=json.dumps({**body, "external_ref": new_ref()}) + "\n")
            assert small.status_code == 202, small.text

        # The attacker's excess was refused at once: 2 uploads and 4 requests in all hold a slot.
        first = {s: answer(s, 0.2) for s in slow}
        refused = [a for a in first.values() if a is not None]
        assert len(refused) == len(slow) - 4
        assert {(status, doc["code"]) for status, doc in refused} == {(429, "concurrency_limited")}

        # The four it may hold end at the body deadline with 408, and nothing of them is kept.
        held_sockets = [s for s, a in first.items() if a is None]
        held = [answer(s, BODY_TIMEOUT + 10) for s in held_sockets]
        timed_out = [a for a in held if a is not None and a[0] == 408]
        for s in held_sockets:  # the rest of a timed-out body is never read: the server closes the connection
            assert closed_by_server(s)
        assert len(timed_out) == 4 and {doc["code"] for _, doc in timed_out} == {"request_timeout"}
        for s in slow:
            s.close()
        with httpx.Client(base_url=base, timeout=ANSWER_WITHIN) as c:
            assert [o["external_ref"] for o in c.get("/v1/obligations", headers=attacker).json()["items"]] == []
            # An upload that timed out freed its Idempotency-Key: the same key now takes a whole file.
            line = json.dumps({**obligation_body(), "external_ref": new_ref()}) + "\n"
            again = [c.post("/v1/reports", content=line, headers={**upload_headers, "Idempotency-Key": f"slow-{i}"})
                     for i in range(2)]
            assert [r.status_code for r in again] == [202, 202]

    def test_headers_that_do_not_arrive_in_time_get_408_and_the_connection_closes(self, running):
        base, port, _ = running
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        got = answer(sock, 10)
        assert got is not None and got[0] == 408
        assert sock.recv(100) == b""  # closed
        sock.close()
        assert httpx.get(f"{base}/healthz").status_code == 200

    def test_a_kept_alive_connection_that_goes_quiet_is_closed(self, running):
        base, port, _ = running
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = answer(sock, 5)
        assert got is not None and got[0] == 200
        ready, _, _ = io.select([sock], [], [], 15)  # keep-alive is 5 s by default
        assert ready and sock.recv(100) == b""
        sock.close()


def receiving_upload(app, institution_id: str, key: str, *, idle_for: timedelta) -> str:
    """An upload left half-received (as a killed server leaves it): one chunk stored, no last step."""
    report_id = str(uuid.uuid4())
    then = utcnow() - idle_for
    with app.state.register.sessions.begin() as s:
        s.add(Report(id=report_id, institution_id=institution_id, status="receiving", mode="delta", format="ndjson",
                     idempotency_key=key, body_sha256="", body_bytes=0, chunks=0, received_at=then,
                     heartbeat_at=then))
        s.flush()
        s.add(ReportChunk(report_id=report_id, idx=0, data=b"sealed"))
    return report_id


def stored(app, report_id: str) -> tuple[str, str | None, int]:
    with app.state.register.sessions() as s:
        report = s.get(Report, report_id)
        chunks = s.execute(select(func.count()).select_from(ReportChunk)
                           .where(ReportChunk.report_id == report_id)).scalar_one()
        return report.status, report.idempotency_key, chunks


class TestAbandonedUploads:
    LINE = json.dumps({**obligation_body(), "external_ref": "ABANDON-1"}) + "\n"

    def post(self, client, lender, key: str):
        return client.post("/v1/reports", content=self.LINE,
                           headers={**lender.headers, "Content-Type": "application/x-ndjson", "Idempotency-Key": key})

    def test_an_abandoned_upload_frees_its_key_for_the_next_upload(self, app, client, lender):
        old = receiving_upload(app, lender.id, "day-1", idle_for=timedelta(hours=1))
        r = self.post(client, lender, "day-1")
        assert r.status_code == 202 and r.json()["id"] != old
        assert stored(app, old) == ("expired", None, 0)
        assert client.get(f"/v1/reports/{old}", headers=lender.headers).json()["status"] == "expired"

    def test_a_resent_upload_replaces_one_still_receiving_under_its_key(self, app, client, lender):
        # A server killed mid-upload leaves the upload `receiving`; the client sends it again with its key.
        cut_off = receiving_upload(app, lender.id, "day-2", idle_for=timedelta(seconds=1))
        r = self.post(client, lender, "day-2")
        assert r.status_code == 202 and r.json()["id"] != cut_off
        assert stored(app, cut_off) == ("expired", None, 0)
        again = self.post(client, lender, "day-2")  # and a repeat of the finished one is the same report
        assert again.status_code == 200 and again.json()["id"] == r.json()["id"]

    def test_the_report_worker_expires_what_a_dead_server_left(self, app, lender):
        state = app.state.register
        old = receiving_upload(app, lender.id, "day-3", idle_for=timedelta(minutes=10))
        recent = receiving_upload(app, lender.id, "day-4", idle_for=timedelta(seconds=1))
        ReportWorker(state.sessions, state.cipher, allow_test=False, upload_idle=timedelta(minutes=5)).run_pending()
        assert stored(app, old) == ("expired", None, 0)
        assert stored(app, recent) == ("receiving", "day-4", 1)
