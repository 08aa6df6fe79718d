"""The SDK's side of events: iterate the feed, manage webhooks, and verify a delivery the register really
made (to a real HTTP receiver) - a forged, altered, stale or replayed one fails. `register-client events
tail` prints the feed. Both databases."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from register_client import RegisterClient, WebhookUrlRefused, WebhookVerificationError, verify_webhook
from register_client._events import _expected

from register.services import dispatch
from register.services.webhooks import Backoff, WebhookConsumer
from register.storage.types import utcnow
from tests.clients.conftest import BASE_URL
from tests.clients.test_cli import run  # noqa: F401 - the CLI fixture
from tests.events.receiver import Receiver
from tests.factories import grant


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def deliver(app, now=None) -> None:
    consumer = WebhookConsumer(app.state.register.cipher, production=False, timeout=5,
                               backoff=Backoff(base=10, cap=60, max_attempts=3))
    dispatch.fan_out(app.state.register.sessions, consumer, now=now or utcnow())
    consumer.deliver(app.state.register.sessions, now=now or utcnow())


def test_iterate_the_feed_from_any_point(sdk: RegisterClient, client, person, lender):
    ids = [grant(client, person.headers, lender.id) for _ in range(5)]
    events = list(sdk.iter_events(page_size=2))
    assert [e.data["consent_id"] for e in events] == ids and {e.type for e in events} == {"consent.given"}
    assert [e.id for e in sdk.iter_events(after=events[2].seq)] == [e.id for e in events[3:]]
    assert list(sdk.iter_events(after=events[-1].seq)) == []


def test_a_real_delivery_verifies_and_a_forged_or_replayed_one_fails(app, sdk, client, person, lender, receiver):
    hook = sdk.create_webhook(url=receiver.url, events=["consent"])
    assert [w.id for w in sdk.webhooks()] == [hook.id]
    grant(client, person.headers, lender.id)
    deliver(app)
    [got] = receiver.received
    body, headers = got["body"], got["headers"]
    seen: set[str] = set()
    event = verify_webhook(body, headers, hook.secret, seen=seen)
    assert event.type == "consent.given" and event.id == headers["webhook-id"]
    with pytest.raises(WebhookVerificationError, match="before"):  # the same delivery again: a replay
        verify_webhook(body, headers, hook.secret, seen=seen)
    with pytest.raises(WebhookVerificationError, match="tolerance"):  # replayed later, without `seen`
        verify_webhook(body, headers, hook.secret, now=time.time() + 3600)
    altered = body.replace(b"consent.given", b"consent.revoked")
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(altered, headers, hook.secret)
    with pytest.raises(WebhookVerificationError, match="no signature"):  # signed with a key not the register's
        forged_sig = "v1," + __import__("base64").b64encode(
            _expected("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", headers["webhook-id"], headers["webhook-timestamp"],
                      altered)).decode()
        verify_webhook(altered, {**headers, "webhook-signature": forged_sig}, hook.secret)
    with pytest.raises(WebhookVerificationError, match="no signature"):  # a fresh timestamp on an old signature
        verify_webhook(body, {**headers, "webhook-timestamp": str(int(time.time()) + 1)}, hook.secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, {"webhook-id": headers["webhook-id"]}, hook.secret)
    [row] = list(sdk.webhook_deliveries(hook.id))
    assert row.state == "delivered" and row.event_id == event.id


def test_a_rotated_secret_verifies_with_either_secret(app, sdk, client, person, lender, receiver):
    hook = sdk.create_webhook(url=receiver.url, events=["consent.given"])
    new = sdk.rotate_webhook_secret(hook.id)
    grant(client, person.headers, lender.id)
    deliver(app)
    got = receiver.received[-1]
    assert verify_webhook(got["body"], got["headers"], hook.secret)  # a receiver that has not switched yet
    assert verify_webhook(got["body"], got["headers"], new.secret)
    assert verify_webhook(got["body"], got["headers"], [new.secret, hook.secret])
    with pytest.raises(WebhookVerificationError):
        verify_webhook(got["body"], got["headers"], "whsec_" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC")
    one = sdk.webhook(hook.id)
    assert one == sdk.webhooks()[0] and one.previous_secret_until is not None
    assert sdk.delete_webhook(hook.id).id == hook.id
    assert sdk.webhooks() == []


def test_a_refused_url_is_its_own_error(sdk):
    with pytest.raises(WebhookUrlRefused):
        sdk.create_webhook(url="http://169.254.169.254/latest/meta-data/", events=["consent"])


def test_events_tail_prints_the_feed(run, client, person, lender):  # noqa: F811
    ids = [grant(client, person.headers, lender.id) for _ in range(3)]
    result = run("events", "tail", token=lender.token)
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stdout.splitlines() if "consent.given" in x]
    assert [x.split("consent_id=")[1].split()[0] for x in lines] == ids
    first_seq = int(lines[0].split()[0])
    docs = [json.loads(x) for x in run("events", "tail", "--after", str(first_seq), "--json",
                                       token=lender.token).stdout.splitlines()]
    assert [d["data"]["consent_id"] for d in docs] == ids[1:]
