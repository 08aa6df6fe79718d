"""`register events status|dead|retry`: what the operator sees of the dispatcher, and putting a dead
letter back. Both databases, each on an empty database of its own."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient

from register.cli import main
from register.services import dispatch
from register.services.webhooks import Backoff, WebhookConsumer
from register.storage.types import utcnow
from tests.conftest import ADMIN_TOKEN, fresh_app
from tests.events.receiver import Receiver
from tests.factories import grant, make_institution, make_person


def cli(capsys, monkeypatch, url: str, *args: str):  # noqa: ANN001
    monkeypatch.setenv("REGISTER_DATABASE_URL", url)
    code = main(["events", *args])
    return code, capsys.readouterr().out


def test_status_dead_and_retry(backend, tmp_path, data_dir, keys, capsys, monkeypatch):  # noqa: ANN001
    receiver = Receiver()
    receiver.status = 503
    try:
        with fresh_app(backend, tmp_path, data_dir, keys) as app, TestClient(app) as client:
            url = app.state.register.settings.resolved_database_url
            lender = make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "lender")
            client.post("/v1/webhooks", json={"url": receiver.url, "events": ["consent"]}, headers=lender.headers)
            grant(client, make_person(client, data_dir).headers, lender.id)
            consumer = WebhookConsumer(app.state.register.cipher, production=False,
                                       backoff=Backoff(base=1, cap=1, max_attempts=2))
            now = utcnow()
            for i in range(3):
                dispatch.dispatch_once(app.state.register.sessions, [consumer], now=now + timedelta(seconds=5 * i))
            monkeypatch.setenv("REGISTER_DATA_DIR", str(tmp_path))
            code, out = cli(capsys, monkeypatch, url, "status")
            doc = json.loads(out)
            assert code == 0 and doc["deliveries"] == {"pending": 0, "delivered": 0, "dead": 1}
            assert {c["name"]: c["last_seq"] for c in doc["consumers"]}["webhooks"] == doc["last_seq"]
            code, out = cli(capsys, monkeypatch, url, "dead")
            [dead] = json.loads(out)
            assert dead["last_status"] == 503 and dead["attempts"] == 2 and dead["institution_id"] == lender.id
            assert cli(capsys, monkeypatch, url, "retry", dead["id"])[0] == 0
            assert cli(capsys, monkeypatch, url, "retry", dead["id"])[0] == 1  # no longer dead
            assert cli(capsys, monkeypatch, url, "retry")[0] == 2  # neither an id nor --all
            receiver.status = 204
            dispatch.dispatch_once(app.state.register.sessions, [consumer], now=utcnow() + timedelta(minutes=1))
            assert json.loads(cli(capsys, monkeypatch, url, "status")[1])["deliveries"]["delivered"] == 1
    finally:
        receiver.stop()
