"""The log key rotated under load, on the real server (two worker processes): lenders keep querying and
reporting, none of their requests fails, and the regulator's verifier, run as its own process over HTTP,
passes across the handover with proofs for leaves before and after it. Both databases."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from register.cli_log_key import log_status, rotate_log
from tests import server
from tests.conftest import BACKENDS, drop_pg_database, make_settings
from tests.factories import consumer_headers, in_days, national_id, obligation_body

LENDERS = 3


def regulator(url: str, token: str, state: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "register_verifier.cli", "verify", "--url", url, "--token", token,
                           "--state", str(state), *extra], capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(params=BACKENDS)
def live(request, tmp_path):
    url = server.fresh_database(request.param, tmp_path)
    port = server.free_port()
    proc = server.start(url, tmp_path, port, workers=2, REGISTER_CHECKPOINT_INTERVAL_SECONDS="0.5")
    try:
        yield url, tmp_path, f"http://127.0.0.1:{port}"
    finally:
        server.kill(proc)
        if request.param == "postgres":
            drop_pg_database(url)


def test_rotation_while_lenders_query_and_report(live):
    db_url, data_dir, base = live
    lender = httpx.post(f"{base}/v1/institutions", json={"name": "Rotating Bank", "role": "lender"},
                        headers=server.ADMIN).json()
    reg = httpx.post(f"{base}/v1/institutions", json={"name": "Supervisor", "role": "regulator"},
                     headers=server.ADMIN).json()
    lender_h = {"Authorization": f"Bearer {lender['token']}"}
    persons = []
    for _ in range(LENDERS):
        nid = national_id()
        r = httpx.post(f"{base}/v1/consents", headers=consumer_headers(data_dir, "SE", nid, ttl=3600), json={
            "institution_id": lender["id"], "purpose": "credit_application", "expires_at": in_days(30)})
        assert r.status_code == 201, r.text
        persons.append((nid, r.json()["id"]))

    stop = threading.Event()
    results: list[tuple[int, dict | None]] = []
    lock = threading.Lock()

    def lend(nid: str, consent: str) -> None:
        with httpx.Client(base_url=base, headers=lender_h, timeout=60) as c:
            n = 0
            while not stop.is_set():
                n += 1
                if n % 3 == 0:
                    ref = f"rot-{nid}-{n}"
                    r = c.put(f"/v1/obligations/{ref}", json=obligation_body(
                        debtors=[{"country": "SE", "national_id": nid, "role": "primary"}]))
                    with lock:
                        results.append((r.status_code, None))
                    continue
                r = c.post("/v1/exposure", json={"country": "SE", "national_id": nid,
                                                 "purpose": "credit_application", "consent_id": consent})
                with lock:
                    results.append((r.status_code, r.json() if r.status_code == 200 else {"error": r.text}))

    threads = [threading.Thread(target=lend, args=p) for p in persons]
    for t in threads:
        t.start()
    try:
        old_vkey = httpx.get(f"{base}/v1/audit/log-key").json()["vkey"]
        while sum(1 for s, _ in results if s == 200) < 20:
            stop.wait(0.05)
        httpx.post(f"{base}/v1/audit/checkpoints", headers={"Authorization": f"Bearer {reg['token']}"}, timeout=60)
        state = data_dir / "regulator-state"
        first = regulator(base, reg["token"], state, "--log-key", old_vkey)
        assert first.returncode == 0, first.stdout + first.stderr

        settings = make_settings(db_url, data_dir)
        status = rotate_log(settings)
        new_vkey = status["vkey"]
        assert new_vkey != old_vkey
        with lock:
            at_rotation = len(results)

        def new_key_receipts() -> int:
            with lock:
                return sum(1 for s, doc in results[at_rotation:]
                           if s == 200 and doc and new_vkey.split("+")[0] in doc["receipt"]["note"]
                           and _signed_by(doc["receipt"]["note"], new_vkey))

        while new_key_receipts() < 20:  # both workers signing with the new key, without a restart
            stop.wait(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    failed = [(s, doc) for s, doc in results if s not in (200, 201)]
    assert failed == [], failed[:3]
    assert log_status(settings)["active"] == new_vkey.split("+")[1]

    receipts = []
    for i, (_, doc) in enumerate(r for r in results if r[1] is not None and "receipt" in r[1]):
        if i in (0, len(results) // 2) or i % 50 == 0:
            path = data_dir / f"receipt-{i}.json"
            path.write_text(json.dumps(doc["receipt"]))
            receipts.append(str(path))
    httpx.post(f"{base}/v1/audit/checkpoints", headers={"Authorization": f"Bearer {reg['token']}"}, timeout=60)
    size = httpx.get(f"{base}/v1/audit/checkpoint", headers={"Authorization": f"Bearer {reg['token']}"}).json()["size"]
    before, after = 0, size - 1  # a leaf signed under the old key's checkpoints, and one after the handover
    run = regulator(base, reg["token"], state, "--full", "--leaf-index", str(before), str(status["from_size"]),
                    str(after), "--receipt", *receipts)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "handed over" in run.stdout + run.stderr
    assert (state / "log-key").read_text().strip() == new_vkey
    print(f"log-key rotation under load: {len(results)} requests, 0 failed, size {size}, "
          f"handover at {status['from_size']}")


def _signed_by(note: str, vkey: str) -> bool:
    from register_verifier.note import NoteError, NoteVerifier

    try:
        NoteVerifier.from_vkey(vkey).open(note.encode())
    except NoteError:
        return False
    return True
