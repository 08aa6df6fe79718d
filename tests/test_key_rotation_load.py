"""Rotating the field-encryption and blind-index keys while lenders query and report, through the real server
(`register serve`, two worker processes): no request fails and every answer is the model's. The workers follow
the rotation by rereading the key versions (REGISTER_KEY_REFRESH_SECONDS), never restarted."""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path

import httpx
from sqlalchemy import select

from register.crypto.dev_idp import DevIdentityProvider
from register.crypto.keys import FileKeyProvider
from register.services import identities
from register.services import keys as key_service
from register.storage.db import make_engine, make_sessionmaker
from register.storage.models import Person
from tests import server
from tests.conftest import drop_pg_database
from tests.factories import consumer_headers, in_days, national_id, new_ref, obligation_body

REFRESH = 0.3


class Lenders:
    """The model: each person's reported balances. A person is queried only once its report was answered,
    so the expected exposure is known exactly whatever the threads interleave."""

    def __init__(self, base: str, data_dir: Path, token: str, inst_id: str) -> None:
        self.base, self.data_dir, self.token, self.inst_id = base, data_dir, token, inst_id
        self.lock = threading.Lock()
        self.people: dict[str, tuple[int, str]] = {}  # nid -> (balance, consent id)
        self.failures: list[str] = []
        self.mismatches: list[str] = []
        self.counts = {"reports": 0, "queries": 0}
        self.stop = threading.Event()

    def add_person(self, client: httpx.Client) -> None:
        nid, balance = national_id(), random.randrange(1, 10_000_000)
        me = consumer_headers(self.data_dir, "SE", nid)
        r = client.post("/v1/consents", headers=me, json={"institution_id": self.inst_id,
                                                          "purpose": "credit_application", "expires_at": in_days(30)})
        if r.status_code != 201:
            self.failures.append(f"consent {r.status_code} {r.text[:200]}")
            return
        consent = r.json()["id"]
        body = obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}], balance=balance)
        r = client.put(f"/v1/obligations/{new_ref()}", json=body, headers={"Authorization": f"Bearer {self.token}"})
        if r.status_code != 201:
            self.failures.append(f"report {r.status_code} {r.text[:200]}")
            return
        with self.lock:
            self.people[nid] = (balance, consent)
            self.counts["reports"] += 1

    def query(self, client: httpx.Client) -> None:
        with self.lock:
            if not self.people:
                return
            nid, (balance, consent) = random.choice(list(self.people.items()))
        r = client.post("/v1/exposure", headers={"Authorization": f"Bearer {self.token}"},
                        json={"country": "SE", "national_id": nid, "purpose": "credit_application",
                              "consent_id": consent})
        if r.status_code != 200:
            self.failures.append(f"exposure {r.status_code} {r.text[:200]}")
            return
        got = r.json()["totals"].get("SEK", {}).get("balance")
        if got != balance:
            self.mismatches.append(f"{nid}: {got} != {balance}")
        with self.lock:
            self.counts["queries"] += 1

    def reporter(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                self.add_person(client)

    def querier(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                self.query(client)


class TestRotationUnderLoad:
    def test_fields_and_blind_index_rotate_with_no_failed_request_and_no_wrong_answer(self, backend, tmp_path):
        url = server.fresh_database(backend, tmp_path)
        DevIdentityProvider.load_or_create(tmp_path)
        port = server.free_port()
        proc = server.start(url, tmp_path, port, workers=2, REGISTER_ENV="dev",
                            REGISTER_KEY_REFRESH_SECONDS=str(REFRESH))
        try:
            base = f"http://127.0.0.1:{port}"
            r = httpx.post(f"{base}/v1/institutions", headers=server.ADMIN,
                           json={"name": f"lender {uuid.uuid4().hex[:6]}", "role": "lender"})
            assert r.status_code == 201, r.text
            lenders = Lenders(base, tmp_path, r.json()["token"], r.json()["id"])
            with httpx.Client(base_url=base, timeout=30) as client:
                for _ in range(10):
                    lenders.add_person(client)
            threads = [threading.Thread(target=t) for t in (lenders.reporter, lenders.querier, lenders.querier)]
            for t in threads:
                t.start()
            # The register's own sessions, as `register keys rotate` opens them (keys.operator_sessions): on
            # SQLite they wait their turn at the writer gate with the server's workers. A bare engine did not,
            # and a rotation step now and then met "database is locked".
            sessions = make_sessionmaker(make_engine(url))
            provider = FileKeyProvider(tmp_path / "keys.json")
            steps: list[str] = []
            try:
                for rotate in (key_service.rotate_fields, key_service.rotate_blind_index):
                    rotate(sessions, provider, progress=lambda step, done, total: steps.append(step),
                           grace=2 * REFRESH + 1, batch=5)
            finally:
                lenders.stop.set()
                for t in threads:
                    t.join()
            with httpx.Client(base_url=base, timeout=30) as client:  # after: everyone still answers right
                for _ in range(20):
                    lenders.query(client)
            print(f"\nrotated under load: {lenders.counts}, {len(steps)} progress lines")
            assert lenders.failures == []
            assert lenders.mismatches == []
            assert lenders.counts["reports"] > 10 and lenders.counts["queries"] > 20
            assert sorted(provider.load().enc) == [2] and sorted(provider.load().blind_versions) == [2]
            with sessions() as session:  # what the workers wrote during and after is under the new keys only
                cipher = key_service.plan_of(session, provider.load()).cipher(provider.load())
                for person in session.execute(select(Person)).scalars():
                    number = identities.reveal(cipher, person)
                    assert person.blind_index == identities.blind_index(cipher, number)
                    assert person.blind_index_next is None
        finally:
            server.kill(proc)
            if backend == "postgres":
                drop_pg_database(url)
