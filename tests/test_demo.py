"""The demo `make run` loads: believable debts, consents and an access history, written through the same
services as the API and readable through the API by each kind of user. On both databases, each test in
a database of its own (the demo creates its institutions by name)."""

from __future__ import annotations

import subprocess
from collections import Counter
from contextlib import contextmanager
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from register.crypto.fields import FieldCipher
from register.crypto.keys import StaticKeys
from register.demo import load_demo_info, seed_demo, write_demo_files
from register.main import create_app
from register.storage.migrate import upgrade
from register.storage.summary import count_contents
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database, make_settings
from tests.factories import consumer_headers


@contextmanager
def seeded(backend: str, tmp_path, **demo_args) -> Iterator[tuple[TestClient, object, object]]:
    url = f"sqlite:///{tmp_path / 'demo.db'}" if backend == "sqlite" else create_pg_database()
    try:
        upgrade(url)
        keys = StaticKeys.generate()
        settings = make_settings(url, tmp_path, accept_test_identities=True)
        app = create_app(settings, keys=keys)
        state = app.state.register
        with state.sessions.begin() as session:
            info = seed_demo(session, FieldCipher(keys), settings, state.tlog, **demo_args)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, info, tmp_path
        state.engine.dispose()
    finally:
        if backend == "postgres":
            drop_pg_database(url)


@pytest.fixture
def demo(backend: str, tmp_path) -> Iterator[tuple[TestClient, object, object]]:
    with seeded(backend, tmp_path, persons=120) as it:
        yield it


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_demo_market_has_every_kind_of_actor_and_debt(demo):
    client, info, _ = demo
    roles = Counter(v["role"] for v in info.institutions.values())
    assert roles["lender"] >= 3 and roles["collector"] == 1 and roles["regulator"] == 1
    kinds, joint, guaranteed, overdue_cards, claims, handed = Counter(), 0, 0, 0, 0, 0
    for key, inst in info.institutions.items():
        if inst["role"] == "regulator":
            continue
        cursor = None
        while True:
            page = client.get("/v1/obligations", params={"limit": 500, **({"cursor": cursor} if cursor else {})},
                              headers=bearer(inst["token"])).json()
            for ob in page["items"]:
                kinds[ob["kind"]] += 1
                roles_on = {d["role"] for d in ob["debtors"]}
                joint += "co_debtor" in roles_on
                guaranteed += "guarantor" in roles_on
                overdue_cards += ob["kind"] == "credit_card" and ob["status"] == "overdue"
                claims += ob["kind"] == "collection_claim" and ob.get("collects") is not None
                # the lenders named the claims back (handed_to): every demo link is confirmed
                assert ob["collection_link"] == ("confirmed" if ob.get("collects") else None), ob["external_ref"]
                handed += ob["handed_to"] is not None
            cursor = page["next_cursor"]
            if not cursor:
                break
    assert {"instalment_loan", "credit_card", "mortgage", "collection_claim"} <= set(kinds)
    assert joint and guaranteed and overdue_cards and claims and handed == claims


def test_the_demo_has_consents_and_an_access_history_the_regulator_sees(demo):
    client, info, _ = demo
    regulator = bearer(info.institutions["regulator"]["token"])
    events, cursor = [], None
    while True:
        page = client.get("/v1/audit/events", params={"limit": 500, **({"cursor": cursor} if cursor else {})},
                          headers=regulator).json()
        events += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    seen = Counter((e["action"], e["outcome"]) for e in events)
    assert seen[("consent:attest", "ok")] == 60
    assert seen[("exposure:query", "granted")] == 45
    assert seen[("exposure:query", "refused")] == 5
    assert seen[("consent:revoke", "ok")] == 6


def test_walkthrough_persons_start_with_no_history_and_others_see_who_looked(demo):
    client, info, data_dir = demo
    walker = consumer_headers(data_dir, "SE", info.persons[0])
    log = client.get("/v1/me/access-log", headers=walker).json()["items"]
    assert log and not [e for e in log if e["action"].startswith(("exposure", "consent"))]  # reports only
    assert client.get("/v1/me/consents", headers=walker).json()["items"] == []
    # The first applicant after them (the demo's 11th person) applied at Nordbank, which looked.
    applicant = consumer_headers(data_dir, "SE", info.applicants[0])
    looks = [e for e in client.get("/v1/me/access-log", headers=applicant).json()["items"]
             if e["action"] == "exposure:query"]
    assert [(e["actor_id"], e["outcome"]) for e in looks] == [(info.institutions["nordbank"]["id"], "granted")]


def test_the_demo_has_disputes_in_every_state_and_credit_bans(demo):
    client, info, _ = demo
    regulator = bearer(info.institutions["regulator"]["token"])
    doc = client.get("/v1/audit/disputes", headers=regulator).json()
    states = Counter(d["state"] for d in doc["items"])
    assert {"open", "overdue", "upheld", "corrected", "withdrawn"} <= set(states), states
    assert sum(c["overdue"] for c in doc["by_institution"]) >= 1
    # a lender sees its own open disputes to answer
    nordbank = bearer(info.institutions["nordbank"]["token"])
    assert client.get("/v1/disputes", params={"state": "open"}, headers=nordbank).status_code == 200
    bans = client.get("/v1/audit/events", params={"action": "credit_ban:set", "limit": 100}, headers=regulator).json()
    assert len(bans["items"]) >= 3


def test_nothing_in_the_demo_happened_after_it_was_made(backend, tmp_path):
    """A dispute answered next week, or a feed event from the future, would mislead whoever audits the demo
    (and the desk's answer-time figures): every moment the demo records is at or before its seeding. The demo
    as `make run` seeds it (300 persons, seed 2026) had one."""
    with seeded(backend, tmp_path) as (client, _, _):
        _nothing_after(client)


def _nothing_after(client) -> None:
    from sqlalchemy import func, select

    from register.storage.event_tables import OutboxEvent
    from register.storage.models import AccessEvent, Dispute

    state = client.app.state.register
    now = state.clock()
    with state.sessions() as s:
        latest = {
            "access event": s.scalar(select(func.max(AccessEvent.occurred_at))),
            "feed event": s.scalar(select(func.max(OutboxEvent.occurred_at))),
            "dispute opened": s.scalar(select(func.max(Dispute.opened_at))),
            "dispute closed": s.scalar(select(func.max(Dispute.closed_at))),
            "dispute statement": s.scalar(select(func.max(Dispute.statement_at))),
        }
    assert None not in latest.values(), latest
    assert {k: v for k, v in latest.items() if v.replace(tzinfo=now.tzinfo) > now} == {}


class TestWhatTheDemoTellsANewcomer:
    def test_a_shell_that_sources_demo_env_has_the_address_ids_tokens_and_persons(self, demo):
        client, info, data_dir = demo
        info.url = "http://127.0.0.1:8123"
        write_demo_files(make_settings("sqlite://", data_dir), info)
        env = data_dir / "demo.env"
        assert env.stat().st_mode & 0o777 == 0o600  # it holds tokens
        shell = subprocess.run(["bash", "-c", 'set -eu; . "$1"; printf "%s\\n" "$R" "$NORDBANK_ID" "$NORDBANK_TOKEN" '
                                '"$REGULATOR_TOKEN" "$PERSON_1" "$PERSON_10"', "bash", str(env)],
                               capture_output=True, text=True, check=True)
        r, nordbank_id, nordbank, regulator, first, tenth = shell.stdout.splitlines()
        assert r == "http://127.0.0.1:8123" and (first, tenth) == (info.persons[0], info.persons[9])
        assert nordbank_id == info.institutions["nordbank"]["id"]
        assert client.get("/v1/obligations", headers=bearer(nordbank)).status_code == 200
        assert client.get("/v1/audit/disputes", headers=bearer(regulator)).status_code == 200
        assert load_demo_info(make_settings("sqlite://", data_dir)).url == "http://127.0.0.1:8123"

    def test_what_the_data_holds_is_counted_as_the_api_shows_it(self, demo):
        client, info, _ = demo
        with client.app.state.register.sessions() as session:
            held = count_contents(session)
        regulator = bearer(info.institutions["regulator"]["token"])
        institutions = client.get("/v1/institutions", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert held.institutions == len(institutions["items"]) == 5
        pages = [client.get("/v1/obligations", params={"limit": 1000}, headers=bearer(inst["token"])).json()
                 for inst in info.institutions.values() if inst["role"] != "regulator"]
        live = sum(len(page["items"]) for page in pages)
        assert held.obligations == live
        disputes = client.get("/v1/audit/disputes", headers=regulator).json()["items"]
        assert held.open_disputes == sum(d["state"] in ("open", "overdue") for d in disputes) > 0
        assert 0 < held.persons <= 120  # the demo's 120 persons, less those who owe nothing
