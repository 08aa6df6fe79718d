"""The institution's feed, GET /v1/events: its own changes only, in commit order, paged, replayable
from any seq; events past REGISTER_EVENT_FEED_DAYS are deleted by the retention run. Both databases."""

from __future__ import annotations

from datetime import timedelta

from register.services import retention
from register.storage.types import utcnow
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body


def feed(client, inst, **params):
    r = client.get("/v1/events", params=params, headers=inst.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_feed_pages_and_replays_from_any_seq(client, data_dir, lender, admin_headers):
    other = make_institution(client, admin_headers, "lender")
    person = make_person(client, data_dir)
    ids = [grant(client, person.headers, lender.id) for _ in range(5)]
    grant(client, person.headers, other.id)  # another institution's: never in this feed
    ref = new_ref()
    line = client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(person)]),
                      headers=lender.headers).json()["id"]
    opened = client.post("/v1/me/disputes", json={"obligation": line, "reason": "repaid", "text": "paid"},
                         headers=person.headers)
    assert opened.status_code == 201
    whole = feed(client, lender, limit=1000)["items"]
    assert [e["type"] for e in whole] == ["consent.given"] * 5 + ["dispute.opened"]
    assert [e["data"]["consent_id"] for e in whole[:5]] == ids
    assert [e["seq"] for e in whole] == sorted(e["seq"] for e in whole)
    assert person.nid not in str(whole)
    # paged two at a time, following next_after, gives the same events
    paged, after = [], 0
    while True:
        page = feed(client, lender, after=after, limit=2)
        if not page["items"]:
            assert page["next_after"] == after
            break
        paged += page["items"]
        after = page["next_after"]
    assert paged == whole
    # replay from any point
    for i, e in enumerate(whole):
        assert feed(client, lender, after=e["seq"], limit=1000)["items"] == whole[i + 1:]
    assert all(e["data"].get("consent_id") not in ids for e in feed(client, other, limit=1000)["items"])


def test_events_past_the_feed_days_are_deleted_by_retention(backend, tmp_path, data_dir, keys):
    from fastapi.testclient import TestClient

    from tests.conftest import ADMIN_TOKEN, fresh_app

    with fresh_app(backend, tmp_path, data_dir, keys, event_feed_days=30) as app, TestClient(app) as client:
        lender = make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "lender")
        person = make_person(client, data_dir)
        grant(client, person.headers, lender.id)
        assert len(feed(client, lender)["items"]) == 1
        sessions = app.state.register.sessions
        policy = retention.policy_of(app.state.register.settings)
        counts = retention.run(sessions, policy, now=utcnow() + timedelta(days=29))
        assert counts is not None and counts.feed_events == 0
        counts = retention.run(sessions, policy, now=utcnow() + timedelta(days=31))
        assert counts is not None and counts.feed_events == 1
        assert feed(client, lender)["items"] == []
        grant(client, person.headers, lender.id)  # a new event gets a new seq, never one handed out before
        [e] = feed(client, lender)["items"]
        assert e["seq"] == 2


def test_the_feed_is_for_institutions(client, data_dir, regulator):
    person = make_person(client, data_dir)
    assert client.get("/v1/events", headers=person.headers).status_code == 403
    assert client.get("/v1/events", headers=regulator.headers).status_code == 403
    assert client.get("/v1/events").status_code == 401


def test_a_finished_report_is_in_its_reporters_feed(app, client, lender):
    from tests.api.test_reports import line, process, upload

    r = upload(client, lender, "\n".join([line(), line(), "{not json"]) + "\n")
    assert r.status_code == 202, r.text
    process(app)
    [event] = [e for e in feed(client, lender, limit=1000)["items"] if e["type"] == "report.finished"]
    assert event["data"]["report_id"] == r.json()["id"]
    assert event["data"]["status"] == "done" and event["data"]["accepted"] == 2 and event["data"]["rejected"] == 1
