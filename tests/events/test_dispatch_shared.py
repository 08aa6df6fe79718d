"""Several dispatchers at once (server processes, `register events dispatch`): they share the work, and
each event reaches the receiver once. On PostgreSQL the cursor and due deliveries are taken with SKIP
LOCKED; on SQLite the writer gate lets one write at a time. Both databases."""

from __future__ import annotations

import threading
from collections import Counter

from register.services import dispatch
from register.services.webhooks import Backoff, WebhookConsumer
from register.storage.types import utcnow
from tests.events.receiver import Receiver
from tests.factories import grant, make_person


def test_two_dispatchers_deliver_each_event_once(app, client, data_dir, lender):
    receiver = Receiver()
    try:
        r = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["consent"]}, headers=lender.headers)
        assert r.status_code == 201
        person = make_person(client, data_dir)
        ids = {grant(client, person.headers, lender.id) for _ in range(30)}
        sessions, now = app.state.register.sessions, utcnow()
        consumers = [WebhookConsumer(app.state.register.cipher, production=False, timeout=5,
                                     backoff=Backoff(base=10, cap=60, max_attempts=3)) for _ in range(2)]
        start, errors = threading.Barrier(2), []

        def work(consumer: WebhookConsumer) -> None:
            try:
                start.wait()
                dispatch.dispatch_once(sessions, [consumer], now=now)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in consumers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        import json

        got = Counter(json.loads(x["body"])["data"]["consent_id"] for x in receiver.received)
        assert set(got) == ids and set(got.values()) == {1}  # every event, once
        items = client.get(f"/v1/webhooks/{r.json()['id']}/deliveries", params={"limit": 1000},
                           headers=lender.headers).json()["items"]
        assert len(items) == 30 and {d["state"] for d in items} == {"delivered"}
    finally:
        receiver.stop()


def test_the_server_runs_a_dispatcher(backend, tmp_path, data_dir, keys):
    """With REGISTER_DISPATCHER on (the default outside tests), the server delivers by itself."""
    import time

    from fastapi.testclient import TestClient

    from tests.conftest import ADMIN_TOKEN, fresh_app
    from tests.factories import make_institution

    receiver = Receiver()
    try:
        with fresh_app(backend, tmp_path, data_dir, keys, dispatcher=True, dispatcher_interval_seconds=0.1) as app, \
                TestClient(app) as client:
            lender = make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "lender")
            assert client.post("/v1/webhooks", json={"url": receiver.url, "events": ["consent"]},
                               headers=lender.headers).status_code == 201
            person = make_person(client, data_dir)
            consent_id = grant(client, person.headers, lender.id)
            for _ in range(600):  # until delivered: the test waits on the outcome, not on a time
                if receiver.received:
                    break
                time.sleep(0.05)
            import json

            assert [json.loads(x["body"])["data"]["consent_id"] for x in receiver.received] == [consent_id]
    finally:
        receiver.stop()
