"""A field-key rotation re-encrypts notice addresses and waiting notices too: after the old key is
destroyed, the person still sees their address and the waiting confirmation still goes out."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from register.crypto.keys import FileKeyProvider
from register.main import create_app
from register.services import keys as key_service
from register.storage.notice_tables import Notice, NotificationSubscription
from tests.conftest import make_settings
from tests.factories import consumer_headers, national_id
from tests.test_key_lifecycle import quiet, sessions_for, url  # noqa: F401 - fixture


def test_addresses_and_waiting_notices_survive_a_field_key_rotation(url, tmp_path):  # noqa: F811
    nid = national_id()
    person = consumer_headers(tmp_path, "SE", nid)
    app = create_app(make_settings(url, tmp_path))
    with TestClient(app) as client:
        r = client.put("/v1/me/notifications", json={"email": "rotated@example.org"}, headers=person)
        assert r.status_code == 200 and r.json()["waiting"] == 1
    app.state.register.engine.dispose()

    provider = FileKeyProvider(tmp_path / "keys.json")
    result = key_service.rotate_fields(sessions_for(url), provider, progress=quiet, grace=0, batch=2)
    assert result["destroyed"] == [1]
    with sessions_for(url)() as s:
        assert {bytes(b)[1] for b in s.execute(select(NotificationSubscription.email_enc)).scalars()} == {2}
        assert {bytes(b)[1] for b in s.execute(select(Notice.body_enc)).scalars()} == {2}

    app = create_app(make_settings(url, tmp_path))
    with TestClient(app) as client:
        assert client.get("/v1/me/notifications", headers=person).json()["email"] == "rotated@example.org"
    app.state.register.engine.dispose()


def test_a_subscription_follows_its_person_through_a_blind_index_rotation(url, tmp_path):  # noqa: F811
    from tests.test_key_lifecycle import report_people

    [nid] = report_people(url, tmp_path, 1)
    person = consumer_headers(tmp_path, "SE", nid)
    app = create_app(make_settings(url, tmp_path))
    with TestClient(app) as client:
        assert client.put("/v1/me/notifications", json={"email": "moved@example.org"}, headers=person).status_code == 200
    app.state.register.engine.dispose()
    key_service.rotate_blind_index(sessions_for(url), FileKeyProvider(tmp_path / "keys.json"), progress=quiet,
                                   grace=0)
    app = create_app(make_settings(url, tmp_path))
    with TestClient(app) as client:
        assert client.get("/v1/me/notifications", headers=person).json()["email"] == "moved@example.org"
    app.state.register.engine.dispose()
