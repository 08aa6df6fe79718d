"""Concurrent updates of one obligation, against the real server on loopback (SQLite's write lock and
PostgreSQL's row locks are what is tested, so not in-process): `If-Match` refuses a stale ETag with 412,
and two clients racing 1,000 conflicting updates lose none. On both databases."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests import server
from tests.conftest import BACKENDS, drop_pg_database
from tests.factories import national_id, obligation_body

UPDATES_PER_CLIENT = 500
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def as_of(n: int) -> str:
    return (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


@dataclass
class Served:
    url: str
    database_url: str
    auth: dict[str, str]


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp(f"races-{request.param}")
    database_url = server.fresh_database(request.param, tmp_path)
    port = server.free_port()
    proc = server.start(database_url, tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/v1/institutions", json={"name": "Race Bank", "role": "lender"},
                           headers=server.ADMIN).json()["token"]
        yield Served(base, database_url, {"Authorization": f"Bearer {token}"})
    finally:
        server.kill(proc)
        if request.param == "postgres":
            drop_pg_database(database_url)


class TestIfMatch:
    def test_a_stale_etag_is_412_and_changes_nothing(self, served: Served):
        body = obligation_body(as_of=as_of(0))
        with httpx.Client(base_url=served.url, headers=served.auth) as c:
            first = c.put("/v1/obligations/IM-1", json=body)
            assert first.status_code == 201
            second = c.put("/v1/obligations/IM-1", json={**body, "balance": 1, "as_of": as_of(1)},
                           headers={"If-Match": first.headers["ETag"]})
            assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
            stale = c.put("/v1/obligations/IM-1", json={**body, "balance": 2, "as_of": as_of(2)},
                          headers={"If-Match": first.headers["ETag"]})
            assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
            retract = c.request("DELETE", "/v1/obligations/IM-1", params={"reason": "test"},
                                headers={"If-Match": first.headers["ETag"]})
            assert retract.status_code == 412
            now = c.get("/v1/obligations/IM-1")
            assert now.json()["balance"] == 1 and now.headers["ETag"] == second.headers["ETag"]
            assert len(c.get("/v1/obligations/IM-1/versions").json()["versions"]) == 2

    def test_if_match_on_a_missing_obligation_is_412(self, served: Served):
        r = httpx.put(f"{served.url}/v1/obligations/IM-none", json=obligation_body(), headers={
            **served.auth, "If-Match": '"00000000-0000-0000-0000-000000000000.1"'})
        assert r.status_code == 412


@dataclass(frozen=True)
class Sent:
    n: int  # as_of = T0 + n seconds, balance = n
    if_match: bool
    status: int
    code: str | None
    version: int | None


def race(url: str, auth: dict[str, str], ref: str, debtors: list[dict], client: int, out: list[Sent],
         start: threading.Barrier) -> None:
    """Client 0 sends the odd seconds, client 1 the even ones, so each often sends a state older than the
    other's last. Every third update carries the ETag of this client's last accepted one."""
    etag = None
    with httpx.Client(base_url=url, headers=auth, timeout=120) as c:
        start.wait()
        for i in range(UPDATES_PER_CLIENT):
            n = 2 * i + client + 1
            headers = {"If-Match": etag} if etag and i % 3 == 1 and i < UPDATES_PER_CLIENT - 1 else {}
            r = c.put(f"/v1/obligations/{ref}", headers=headers,
                      json=obligation_body(debtors=debtors, balance=n, as_of=as_of(n)))
            doc = r.json()
            out.append(Sent(n, bool(headers), r.status_code, doc.get("code"), doc.get("version")))
            if r.status_code == 200:
                etag = r.headers["ETag"]


def test_two_clients_racing_1000_conflicting_updates_lose_none(served: Served):
    ref = "RACE-1"
    debtors = [{"country": "SE", "national_id": national_id(), "role": "primary"}]
    created = httpx.put(f"{served.url}/v1/obligations/{ref}", headers=served.auth,
                        json=obligation_body(debtors=debtors, balance=0, as_of=as_of(0)))
    assert created.status_code == 201
    results: list[list[Sent]] = [[], []]
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=race, args=(served.url, served.auth, ref, debtors, k, results[k], barrier))
               for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = results[0] + results[1]
    assert len(sent) == 2 * UPDATES_PER_CLIENT  # a thread that died (a transport error) sent fewer
    print("race outcomes:", Counter((s.status, s.if_match) for s in sent))

    outcomes = {(s.status, s.code) for s in sent}
    assert outcomes <= {(200, None), (409, "stale_update"), (412, "precondition_failed")}, outcomes
    assert all(s.if_match for s in sent if s.status == 412)
    accepted = sorted((s for s in sent if s.status == 200), key=lambda s: s.n)

    with httpx.Client(base_url=served.url, headers=served.auth) as c:
        final = c.get(f"/v1/obligations/{ref}").json()
        history = c.get(f"/v1/obligations/{ref}/versions").json()["versions"]
    newest = max(s.n for s in sent)  # sent without If-Match, so nothing can have refused it
    assert parse(final["as_of"]) == parse(as_of(newest))
    assert final["balance"] == newest and final["version"] == len(history)

    # The history: one version per accepted update (plus the creation), dense, as_of rising.
    assert [v["version"] for v in history] == list(range(1, len(history) + 1))
    stamps = [parse(v["as_of"]) for v in history]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len(history) == 1 + len(accepted), "an update was lost, or one nobody saw accepted was kept"
    recorded = {(v["version"], v["state"]["balance"]) for v in history}
    assert {(s.version, s.n) for s in accepted} <= recorded
    # Accepted means newer than everything accepted before it: versions follow as_of.
    assert [s.version for s in accepted] == sorted(s.version for s in accepted)

    engine = create_engine(served.database_url)
    with engine.connect() as conn:
        details = conn.execute(text("SELECT details FROM access_events WHERE action = 'obligation:updated'")).scalars()
        events = sum(1 for d in details if (d if isinstance(d, dict) else json.loads(d))["external_ref"] == ref)
    engine.dispose()
    assert events == len(accepted)  # one access event per accepted change, none for a refused one


def test_two_clients_racing_first_reports_create_each_once(served: Served):
    """SPEC §6: concurrent first reports of one ref (and of one new person) meet in a savepoint; the loser
    proceeds as an update. Each ref is created once, by one of the two, and keeps the newer state."""
    refs = [f"FIRST-{i}" for i in range(40)]
    people = {ref: [{"country": "SE", "national_id": national_id(), "role": "primary"}] for ref in refs}
    results: list[list[tuple[str, int, int]]] = [[], []]
    barrier = threading.Barrier(2)

    def first_reports(client: int) -> None:
        with httpx.Client(base_url=served.url, headers=served.auth, timeout=120) as c:
            barrier.wait()
            for ref in refs:
                n = 1 + client  # client 1's state is newer
                r = c.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=people[ref], balance=n, as_of=as_of(n)))
                results[client].append((ref, n, r.status_code))

    threads = [threading.Thread(target=first_reports, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results[0]) == len(results[1]) == len(refs)
    with httpx.Client(base_url=served.url, headers=served.auth) as c:
        for ref in refs:
            codes = sorted(status for r, _, status in results[0] + results[1] if r == ref)
            assert codes in ([200, 201], [201, 409]), (ref, codes)  # 409: the older state arrived second
            final = c.get(f"/v1/obligations/{ref}").json()
            assert final["balance"] == 2
            history = c.get(f"/v1/obligations/{ref}/versions").json()["versions"]
            assert [v["change"] for v in history] == (["created", "updated"] if codes == [200, 201] else ["created"])
