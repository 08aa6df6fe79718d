"""Reads that may be a moment old are served by a standby (SPEC.md, "Many machines": read routing): the
regulator's searches, the disputes and lookups it reads, the log's leaves and the public statistics run
their SELECTs on a server in recovery, while each regulator read's access event is written on the primary
in the request's transaction. Observed by the statements the read engine sends and the server (port) each
ran on, then asked of that server: `pg_is_in_recovery()`; the answers are compared with the primary's.

Adds to CI about 30 s (a cluster of its own).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session

from register import ha
from register.crypto.keys import StaticKeys
from register.main import create_app
from register.services import translog
from register.storage.db import make_engine
from register.storage.models import AccessEvent
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.factories import consumer_headers, in_days, make_institution, national_id, obligation_body
from tests.ha.cluster import Cluster, data_dir, ha_cluster

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Seen:
    """SQL each engine sent during a request, with the port of the server that ran it."""

    def __init__(self) -> None:
        self.by_port: dict[int, list[str]] = defaultdict(list)

    def watch(self, engine: Engine, name: str) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _seen(conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
            self.by_port[conn.connection.dbapi_connection.info.port].append(f"{name}: {statement}")

    def clear(self) -> None:
        self.by_port.clear()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with ha_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def served(cluster: Cluster) -> Iterator[tuple[TestClient, Seen, Path]]:
    home = data_dir()
    app = create_app(make_settings(cluster.url, home, accept_test_identities=True, log_integrator=False),
                     keys=StaticKeys.generate())
    state = app.state.register
    assert state.read_sessions is not state.sessions  # a multi-host URL: a standby's pool of its own
    seen = Seen()
    seen.watch(state.engine, "primary")
    seen.watch(state.read_sessions.kw["bind"], "reads")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, seen, home
    state.engine.dispose()
    state.read_sessions.kw["bind"].dispose()


def in_recovery(cluster: Cluster, port: int) -> bool:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/{ha.DATABASE}", pool_size=1)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT pg_is_in_recovery()")).scalar())
    finally:
        engine.dispose()


def replay_lag(cluster: Cluster) -> list[tuple[str, str, float]]:
    """(member, sync_state, replay lag in ms) of each standby, as the primary sees it."""
    engine = make_engine(cluster.url, pool_size=1)
    try:
        with engine.connect() as conn:
            return [(n, s, (lag.total_seconds() * 1000 if lag else 0.0)) for n, s, lag in conn.execute(text(
                "SELECT application_name, sync_state, replay_lag FROM pg_stat_replication ORDER BY 1"))]
    finally:
        engine.dispose()


def until_replayed(probe, what: str):  # noqa: ANN001, ANN201
    """`probe()` until it is true (the standby has replayed what the primary committed a moment ago)."""
    deadline = time.monotonic() + 60
    while not (found := probe()):
        assert time.monotonic() < deadline, f"the standby never showed {what}"
        time.sleep(0.1)
    return found


def test_moment_old_reads_run_on_a_standby_and_their_access_events_on_the_primary(
        cluster: Cluster, served: tuple[TestClient, Seen, Path]):
    client, seen, home = served
    lender = make_institution(client, ADMIN)
    regulator = make_institution(client, ADMIN, role="regulator")
    nid = national_id()
    r = client.put("/v1/obligations/RR-1", headers=lender.headers,
                   json=obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}]))
    assert r.status_code == 201, r.text
    r = client.post("/v1/consents", headers=consumer_headers(home, "SE", nid), json={
        "institution_id": lender.id, "purpose": "credit_application", "expires_at": in_days(30)})
    assert r.status_code == 201, r.text
    r = client.post("/v1/exposure", headers=lender.headers, json={
        "country": "SE", "national_id": nid, "purpose": "credit_application", "consent_id": r.json()["id"]})
    assert r.status_code == 200, r.text
    exposure_event = r.json()["receipt"]["event_id"]
    size = client.post("/v1/audit/checkpoints", headers=regulator.headers).json()["size"]

    # The standby shows what the primary committed once it has replayed it; then the answers are the primary's.
    events = until_replayed(lambda: [e for e in client.get(
        "/v1/audit/events", params={"institution_id": lender.id, "action": "exposure:query"},
        headers=regulator.headers).json()["items"] if e["id"] == exposure_event], "the exposure's event")
    assert events[0]["outcome"] == "granted"
    leaves = client.get("/v1/audit/leaves", params={"start": 0, "end": size}, headers=regulator.headers).json()
    assert leaves["end"] == size  # what the standby had not replayed yet, the primary served
    with Session(make_engine(cluster.url, pool_size=1)) as primary:
        assert leaves["leaves"] == translog.leaves(primary, start=0, end=size)["leaves"]  # the same bytes

    reads = {
        "events": ("GET", "/v1/audit/events", {"params": {"institution_id": lender.id}}),
        "search": ("POST", "/v1/audit/events/search", {"json": {"country": "SE", "national_id": nid}}),
        "disputes": ("GET", "/v1/audit/disputes", {}),
        "lookups": ("GET", f"/v1/audit/institutions/{lender.id}/lookups", {}),
        "leaves": ("GET", "/v1/audit/leaves", {"params": {"start": 0, "end": size}}),
    }
    for name, (method, path, kw) in reads.items():
        seen.clear()
        rid = f"rr-{name}-{national_id()}"
        r = client.request(method, path, headers={**regulator.headers, "X-Request-ID": rid}, **kw)
        assert r.status_code == 200, (name, r.text)
        selects = {port: [s for s in sql if s.startswith("reads: SELECT")] for port, sql in seen.by_port.items()}
        ports = [port for port, sql in selects.items() if sql]
        assert ports and all(in_recovery(cluster, p) for p in ports), (name, dict(seen.by_port))
        # The access event is written on the primary (by a prepared statement of its own, which these hooks
        # do not see) and committed with the request: it is there at once, no replay waited for.
        with Session(make_engine(cluster.url, pool_size=1)) as primary:
            assert primary.scalar(select(AccessEvent.action).where(AccessEvent.request_id == rid)), name

    seen.clear()
    r = client.get("/v1/statistics")
    assert r.status_code == 200 and r.json()["obligations"], r.text
    ports = [port for port, sql in seen.by_port.items() if any(s.startswith("reads: SELECT") for s in sql)]
    assert ports and all(in_recovery(cluster, p) for p in ports), dict(seen.by_port)
    assert not any(s.startswith("primary:") for sql in seen.by_port.values() for s in sql)
    r = client.get("/app/statistics")
    assert r.status_code == 200, r.text

    for member, sync_state, lag_ms in replay_lag(cluster):
        print(f"\n{member} ({sync_state}): replay lag {lag_ms:.1f} ms (load average {os.getloadavg()[0]:.2f})")


def standbys(cluster: Cluster) -> list[int]:
    return [m.pg_port for m in cluster.layout.members if in_recovery(cluster, m.pg_port)]


def on(port: int, sql: str) -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/{ha.DATABASE}", pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def test_a_standby_behind_serves_old_searches_but_never_fewer_leaves_than_asked(
        cluster: Cluster, served: tuple[TestClient, Seen, Path]):
    """Replay paused on every standby (writes go on: strict synchronous mode waits for the standby's flush,
    not its replay): a search shows the register as it was, the leaves of the primary's newest checkpoint
    are served whole, by the primary."""
    client, _seen, _home = served
    regulator = make_institution(client, ADMIN, role="regulator")
    def own_reads() -> list[str]:  # the regulator's own reads, each recorded as it is made
        r = client.get("/v1/audit/events", params={"institution_id": regulator.id}, headers=regulator.headers)
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    until_replayed(own_reads, "the regulator's first read")
    paused = standbys(cluster)
    try:
        for port in paused:
            on(port, "SELECT pg_wal_replay_pause()")
        lender = make_institution(client, ADMIN)  # committed on the primary, not replayed on a standby
        size = client.post("/v1/audit/checkpoints", headers=regulator.headers).json()["size"]
        before = own_reads()
        assert own_reads() == before  # the read just recorded on the primary is not on the standby yet
        r = client.get("/v1/audit/leaves", params={"start": max(0, size - 5), "end": size}, headers=regulator.headers)
        assert r.status_code == 200 and r.json()["end"] == size, r.text
        r = client.get(f"/v1/audit/institutions/{lender.id}/lookups", headers=regulator.headers)
        assert r.status_code == 200 and r.json()["institution"]["id"] == lender.id  # the primary knows it
    finally:
        for port in paused:
            on(port, "SELECT pg_wal_replay_resume()")
