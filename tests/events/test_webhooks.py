"""Webhooks end to end against a real HTTP receiver on a loopback port: signed deliveries, retries with
backoff while the receiver is down, a dead letter the institution and the operator see, secret rotation,
and the refusals that keep the register from being pointed at itself. Both databases; time is passed in,
so no test waits for a backoff."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from register.services import dispatch
from register.services.webhooks import Backoff, WebhookConsumer, check_url, create_webhook, sign
from register.domain.permission import Principal, Role
from register.errors import InvalidInput
from register.storage.types import utcnow
from tests.events.receiver import Receiver
from tests.factories import grant, make_person


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def consumer_of(app, **kw) -> WebhookConsumer:
    kw.setdefault("backoff", Backoff(base=10, cap=60, max_attempts=4))
    return WebhookConsumer(app.state.register.cipher, production=kw.pop("production", False),
                           timeout=kw.pop("timeout", 5.0), **kw)


def run(app, consumer, now) -> None:
    """One dispatcher pass at `now` (fan-out, then delivery; the overdue detector is tested elsewhere)."""
    sessions = app.state.register.sessions
    dispatch.fan_out(sessions, consumer, now=now)
    consumer.deliver(sessions, now=now)


def subscribe(client, lender, url, events=("consent",)):
    r = client.post("/v1/webhooks", json={"url": url, "events": list(events)}, headers=lender.headers)
    assert r.status_code == 201, r.text
    assert r.json()["secret"].startswith("whsec_")
    return r.json()


def verify(secret: str, delivery: dict) -> bool:
    h = delivery["headers"]
    expected = sign(secret, h["webhook-id"], int(h["webhook-timestamp"]), delivery["body"])
    return expected in h["webhook-signature"].split(" ")


def deliveries(client, lender, hook_id, **params):
    r = client.get(f"/v1/webhooks/{hook_id}/deliveries", params=params, headers=lender.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_a_change_is_delivered_once_signed_with_a_stable_id(app, client, data_dir, lender, receiver):
    hook = subscribe(client, lender, receiver.url)
    person = make_person(client, data_dir)
    consent_id = grant(client, person.headers, lender.id)
    consumer = consumer_of(app)
    now = utcnow()
    run(app, consumer, now)
    run(app, consumer, now + timedelta(minutes=5))  # nothing twice
    assert len(receiver.received) == 1
    got = receiver.received[0]
    body = json.loads(got["body"])
    assert body["type"] == "consent.given" and body["data"]["consent_id"] == consent_id
    assert got["headers"]["webhook-id"] == body["id"] and verify(hook["secret"], got)
    assert person.nid not in got["body"].decode()
    feed = client.get("/v1/events", params={"after": body["seq"] - 1}, headers=lender.headers).json()
    assert feed["items"][0]["id"] == body["id"]  # the same id in the feed and the delivery
    [row] = deliveries(client, lender, hook["id"])
    assert row["state"] == "delivered" and row["attempts"] == 1 and row["last_status"] == 204


def test_a_receiver_down_for_a_while_gets_every_event_after_it_returns(app, client, data_dir, lender, receiver):
    hook = subscribe(client, lender, receiver.url)
    consumer = consumer_of(app, backoff=Backoff(base=10, cap=40, max_attempts=10))
    receiver.stop()  # down: connection refused
    person = make_person(client, data_dir)
    ids = [grant(client, person.headers, lender.id) for _ in range(3)]
    now = utcnow()
    for step in range(4):  # a few minutes of failed attempts, backing off
        run(app, consumer, now)
        now += timedelta(seconds=45)
    rows = deliveries(client, lender, hook["id"])
    assert {r["state"] for r in rows} == {"pending"} and all(r["attempts"] >= 2 for r in rows)
    assert all(r["last_error"] for r in rows)
    receiver.start()  # back, on the same port
    run(app, consumer, now + timedelta(minutes=2))
    got = [json.loads(r["body"])["data"]["consent_id"] for r in receiver.received]
    assert sorted(got) == sorted(ids)
    assert {r["state"] for r in deliveries(client, lender, hook["id"])} == {"delivered"}


def test_a_receiver_answering_500_is_retried_then_dead_lettered(app, client, data_dir, lender, receiver):
    hook = subscribe(client, lender, receiver.url)
    receiver.status = 500
    consumer = consumer_of(app, backoff=Backoff(base=1, cap=4, max_attempts=3))
    person = make_person(client, data_dir)
    grant(client, person.headers, lender.id)
    now = utcnow()
    for _ in range(5):
        run(app, consumer, now)
        now += timedelta(seconds=10)
    assert len(receiver.received) == 3  # the same event, three attempts, one id
    assert len(set(receiver.ids())) == 1
    [row] = deliveries(client, lender, hook["id"])
    assert row["state"] == "dead" and row["attempts"] == 3 and row["last_status"] == 500
    assert deliveries(client, lender, hook["id"], state="dead")[0]["id"] == row["id"]
    dead = dispatch.dead_letters(app.state.register.sessions, limit=1000)
    assert row["id"] in {d["id"] for d in dead}  # the operator sees it too (register events dead)
    assert dispatch.retry_dead(app.state.register.sessions, delivery_id=row["id"], now=now) == 1
    receiver.status = 200
    run(app, consumer, now)
    assert deliveries(client, lender, hook["id"])[0]["state"] == "delivered"


def test_a_receiver_that_times_out_is_retried(app, client, data_dir, lender, receiver):
    hook = subscribe(client, lender, receiver.url)
    receiver.delay = 1.5
    consumer = consumer_of(app, timeout=0.3)
    person = make_person(client, data_dir)
    grant(client, person.headers, lender.id)
    now = utcnow()
    run(app, consumer, now)
    [row] = deliveries(client, lender, hook["id"])
    assert row["state"] == "pending" and row["last_error"] == "timed out" and row["next_attempt_at"]
    receiver.delay = 0
    run(app, consumer, now + timedelta(seconds=60))
    assert deliveries(client, lender, hook["id"])[0]["state"] == "delivered"


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(app, client, data_dir, lender, receiver, clock):
    hook = subscribe(client, lender, receiver.url)
    r = client.post(f"/v1/webhooks/{hook['id']}/secret", headers=lender.headers)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != hook["secret"]
    consumer = consumer_of(app)
    person = make_person(client, data_dir)
    grant(client, person.headers, lender.id)
    run(app, consumer, clock.now)
    got = receiver.received[-1]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 2
    assert verify(new, got) and verify(hook["secret"], got)
    grant(client, person.headers, lender.id)
    run(app, consumer, clock.now + timedelta(hours=25))  # the old secret no longer signs
    got = receiver.received[-1]
    assert verify(new, got) and not verify(hook["secret"], got)


def test_only_the_wanted_events_are_sent(app, client, data_dir, lender, receiver):
    subscribe(client, lender, receiver.url, events=["dispute.opened", "report"])
    person = make_person(client, data_dir)
    grant(client, person.headers, lender.id)
    run(app, consumer_of(app), utcnow())
    assert receiver.received == []


def test_deleting_a_webhook_stops_deliveries_and_another_institution_sees_nothing(
        app, client, data_dir, lender, receiver, admin_headers):
    from tests.factories import make_institution

    hook = subscribe(client, lender, receiver.url)
    other = make_institution(client, admin_headers, "lender")
    for method, path in (("get", f"/v1/webhooks/{hook['id']}/deliveries"), ("post", f"/v1/webhooks/{hook['id']}/secret"),
                         ("delete", f"/v1/webhooks/{hook['id']}")):
        assert getattr(client, method)(path, headers=other.headers).status_code == 404
    assert client.get("/v1/webhooks", headers=other.headers).json()["items"] == []
    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=lender.headers).status_code == 200
    person = make_person(client, data_dir)
    grant(client, person.headers, lender.id)
    run(app, consumer_of(app), utcnow())
    assert receiver.received == []
    assert client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=lender.headers).status_code == 404


# --- where a webhook may point (server-side request forgery) ---------------------------------------


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://224.0.0.1/", "http://0.0.0.0/",
    "ftp://127.0.0.1/", "file:///etc/passwd", "http://user:pw@127.0.0.1/", "not a url",
])
def test_development_refuses_link_local_multicast_and_other_schemes(client, lender, url):
    r = client.post("/v1/webhooks", json={"url": url, "events": ["consent"]}, headers=lender.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "webhook_url_refused"


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/", "https://127.0.0.1/", "https://localhost/", "https://10.1.2.3/", "https://192.168.0.1/",
    "https://172.16.0.1/", "https://100.64.0.1/", "https://[::1]/", "https://[::ffff:127.0.0.1]/",
    "https://[fd00::1]/", "https://169.254.169.254/", "https://240.0.0.1/",
])
def test_production_refuses_all_but_https_to_public_addresses(url):
    with pytest.raises(InvalidInput) as exc:
        check_url(url, production=True)
    assert exc.value.code == "webhook_url_refused"
    check_url("https://93.184.216.34/hooks", production=True)  # a public address passes


def test_production_refuses_a_name_that_rebinds_to_loopback_at_delivery(app, client, data_dir, lender, receiver):
    answers = {"hooks.lender.example": ["93.184.216.34"]}
    resolve = lambda host, port: answers[host]  # noqa: E731 - the DNS the attacker controls
    state = app.state.register
    principal = Principal(role=Role.lender, name=lender.name, institution_id=lender.id)
    with state.sessions.begin() as s:
        w, _ = create_webhook(s, state.cipher, principal=principal, url="https://hooks.lender.example/hooks",
                              events=["consent"], production=True, now=utcnow(), resolve=resolve)
    answers["hooks.lender.example"] = ["127.0.0.1"]  # rebound, after registration
    person = make_person(client, data_dir)
    grant(client, person.headers, lender.id)
    run(app, consumer_of(app, production=True, resolve=resolve), utcnow())
    [row] = deliveries(client, lender, w.id)
    assert row["state"] == "pending" and "loopback" in row["last_error"]
    assert receiver.received == []
    with pytest.raises(InvalidInput):  # and a name that resolves to loopback is refused at registration
        with state.sessions.begin() as s:
            create_webhook(s, state.cipher, principal=principal, url="https://hooks.lender.example/",
                           events=["consent"], production=True, now=utcnow(), resolve=resolve)


@pytest.mark.parametrize("events", [["credit_ban"], ["credit_ban.set"], ["credit_ban.lifted"],
                                    ["consent", "credit_ban.set"]])
def test_a_persons_own_events_are_refused_since_no_institution_ever_receives_them(client, lender, events):
    r = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": events}, headers=lender.headers)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_events"
    assert "only to the person" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "events"]
    assert client.get("/v1/webhooks", headers=lender.headers).json()["items"] == []


def test_every_type_an_institution_may_subscribe_to_is_one_its_feed_can_carry():
    from register.storage import outbox
    assert set(outbox.INSTITUTION_TYPES) | set(outbox.PERSON_ONLY_TYPES) == set(outbox.EVENT_TYPES)
    assert not {t.split(".")[0] for t in outbox.PERSON_ONLY_TYPES} & set(outbox.INSTITUTION_PREFIXES)


def test_a_url_that_is_not_absolute_is_named_so(client, lender):
    r = client.post("/v1/webhooks", json={"url": "not a url", "events": ["consent"]}, headers=lender.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "webhook_url_refused"
    assert "not an absolute URL" in r.json()["detail"]
    assert "http or https" not in r.json()["detail"]


def test_an_institution_reads_its_own_webhook_as_in_the_list_and_not_anothers(client, admin_headers, lender):
    from tests.factories import make_institution
    hook = subscribe(client, lender, "http://127.0.0.1:9/hooks", events=("consent", "dispute.opened"))
    r = client.get(f"/v1/webhooks/{hook['id']}", headers=lender.headers)
    assert r.status_code == 200, r.text
    assert r.json() == client.get("/v1/webhooks", headers=lender.headers).json()["items"][0]
    assert "whsec_" not in r.text and "secret" not in r.json()
    other = make_institution(client, admin_headers)
    r = client.get(f"/v1/webhooks/{hook['id']}", headers=other.headers)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    client.delete(f"/v1/webhooks/{hook['id']}", headers=lender.headers)
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=lender.headers).status_code == 404


def test_a_pass_with_nothing_to_deliver_makes_no_http_client(app, client, data_dir, lender, receiver, monkeypatch):
    """Events that no webhook wants (a register whose institutions subscribed to nothing) cost the dispatcher
    no HTTP client: making one builds a TLS context, ~20 ms of CPU, which each pass paid (BENCHMARKS.md, twelfth
    round). The first delivery due makes the pass's one client, shared by the pass's deliveries."""
    import httpx

    from register.services import webhooks

    made = []

    class Counted(httpx.Client):
        def __init__(self, *a, **kw) -> None:
            made.append(1)
            super().__init__(*a, **kw)

    monkeypatch.setattr(webhooks.httpx, "Client", Counted)
    person = make_person(client, data_dir)
    consumer = consumer_of(app)
    grant(client, person.headers, lender.id)
    run(app, consumer, utcnow())
    assert made == [] and receiver.received == []
    subscribe(client, lender, receiver.url)
    for _ in range(2):
        grant(client, person.headers, lender.id)
    run(app, consumer, utcnow())
    assert len(receiver.received) == 2 and made == [1]
