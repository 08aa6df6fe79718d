"""What we keep about you, and until when (issue #19, part 5): `GET /v1/me/retention` and the page
`/app/what-we-keep` tell a person, for each line naming them, the moment its period ends, and a retention
run after that moment deletes it while one before it does not. Each test has a database of its own,
since a run deletes across the register."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from register.services import retention
from register.storage.models import AccessEvent, Obligation
from tests.conftest import ADMIN_TOKEN, fresh_app
from tests.factories import debtor, make_institution, make_person, new_ref, obligation_body
from tests.web.pages import sign_in

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def fresh(backend: str, tmp_path: Path, data_dir: Path, keys) -> Iterator[FastAPI]:  # noqa: ANN001
    """Norway deletes a normally ended debt at once."""
    with fresh_app(backend, tmp_path, data_dir, keys, retention_by_country={"NO": {"ended": 0}}) as app:
        yield app


@pytest.fixture
def client(fresh: FastAPI) -> Iterator[TestClient]:
    with TestClient(fresh, raise_server_exceptions=False) as c:
        yield c


def put(client: TestClient, inst, ref: str, person, **overrides) -> None:  # noqa: ANN001
    r = client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(person)], **overrides),
                   headers=inst.headers)
    assert r.status_code in (200, 201), r.text


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def left(app: FastAPI, now: datetime) -> set[str]:
    """The references still in the register after a retention run at `now`."""
    assert retention.run(app.state.register.sessions, retention.policy_of(app.state.register.settings), now=now)
    with app.state.register.sessions() as s:
        return set(s.execute(select(Obligation.external_ref)).scalars())


class TestWhatWeKeep:
    def test_each_line_says_when_it_goes_and_a_run_keeps_that_promise(self, fresh, client, data_dir):
        se = make_institution(client, ADMIN, "lender", country="SE")
        no = make_institution(client, ADMIN, "lender", country="NO")
        person, other = make_person(client, data_dir), make_person(client, data_dir)
        live, paid, wrong, paid_no, others = (new_ref() for _ in range(5))
        put(client, se, live, person)
        put(client, se, paid, person)
        put(client, se, wrong, person)
        put(client, no, paid_no, person)
        put(client, se, others, other)
        put(client, se, paid, person, status="closed", balance=0, as_of="2026-11-20T00:00:00Z")
        put(client, no, paid_no, person, status="closed", balance=0, as_of="2026-11-20T00:00:00Z")
        assert client.delete(f"/v1/obligations/{wrong}", params={"reason": "reported in error"},
                              headers=se.headers).status_code == 200

        r = client.get("/v1/me/retention", headers=person.headers)
        assert r.status_code == 200, r.text
        doc = r.json()
        lines = {ln["reference"]: ln for ln in doc["obligations"]}
        assert set(lines) == {live, paid, wrong, paid_no}, "every line naming me, and only mine"
        assert (lines[live]["rule"], lines[live]["kept_until"]) == (None, None)
        for ref, rule, days in ((paid, "ended", 98), (wrong, "retracted", 30), (paid_no, "ended", 0)):
            ln = lines[ref]
            assert ln["rule"] == rule, ref
            assert when(ln["kept_until"]) - when(ln["period_started_at"]) == timedelta(days=days), ref
        assert lines[wrong]["retracted"] is True and lines[paid_no]["creditor"]["country"] == "NO"
        rules = {r["rule"]: r for r in doc["rules"]}
        assert set(rules) == {"ended", "ended_arrears", "retracted", "claim_closed", "exposure_answer",
                              "access_event", "report_file"}
        assert rules["ended"] == {"rule": "ended", "days": 98, "by_country": {"NO": 0}}
        assert rules["access_event"]["days"] == 1825 and rules["access_event"]["by_country"] == {}
        assert person.nid not in r.text

        # The promise, kept: a run a minute before a line's moment keeps it, a minute after deletes it.
        minute = timedelta(minutes=1)
        for ref in sorted((paid_no, wrong, paid), key=lambda x: lines[x]["kept_until"]):
            until = when(lines[ref]["kept_until"])
            assert ref in left(fresh, until - minute), ref
            assert ref not in left(fresh, until + minute), ref
        assert live in left(fresh, until + timedelta(days=3650)), "a live line is kept while it is reported"

    def test_the_page_shows_the_same_in_the_persons_language(self, fresh, client, data_dir):
        se = make_institution(client, ADMIN, "lender", country="SE", name="Sparbanken Syd")
        person = make_person(client, data_dir)
        paid, live = new_ref(), new_ref()
        put(client, se, paid, person)
        put(client, se, live, person)
        put(client, se, paid, person, status="closed", balance=0, as_of="2026-11-20T00:00:00Z")
        until = {ln["reference"]: ln for ln in client.get("/v1/me/retention", headers=person.headers).json()[
            "obligations"]}[paid]["kept_until"]

        browser = sign_in(fresh, person)
        page = browser.get("/app/what-we-keep?lang=sv")
        assert page.status_code == 200
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
        assert "Vad vi sparar om dig, och hur länge" in text
        assert f"referens {paid}" in text and f"referens {live}" in text
        day = when(until).astimezone(ZoneInfo("Europe/Stockholm"))  # the date as a Swedish person's page says it
        assert f"{day.day} {['januari', 'februari', 'mars', 'april', 'maj', 'juni', 'juli', 'augusti', 'september', 'oktober', 'november', 'december'][day.month - 1]} {day.year}" in text  # noqa: E501
        assert "Så länge borgenären rapporterar den" in text and "98 dagar" in text and "1825 dagar" in text
        assert person.nid not in page.text
        en = browser.get("/app/what-we-keep?lang=en").text
        assert 'href="/app/what-we-keep" aria-current="page"' in en
        # The read is recorded as the API's is: one consumer:retention:read per view.
        with fresh.state.register.sessions() as s:
            reads = s.execute(select(AccessEvent.request_id).where(AccessEvent.action == "consumer:retention:read")
                              ).scalars().all()
        assert len(reads) == 3  # the API read above and the two pages

    def test_nothing_named_is_said_plainly(self, fresh, client, data_dir):
        person = make_person(client, data_dir)
        doc = client.get("/v1/me/retention", headers=person.headers).json()
        assert doc["obligations"] == [] and len(doc["rules"]) == 7
        page = sign_in(fresh, person).get("/app/what-we-keep?lang=en").text
        assert "No debt names you." in page

    def test_an_institution_cannot_read_it(self, client):
        lender = make_institution(client, ADMIN, "lender")
        assert client.get("/v1/me/retention", headers=lender.headers).status_code == 403
        assert client.get("/v1/me/retention").status_code == 401
