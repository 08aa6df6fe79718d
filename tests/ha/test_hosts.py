"""Several API hosts behind one address: two `register serve` processes (standing for two hosts, each with its
own data directory, the same keys from the environment, the same database) behind Debian's HAProxy, whose
configuration the test writes (the one in SPEC.md, "Many machines"). A lender reports through HAProxy while
one host is SIGKILLed: every acknowledged report is there exactly once, the other host answers the rest, a
batch report the dead host had taken is finished by the other, and the access log verifies."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from register.storage.db import make_engine
from register.storage.models import AccessEvent, ObligationVersion
from tests import server
from tests.conftest import drop_pg_database
from tests.factories import national_id, obligation_body
from tests.ha.postgres import need
from tests.test_crash_cycles import regulator_verifies, stamp

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@dataclass
class Behind:
    """The register as the regulator's verifier sees it: one address, HAProxy's."""

    url: str
    regulator_token: str


def haproxy_config(front: int, hosts: list[int], stats: Path) -> str:
    servers = "\n".join(f"    server api{i} 127.0.0.1:{port} check inter 500 fall 2 rise 2"
                        for i, port in enumerate(hosts))
    return f"""global
    stats socket {stats} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
    # A connection refused (a host gone) is tried on the other host; a request is never sent twice.
    retry-on conn-failure
frontend register
    bind 127.0.0.1:{front}
    default_backend api
backend api
    balance roundrobin
    option httpchk GET /livez
{servers}
"""


def shared_keys() -> dict[str, str]:
    """One set of keys for every host, from the environment (SPEC.md, "Keys")."""
    def key() -> str:
        return base64.b64encode(os.urandom(32)).decode()
    return {"REGISTER_ENCRYPTION_KEYS": json.dumps({"1": key()}), "REGISTER_BLIND_INDEX_KEY": key(),
            "REGISTER_LOG_KEY": key()}


@pytest.fixture
def hosts(backend_postgres: str) -> Iterator[tuple[str, list, str]]:
    need("haproxy")
    keys = shared_keys()
    procs, homes = [], []
    ports = [server.free_port(), server.free_port()]
    for port in ports:
        home = Path(tempfile.mkdtemp(prefix="register-host-"))
        homes.append(home)
        procs.append(server.start(backend_postgres, home, port, REGISTER_REPORT_STALE_SECONDS="2", **keys))
    front = server.free_port()
    conf_dir = Path(tempfile.mkdtemp(prefix="register-haproxy-"))
    (conf_dir / "haproxy.cfg").write_text(haproxy_config(front, ports, conf_dir / "stats"))
    proxy = subprocess.Popen([HAPROXY, "-f", str(conf_dir / "haproxy.cfg"), "-db"], stdout=subprocess.DEVNULL,
                             stderr=open(conf_dir / "haproxy.log", "wb"), start_new_session=True)  # noqa: SIM115
    url = f"http://127.0.0.1:{front}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/livez", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and proxy.poll() is None, (conf_dir / "haproxy.log").read_text()
        time.sleep(0.2)
    try:
        yield url, procs, backend_postgres
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(timeout=10)
        for proc in procs:
            server.kill(proc)
        for path in (*homes, conf_dir):
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def backend_postgres(tmp_path: Path) -> Iterator[str]:
    url = server.fresh_database("postgres", tmp_path)
    yield url
    drop_pg_database(url)


def test_killing_one_of_two_hosts_loses_no_acknowledged_request(hosts):
    url, procs, database_url = hosts
    lender = httpx.post(f"{url}/v1/institutions", headers=server.ADMIN, json={"name": "Two Hosts Bank",
                                                                              "role": "lender"}).json()
    regulator = httpx.post(f"{url}/v1/institutions", headers=server.ADMIN, json={"name": "Supervisor",
                                                                                 "role": "regulator"}).json()
    headers = {"Authorization": f"Bearer {lender['token']}"}
    acknowledged: dict[str, int] = {}
    reports: dict[str, str] = {}
    failures: list[str] = []
    stop = threading.Event()

    def report() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            i = 0
            while not stop.is_set():
                i += 1
                rid = f"host-{i}"
                body = obligation_body(debtors=[{"country": "SE", "national_id": national_id(), "role": "primary"}],
                                       balance=i, as_of=stamp(i))
                for _attempt in range(20):  # what the SDK does: the same PUT again (idempotent by as_of)
                    try:
                        r = c.put(f"/v1/obligations/H-{i}", json=body, headers={"X-Request-ID": rid})
                    except httpx.TransportError:
                        time.sleep(0.2)
                        continue
                    if r.status_code in (502, 503):
                        time.sleep(0.2)
                        continue
                    if r.status_code in (200, 201):
                        acknowledged[rid] = r.json()["version"]
                    else:
                        failures.append(r.text)
                    break
                if i % 10 == 0:
                    lines = "".join(json.dumps({**body, "external_ref": f"HB-{i}-{k}"}) + "\n" for k in range(20))
                    for _attempt in range(20):
                        try:
                            r = c.post("/v1/reports", content=lines, headers={
                                "Idempotency-Key": rid, "Content-Type": "application/x-ndjson"})
                        except httpx.TransportError:
                            time.sleep(0.2)
                            continue
                        if r.status_code in (502, 503):
                            time.sleep(0.2)
                            continue
                        if r.status_code in (200, 202):
                            reports[rid] = r.json()["id"]
                        else:
                            failures.append(r.text)
                        break

    worker = threading.Thread(target=report)
    worker.start()
    time.sleep(3)
    server.kill(procs[0])  # one host gone, mid-stream
    time.sleep(3)
    stop.set()
    worker.join(timeout=120)
    assert not failures, failures
    assert len(acknowledged) > 20 and reports
    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session:
            versions = defaultdict(int)
            for (rid,) in session.execute(select(ObligationVersion.request_id)):
                versions[rid] += 1
            events = {rid: n for rid, n in session.execute(
                select(AccessEvent.request_id, func.count()).group_by(AccessEvent.request_id))}
    finally:
        engine.dispose()
    assert all(versions[rid] == 1 for rid in acknowledged), {r: versions[r] for r in acknowledged if versions[r] != 1}
    assert all(events.get(rid, 0) >= 1 for rid in acknowledged)
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        deadline = time.monotonic() + 120
        for report_id in reports.values():  # a report the dead host had claimed is finished by the other
            while (doc := c.get(f"/v1/reports/{report_id}").json())["status"] not in ("done", "failed"):
                assert time.monotonic() < deadline, doc
                time.sleep(0.3)
            assert doc["status"] == "done" and doc["accepted"] + doc["unchanged"] == 20, doc
    state = Path(tempfile.mkdtemp(prefix="register-verifier-"))
    regulator_verifies(Behind(url, regulator["token"]), state, full=True)  # type: ignore[arg-type]
