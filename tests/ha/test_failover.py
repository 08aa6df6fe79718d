"""Losing the primary's machine under load (issue "Many machines"): the register runs on the multi-host URL
of `register ha up` (etcd + three PostgreSQL under Patroni, synchronous replication, strict) while lenders
report (single and batch) and query, and persons give consents, open disputes and set credit bans. The
leader's Patroni and its postmaster are SIGKILLed together KILLS times; between losses the lost member is
started again and rejoins (pg_rewind). Then: every acknowledged write is there exactly once (versions and
access events counted by X-Request-ID, consents, disputes and bans by the person's own view), every batch
report finishes, the operator's check and the regulator's verifier pass, and the time the register refused
writes after each kill is printed (target under 30 s; not asserted, the machine is shared).

A postmaster killed alone is restarted in place by Patroni: the same member leads again, nothing is lost.

Adds to CI about 3.5 minutes (cluster start ~15 s, each loss ~15 s of failover plus ~10 s of rejoin, checks).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from register import ha
from register.storage.db import make_engine, replica_url
from register.storage.models import AccessEvent, ExposureRecord, ObligationVersion, Report
from tests import server
from tests.ha.conftest import report
from tests.factories import consumer_headers, in_days, national_id, obligation_body
from tests.ha.cluster import Cluster, data_dir, ha_cluster
from tests.test_crash_cycles import regulator_verifies, stamp

KILLS = 3
REFS = 20
# What a request meets while the primary is being replaced: the register's 503, or (a request on a
# connection the server cut) no answer. Anything else (a 500, a 4xx) fails the test.
SWITCHING = 503


@dataclass
class Ledger:
    puts: dict[str, tuple[str, int]] = field(default_factory=dict)  # rid -> (ref, version)
    reports: dict[str, str] = field(default_factory=dict)  # idempotency key -> report id
    exposures: dict[str, tuple[str, str]] = field(default_factory=dict)  # rid -> (exposure id, event id)
    cut_exposures: list[str] = field(default_factory=list)
    persons: dict[str, dict[str, str]] = field(default_factory=dict)  # nid -> what was acknowledged
    cut_persons: set[str] = field(default_factory=set)  # a person's POST that got no answer: at most once
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    clock: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> int:
        with self.lock:
            self.clock += 1
            return self.clock


@dataclass
class World:
    cluster: Cluster
    url: str
    data_dir: Path
    lender: dict[str, str]
    lender_id: str
    regulator_token: str
    debtors: list[tuple[str, str]]  # (nid, consent id)


def send(c: httpx.Client, ledger: Ledger, method: str, path: str, *, retry: bool, **kw) -> httpx.Response | None:
    """One call; while the primary is switching, sent again if `retry` (same body, same X-Request-ID or
    Idempotency-Key: safe), else None (the outcome is unknown: at most once)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            r = c.request(method, path, **kw)
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code != SWITCHING:
            return r
        if r is not None:
            assert r.headers.get("retry-after") and r.json()["code"] == "database_unavailable", r.text
        with ledger.lock:
            ledger.refused += 1
        if not retry or time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def lender_work(world: World, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=world.url, headers=world.lender, timeout=60) as c:
        i = 0
        while not stop.is_set():
            i += 1
            rid = f"ha-{seed}-{i}"
            what = rng.random()
            nid, consent = rng.choice(world.debtors)
            debtor = [{"country": "SE", "national_id": nid, "role": "primary"}]
            if what < 0.5:
                n, ref = ledger.tick(), f"S-{rng.randrange(REFS)}"
                r = send(c, ledger, "PUT", f"/v1/obligations/{ref}", retry=True, headers={"X-Request-ID": rid},
                         json=obligation_body(debtors=debtor, balance=n, as_of=stamp(n)))
                if r is not None:
                    if r.status_code == 409:  # another thread's newer state: refused, nothing written
                        continue
                    assert r.status_code in (200, 201), r.text
                    ledger.puts[rid] = (ref, r.json()["version"])
            elif what < 0.65:
                body = "".join(json.dumps({**obligation_body(debtors=debtor, balance=n, as_of=stamp(n)),
                                           "external_ref": f"B-{seed}-{i}-{k}"}) + "\n"
                               for k, n in ((k, ledger.tick()) for k in range(5))).encode()
                r = send(c, ledger, "POST", "/v1/reports", retry=True, content=body, headers={
                    "Idempotency-Key": rid, "X-Request-ID": rid, "Content-Type": "application/x-ndjson"})
                if r is not None:
                    assert r.status_code in (200, 202), r.text
                    ledger.reports[rid] = r.json()["id"]
            else:
                r = send(c, ledger, "POST", "/v1/exposure", retry=False, headers={"X-Request-ID": rid}, json={
                    "country": "SE", "national_id": nid, "purpose": "credit_application", "consent_id": consent})
                if r is None:
                    ledger.cut_exposures.append(rid)
                    continue
                assert r.status_code == 200, r.text
                ledger.exposures[rid] = (r.json()["exposure_id"], r.json()["receipt"]["event_id"])


def person_work(world: World, ledger: Ledger, stop: threading.Event) -> None:
    """A new person each round: the lender reports a line, the person consents to it, disputes it and sets
    a credit ban."""
    with httpx.Client(base_url=world.url, timeout=60) as c:
        while not stop.is_set():
            nid = national_id()
            me = consumer_headers(world.data_dir, "SE", nid, ttl=3600)
            line = obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}])
            r = send(c, ledger, "PUT", f"/v1/obligations/P-{nid}", retry=True, headers=world.lender, json=line)
            if r is None:
                continue
            assert r.status_code in (200, 201), r.text
            done: dict[str, str] = {}
            ledger.persons[nid] = done
            r = send(c, ledger, "POST", "/v1/consents", retry=False, headers=me, json={
                "institution_id": world.lender_id, "purpose": "credit_application", "expires_at": in_days(30)})
            if r is None:
                ledger.cut_persons.add(nid)
                continue
            assert r.status_code == 201, r.text
            done["consent"] = r.json()["id"]
            r = send(c, ledger, "GET", "/v1/me/obligations", retry=True, headers=me)
            assert r is not None and r.status_code == 200, r
            obligation = r.json()["obligations"][0]["id"]
            if obligation:
                r = send(c, ledger, "POST", "/v1/me/disputes", retry=False, headers=me, json={
                    "obligation": obligation, "reason": "not_mine", "text": "I never took this loan"})
                if r is None:
                    ledger.cut_persons.add(nid)
                    continue
                assert r.status_code == 201, r.text
                done["dispute"] = r.json()["id"]
            r = send(c, ledger, "PUT", "/v1/me/credit-ban", retry=True, headers=me, json={"reason": "self_control"})
            assert r is not None and r.status_code in (200, 201), r
            done["ban"] = "set"


def guarded(fn, ledger: Ledger, *args) -> None:  # noqa: ANN001
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        ledger.errors.append(repr(exc))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with ha_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def world(cluster: Cluster) -> Iterator[World]:
    home = data_dir()
    port = server.free_port()
    proc = server.start(cluster.url, home, port, REGISTER_ACCEPT_TEST_IDENTITIES="true",
                        REGISTER_REPORT_STALE_SECONDS="2")
    base = f"http://127.0.0.1:{port}"
    try:
        lender = httpx.post(f"{base}/v1/institutions", headers=server.ADMIN,
                            json={"name": "HA Bank", "role": "lender"}).json()
        regulator = httpx.post(f"{base}/v1/institutions", headers=server.ADMIN,
                               json={"name": "HA Supervisor", "role": "regulator"}).json()
        debtors = []
        for _ in range(3):
            nid = national_id()
            r = httpx.post(f"{base}/v1/consents", headers=consumer_headers(home, "SE", nid, ttl=3600), json={
                "institution_id": lender["id"], "purpose": "credit_application", "expires_at": in_days(30)})
            assert r.status_code == 201, r.text
            debtors.append((nid, r.json()["id"]))
        yield World(cluster, base, home, {"Authorization": f"Bearer {lender['token']}"}, lender["id"],
                    regulator["token"], debtors)
    finally:
        server.kill(proc)
        shutil.rmtree(home, ignore_errors=True)


def write_again(world: World, n: int) -> float:
    """Seconds until a write is acknowledged again (a PUT sent every 0.2 s until it is)."""
    started = time.monotonic()
    with httpx.Client(base_url=world.url, headers=world.lender, timeout=60) as c:
        while True:
            try:
                r = c.put("/v1/obligations/PROBE", json=obligation_body(balance=n, as_of=stamp(500_000 + n)))
                if r.status_code in (200, 201):
                    return time.monotonic() - started
                assert r.status_code == 503, r.text
            except httpx.TransportError:
                pass
            assert time.monotonic() - started < 300, "the register never took writes again"
            time.sleep(0.2)


def check(world: World, ledger: Ledger) -> None:
    engine = make_engine(world.cluster.url, pool_size=1)
    try:
        with Session(engine) as session:
            versions = defaultdict(int)
            for (rid,) in session.execute(select(ObligationVersion.request_id)):
                versions[rid] += 1
            events = {rid: n for rid, n in session.execute(
                select(AccessEvent.request_id, func.count()).group_by(AccessEvent.request_id))}
            exposures = set(session.execute(select(ExposureRecord.id)).scalars())
            reports = {r.id: r for r in session.execute(select(Report)).scalars()}
    finally:
        engine.dispose()
    for rid in ledger.puts:
        assert versions[rid] == 1, rid
    for rid, (exposure_id, _event) in ledger.exposures.items():
        assert exposure_id in exposures and events.get(rid) == 1, rid
    for rid in ledger.cut_exposures:
        assert events.get(rid, 0) <= 1, rid
    for key, report_id in ledger.reports.items():
        assert reports[report_id].idempotency_key == key and events.get(key) == 1, key
    kept = [r for r in reports.values() if r.status != "expired"]
    assert len({r.idempotency_key for r in kept}) == len(kept)
    with httpx.Client(base_url=world.url, headers=world.lender, timeout=60) as c:
        deadline = time.monotonic() + 180
        for report_id in ledger.reports.values():  # batch reports resume on the new primary
            while (doc := c.get(f"/v1/reports/{report_id}").json())["status"] not in ("done", "failed"):
                assert time.monotonic() < deadline, doc
                time.sleep(0.3)
            assert doc["status"] == "done" and doc["lines_read"] == 5, doc
        for nid, done in ledger.persons.items():
            me = consumer_headers(world.data_dir, "SE", nid)
            consents = c.get("/v1/me/consents", headers=me).json()["items"]
            ids = [x["id"] for x in consents]
            if "consent" in done:
                assert ids.count(done["consent"]) == 1 and len(ids) == 1, (nid, consents)
            elif nid not in ledger.cut_persons:
                assert ids == []
            disputes = [d["id"] for d in c.get("/v1/me/disputes", headers=me).json()["items"]]
            if "dispute" in done:
                assert disputes == [done["dispute"]], (nid, disputes)
            else:
                assert len(disputes) <= 1
            if "ban" in done:
                assert c.get("/v1/me/credit-ban", headers=me).json()["active"] is True


def test_losing_the_primary_three_times_loses_no_acknowledged_write(world: World, tmp_path: Path):
    ledger, stop = Ledger(), threading.Event()
    threads = [threading.Thread(target=guarded, args=(lender_work, ledger, world, ledger, stop, s)) for s in (1, 2)]
    threads.append(threading.Thread(target=guarded, args=(person_work, ledger, world, ledger, stop)))
    for t in threads:
        t.start()
    verifier_state = tmp_path / "regulator"
    lost: list[float] = []
    try:
        for kill in range(KILLS):
            time.sleep(3)  # some load on this primary first
            leader = world.cluster.leader()
            ha.kill_member(world.cluster.dir, leader)
            lost.append(write_again(world, kill))
            report(f"kill {kill + 1}: {leader} lost; writes refused for {lost[-1]:.1f} s "
                   f"(load average {os.getloadavg()[0]:.2f})")
            regulator_verifies(world, verifier_state)  # the log did not fork or shrink across the switch
            ha.start_member(world.cluster.dir, leader)  # the lost machine back: it rejoins as a replica
            ha.wait_ready(world.cluster.layout, members=3, timeout=180)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)
    if ledger.errors:  # what the server said of each, whole (an assertion's message is cut short)
        for line in server.server_errors(world.data_dir):
            report(f"server error: {line}")
    assert not ledger.errors, ledger.errors
    assert ledger.puts and ledger.exposures and ledger.reports and ledger.persons
    check(world, ledger)
    regulator_verifies(world, verifier_state, full=True)
    report(f"unavailability per kill: {', '.join(f'{s:.1f} s' for s in lost)}; requests refused (503 or cut): "
           f"{ledger.refused} (load average {os.getloadavg()[0]:.2f})")


def test_a_postmaster_killed_alone_is_restarted_in_place(world: World):
    leader = world.cluster.leader()
    before = ha.postmaster_pid(world.cluster.dir, leader)
    ha.kill_member(world.cluster.dir, leader, postmaster_only=True)
    lost = write_again(world, 100)
    ha.wait_ready(world.cluster.layout, members=3, timeout=120)
    assert world.cluster.leader() == leader  # Patroni restarted it in place; no failover
    assert ha.postmaster_pid(world.cluster.dir, leader) not in (None, before)
    report(f"postmaster of {leader} killed: writes refused for {lost:.1f} s (load average {os.getloadavg()[0]:.2f})")


class TestOnTheHAURL:
    def test_ha_status_names_one_leader_and_its_synchronous_standby(self, cluster: Cluster):
        done = subprocess.run([sys.executable, "-m", "register.cli", "ha", "status", "--dir", str(cluster.dir)],
                              capture_output=True, text=True, check=True, timeout=60)
        doc = json.loads(done.stdout)
        assert doc["database_url"] == cluster.url
        assert sorted(m["role"] for m in doc["members"]) == ["leader", "replica", "sync_standby"], doc
        assert [m["pg_port"] for m in doc["members"]] == [m.pg_port for m in cluster.layout.members]

    def test_reads_that_may_lag_go_to_a_standby_and_writes_to_the_primary(self, cluster: Cluster):
        for url, in_recovery in ((replica_url(cluster.url), True), (cluster.url, False)):
            engine = make_engine(url, pool_size=1)
            try:
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is in_recovery
            finally:
                engine.dispose()

    def test_proofs_for_the_newest_checkpoint_answer_whatever_the_standby_has_replayed(self, world: World):
        regulator = {"Authorization": f"Bearer {world.regulator_token}"}
        for _ in range(5):  # a checkpoint signed on the primary, a proof asked at once
            size = httpx.post(f"{world.url}/v1/audit/checkpoints", headers=regulator, timeout=30).json()["size"]
            r = httpx.get(f"{world.url}/v1/audit/proof/consistency", params={"first": 1, "second": size},
                          headers=regulator, timeout=30)
            assert r.status_code == 200, r.text
            r = httpx.get(f"{world.url}/v1/audit/proof/inclusion", params={"tree_size": size, "leaf_index": size - 1},
                          headers=regulator, timeout=30)
            assert r.status_code == 200, r.text
