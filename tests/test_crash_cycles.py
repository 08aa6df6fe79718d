"""Crash safety: the real server, on loopback, is killed with SIGKILL at random moments while a client
sends single reports, batch reports and exposure queries, then restarted; CYCLES times, on SQLite (WAL,
synchronous=FULL) and on PostgreSQL.

After every kill: the operator's check of the access log (`register audit verify`'s code) passes once
the pending events are integrated; every write the client saw acknowledged is there, exactly once (each
request carries its own X-Request-ID, and versions and events are counted by it); every acknowledged
batch report is stored. A request the kill cut off is sent again after the restart with the same
X-Request-ID or Idempotency-Key, and must then be there exactly once too. At the end every report has
been processed, each obligation holds the newest state ever acknowledged, and both the operator's CLI
and the regulator's own verifier (which kept its checkpoint across all the crashes) pass.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from register.crypto.log_key import load_log_key
from register.services.log_check import verify_log
from register.services.translog import TransparencyLog
from register.storage.db import make_engine, make_sessionmaker
from register.storage.models import ReportChunk, AccessEvent, ExposureRecord, Obligation, ObligationVersion, Report
from tests import server
from tests.conftest import BACKENDS, drop_pg_database, make_settings
from tests.factories import consumer_headers, in_days, national_id, obligation_body

CYCLES = 20
SEED = 20261123
SINGLE_REFS = 12  # S-0 .. S-11, reported one at a time
BATCH_REFS = 30  # B-0 .. B-29, reported in files of BATCH_LINES lines
BATCH_LINES = 8  # distinct refs in one file, so a ref changed twice by one report is a line applied twice
PERSONS = 4
T0 = datetime(2026, 11, 1, tzinfo=UTC)
CUT_OFF = (httpx.TransportError,)  # what a client sees when the server dies under it


def stamp(n: int) -> str:
    return (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")


def at(n: int) -> datetime:
    return T0 + timedelta(seconds=n)


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Put:
    rid: str
    ref: str
    n: int
    body: dict


@dataclass
class Upload:
    key: str
    lines: list[tuple[str, int]]  # (ref, n)
    body: bytes
    report_id: str | None = None


@dataclass
class Ledger:
    """What the client knows: what was acknowledged, and what a kill cut off (outcome unknown)."""

    puts: list[Put] = field(default_factory=list)
    put_versions: dict[str, int] = field(default_factory=dict)  # rid -> the version the answer named
    uploads: list[Upload] = field(default_factory=list)
    exposures: dict[str, tuple[str, str]] = field(default_factory=dict)  # rid -> (exposure_id, event_id)
    cut_put: Put | None = None
    cut_upload: Upload | None = None
    cut_exposures: list[str] = field(default_factory=list)  # rids: at most one event each
    clock: int = 0
    kills_mid_request: int = 0
    error: BaseException | None = None  # raised in the client thread (a 5xx, a refusal)

    def tick(self) -> int:
        self.clock += 1
        return self.clock


@dataclass
class World:
    url: str
    database_url: str
    data_dir: Path
    port: int
    proc: subprocess.Popen | None  # the server the fixture started; the test kills and restarts it
    lender: dict[str, str]
    regulator_token: str
    persons: list[tuple[str, str]]  # (national id, consent id)
    debtors: list[dict]


def workload(world: World, ledger: Ledger, rng: random.Random, cycle: int, stop: threading.Event) -> None:
    try:
        _workload(world, ledger, rng, cycle, stop)
    except BaseException as exc:  # noqa: BLE001 - re-raised by the test
        ledger.error = exc


def _workload(world: World, ledger: Ledger, rng: random.Random, cycle: int, stop: threading.Event) -> None:
    """Report and query until the server dies under us (or we are told to stop)."""
    with httpx.Client(base_url=world.url, headers=world.lender, timeout=30) as c:
        i = 0
        while not stop.is_set():
            i += 1
            rid = f"crash-{cycle}-{i}"
            what = rng.random()
            if what < 0.5:
                n = ledger.tick()
                ref = f"S-{rng.randrange(SINGLE_REFS)}"
                put = Put(rid, ref, n, obligation_body(debtors=[rng.choice(world.debtors)], balance=n, as_of=stamp(n)))
                try:
                    r = c.put(f"/v1/obligations/{ref}", json=put.body, headers={"X-Request-ID": rid})
                except CUT_OFF:
                    ledger.cut_put = put
                    return
                assert r.status_code in (200, 201), r.text
                ledger.puts.append(put)
                ledger.put_versions[rid] = r.json()["version"]
            elif what < 0.7:
                lines = [(f"B-{k}", ledger.tick()) for k in rng.sample(range(BATCH_REFS), BATCH_LINES)]
                body = "".join(json.dumps({**obligation_body(debtors=[rng.choice(world.debtors)], balance=n,
                                                             as_of=stamp(n)), "external_ref": ref}) + "\n"
                               for ref, n in lines).encode()
                upload = Upload(key=rid, lines=lines, body=body)
                try:
                    r = c.post("/v1/reports", content=body, headers={"Idempotency-Key": rid, "X-Request-ID": rid,
                                                                    "Content-Type": "application/x-ndjson"})
                except CUT_OFF:
                    ledger.cut_upload = upload
                    return
                assert r.status_code == 202, r.text
                upload.report_id = r.json()["id"]
                ledger.uploads.append(upload)
            else:
                nid, consent = rng.choice(world.persons)
                try:
                    r = c.post("/v1/exposure", headers={"X-Request-ID": rid}, json={
                        "country": "SE", "national_id": nid, "purpose": "credit_application", "consent_id": consent})
                except CUT_OFF:
                    ledger.cut_exposures.append(rid)
                    return
                assert r.status_code == 200, r.text
                doc = r.json()
                ledger.exposures[rid] = (doc["exposure_id"], doc["receipt"]["event_id"])


def operator_check(world: World) -> None:
    """With the server down: integrate what the killed server left queued, sign, and run the operator's
    check (`register audit verify`)."""
    settings = make_settings(world.database_url, world.data_dir)
    engine = make_engine(world.database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    tlog = TransparencyLog(load_log_key(settings), origin=settings.log_origin,
                           max_merge_delay=settings.max_merge_delay_seconds,
                           checkpoint_interval=settings.checkpoint_interval_seconds)
    try:
        tlog.run_once(sessions, force_checkpoint=True)
        with sessions() as session:
            report = verify_log(session, tlog)
    finally:
        engine.dispose()
    assert report.ok, [str(p) for p in report.problems]


def check_acknowledged(session: Session, ledger: Ledger) -> None:
    """Everything acknowledged is stored, exactly once; what a kill cut off is there at most once."""
    versions = defaultdict(list)
    for rid, version, as_of in session.execute(
            select(ObligationVersion.request_id, ObligationVersion.version, ObligationVersion.as_of)):
        versions[rid].append((version, as_of))
    events = defaultdict(int)
    per_person: dict[str, list[int]] = defaultdict(list)  # request id -> event count per subject
    for rid, subject, count in session.execute(select(AccessEvent.request_id, AccessEvent.subject, func.count())
                                               .group_by(AccessEvent.request_id, AccessEvent.subject)):
        events[rid] += count
        per_person[rid].append(count)
    for put in ledger.puts:
        assert len(versions[put.rid]) == 1, (put, versions[put.rid])
        version, as_of = versions[put.rid][0]
        assert version == ledger.put_versions[put.rid]
        assert utc(as_of) == at(put.n)
        # one event per person the line names before or after the change: its debtor, and the one it
        # replaced if another (each put names one, drawn at random)
        assert per_person[put.rid] in ([1], [1, 1]), (put, per_person[put.rid])
    stored = {o.external_ref: o for o in session.execute(select(Obligation)).scalars()}
    newest: dict[str, int] = {}
    for put in ledger.puts:
        newest[put.ref] = max(newest.get(put.ref, 0), put.n)
    for ref, n in newest.items():  # nothing acknowledged was overwritten by something older
        assert utc(stored[ref].as_of) >= at(n), ref
    reports = {r.id: r for r in session.execute(select(Report)).scalars()}
    for upload in ledger.uploads:
        assert upload.report_id in reports and reports[upload.report_id].idempotency_key == upload.key
        assert events[upload.key] == 1  # report:received
    # An upload cut off by a kill is expired (by its resend): no key, no chunks. Every other report has
    # its own key: none was stored twice.
    kept = [r for r in reports.values() if r.status != "expired"]
    assert len({r.idempotency_key for r in kept}) == len(kept)
    expired = {r.id for r in reports.values() if r.status == "expired"}
    assert all(reports[i].idempotency_key is None for i in expired)
    assert not set(session.execute(select(ReportChunk.report_id).where(ReportChunk.report_id.in_(expired))).scalars())
    exposures = set(session.execute(select(ExposureRecord.id)).scalars())
    event_ids = set(session.execute(select(AccessEvent.id).where(AccessEvent.action == "exposure:query")).scalars())
    for rid, (exposure_id, event_id) in ledger.exposures.items():
        assert exposure_id in exposures and event_id in event_ids and events[rid] == 1, rid
    for rid in ledger.cut_exposures:
        assert events[rid] <= 1, rid
    if ledger.cut_put:
        assert len(versions[ledger.cut_put.rid]) <= 1 and per_person[ledger.cut_put.rid] in ([], [1], [1, 1])


def resend_cut_off(world: World, ledger: Ledger) -> None:
    """The client's retry after the restart: the same X-Request-ID / Idempotency-Key, the same body."""
    with httpx.Client(base_url=world.url, headers=world.lender, timeout=30) as c:
        if (put := ledger.cut_put) is not None:
            r = c.put(f"/v1/obligations/{put.ref}", json=put.body, headers={"X-Request-ID": put.rid})
            assert r.status_code in (200, 201), r.text  # applied now, or an idempotent repeat of what was
            ledger.puts.append(put)
            ledger.put_versions[put.rid] = r.json()["version"]
        if (upload := ledger.cut_upload) is not None:
            r = c.post("/v1/reports", content=upload.body, headers={
                "Idempotency-Key": upload.key, "X-Request-ID": upload.key, "Content-Type": "application/x-ndjson"})
            assert r.status_code in (200, 202), r.text  # 200: it had been stored before the kill
            upload.report_id = r.json()["id"]
            ledger.uploads.append(upload)
    ledger.kills_mid_request += bool(ledger.cut_put or ledger.cut_upload or ledger.cut_exposures)
    ledger.cut_put = ledger.cut_upload = None


def settle(world: World, ledger: Ledger) -> None:
    """At the end: every report processed; every obligation holds the newest state acknowledged for it."""
    with httpx.Client(base_url=world.url, headers=world.lender, timeout=30) as c:
        deadline = time.time() + 120
        pending = {u.report_id for u in ledger.uploads}
        while pending and time.time() < deadline:
            pending = {rid for rid in pending if c.get(f"/v1/reports/{rid}").json()["status"] not in ("done", "failed")}
            time.sleep(0.2)
        assert not pending, f"reports never finished: {pending}"
        newest: dict[str, int] = {}
        for upload in ledger.uploads:
            doc = c.get(f"/v1/reports/{upload.report_id}").json()
            assert doc["status"] == "done" and doc["lines_read"] == BATCH_LINES, doc
            assert doc["accepted"] + doc["unchanged"] + doc["rejected"] == BATCH_LINES, doc
            if doc["rejected"]:  # only a line older than one a later file set (files may finish out of order)
                errors = c.get(f"/v1/reports/{upload.report_id}/errors").text  # NDJSON: a line per error
                codes = {json.loads(line)["code"] for line in errors.splitlines() if line}
                assert codes == {"stale_update"}, codes
            for ref, n in upload.lines:
                newest[ref] = max(newest.get(ref, 0), n)
        for put in ledger.puts:
            newest[put.ref] = max(newest.get(put.ref, 0), put.n)
        for ref, n in newest.items():
            doc = c.get(f"/v1/obligations/{ref}").json()
            assert (datetime.fromisoformat(doc["as_of"]), doc["balance"]) == (at(n), n), (ref, doc)
    engine = make_engine(world.database_url, pool_size=1)
    with Session(engine) as session:  # each accepted line made one version, none made two
        per_report = defaultdict(list)
        for rid, ob in session.execute(select(ObligationVersion.request_id, ObligationVersion.obligation_id)
                                       .where(ObligationVersion.request_id.like("report:%"))):
            per_report[rid].append(ob)
        accepted = {r.id: r.accepted for r in session.execute(select(Report)).scalars()}
    engine.dispose()
    for upload in ledger.uploads:
        obs = per_report[f"report:{upload.report_id}"]
        assert len(obs) == accepted[upload.report_id] and len(set(obs)) == len(obs)


def regulator_verifies(world: World, state: Path, *, full: bool = False) -> None:
    """The regulator's independent verifier, over HTTP, keeping its checkpoint in `state` across crashes:
    a log that shrank or forked after a restart fails here."""
    key = httpx.get(f"{world.url}/v1/audit/log-key", timeout=30).json()["vkey"]  # as the workload's clients wait
    httpx.post(f"{world.url}/v1/audit/checkpoints", headers={"Authorization": f"Bearer {world.regulator_token}"},
               timeout=30)
    args = ["verify", "--url", world.url, "--token", world.regulator_token, "--state", str(state), "--log-key", key]
    run = subprocess.run([sys.executable, "-m", "register_verifier.cli", *args, *(["--full"] if full else [])],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(params=BACKENDS)
def world(request, tmp_path):
    database_url = server.fresh_database(request.param, tmp_path)
    port = server.free_port()
    proc = server.start(database_url, tmp_path, port, REGISTER_REPORT_STALE_SECONDS="1")
    base = f"http://127.0.0.1:{port}"
    try:
        lender = httpx.post(f"{base}/v1/institutions", json={"name": "Crash Bank", "role": "lender"},
                            headers=server.ADMIN).json()
        regulator = httpx.post(f"{base}/v1/institutions", json={"name": "Supervisor", "role": "regulator"},
                               headers=server.ADMIN).json()
        persons = []
        for _ in range(PERSONS):
            nid = national_id()
            r = httpx.post(f"{base}/v1/consents", headers=consumer_headers(tmp_path, "SE", nid, ttl=3600), json={
                "institution_id": lender["id"], "purpose": "credit_application", "expires_at": in_days(30)})
            assert r.status_code == 201, r.text
            persons.append((nid, r.json()["id"]))
        world = World(url=base, database_url=database_url, data_dir=tmp_path, port=port, proc=proc,
                    lender={"Authorization": f"Bearer {lender['token']}"}, regulator_token=regulator["token"],
                    persons=persons, debtors=[{"country": "SE", "national_id": nid, "role": "primary"}
                                              for nid, _ in persons])
        yield world
    finally:
        server.kill(proc)  # a no-op once the test has killed it
    if request.param == "postgres":
        drop_pg_database(database_url)


def test_killed_at_random_points(world: World, tmp_path):
    rng = random.Random(SEED)
    ledger = Ledger()
    verifier_state = tmp_path / "regulator"
    proc, world.proc = world.proc, None
    try:
        for cycle in range(CYCLES):
            proc = proc or server.start(world.database_url, world.data_dir, world.port,
                                        REGISTER_REPORT_STALE_SECONDS="1")
            stop = threading.Event()
            client = threading.Thread(target=workload, args=(world, ledger, random.Random(rng.random()), cycle, stop))
            client.start()
            time.sleep(rng.uniform(0.1, 1.2))
            server.kill(proc)
            proc = None
            stop.set()
            client.join(timeout=60)
            assert not client.is_alive()
            if ledger.error is not None:
                raise ledger.error

            operator_check(world)
            engine = make_engine(world.database_url, pool_size=1)
            with Session(engine) as session:
                check_acknowledged(session, ledger)
            engine.dispose()

            proc = server.start(world.database_url, world.data_dir, world.port, REGISTER_REPORT_STALE_SECONDS="1")
            resend_cut_off(world, ledger)
            if cycle % 5 == 4:
                regulator_verifies(world, verifier_state)
        settle(world, ledger)
        regulator_verifies(world, verifier_state, full=True)
        server.kill(proc)
        proc = None
        operator_check(world)
        cli = subprocess.run([sys.executable, "-m", "register.cli", "audit", "verify"], capture_output=True, text=True,
                             env=server.environment(world.database_url, world.data_dir), cwd=server.ROOT, timeout=120,
                             check=False)
        assert cli.returncode == 0, cli.stdout + cli.stderr
    finally:
        if proc is not None:
            server.kill(proc)
    writes = len(ledger.puts) + sum(len(u.lines) for u in ledger.uploads) + len(ledger.exposures)
    print(f"{CYCLES} kills ({ledger.kills_mid_request} mid-request): {len(ledger.puts)} single reports, "
          f"{len(ledger.uploads)} batch reports, {len(ledger.exposures)} exposure answers acknowledged ({writes})")
    assert ledger.puts and ledger.uploads and ledger.exposures
