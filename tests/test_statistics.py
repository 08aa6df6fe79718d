"""Public statistics (issue #21, part 4), on both databases, each test on a database of its own: the
figures add up to what was reported, a row resting on 1 to 9 persons is suppressed with every figure in
it, in JSON, CSV and on the page (drawn as SVG, no script), and the figures are computed once an interval."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from register.domain.statistics import BUCKETS, bucket_of, row, to_csv
from register.services.statistics import Statistics
from tests.conftest import ADMIN_TOKEN, fresh_app
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HIDDEN = {"value": None, "suppressed": True}


class TestSuppression:
    def test_one_to_nine_persons_hide_the_whole_row_and_none_or_ten_do_not(self):
        assert row({"k": 1}, 9, {"lines": 40}) == {"k": 1, "persons": HIDDEN, "lines": HIDDEN}
        assert row({"k": 1}, 1, {"lines": 1}) == {"k": 1, "persons": HIDDEN, "lines": HIDDEN}
        assert row({"k": 1}, 10, {"lines": 40}) == {"k": 1, "persons": {"value": 10}, "lines": {"value": 40}}
        assert row({"k": 1}, 0, {"lines": 0}) == {"k": 1, "persons": {"value": 0}, "lines": {"value": 0}}

    def test_buckets_cover_every_day_once(self):
        assert [bucket_of(d) for d in (0, 1, 30, 31, 60, 61, 90, 91, 180, 181, 10_000)] == [
            "current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "91-180", "91-180", "181+", "181+"]
        assert [b for b, _, _ in BUCKETS] == ["current", "1-30", "31-60", "61-90", "91-180", "181+"]
        with pytest.raises(ValueError):
            bucket_of(-1)

    def test_csv_has_one_line_per_cell_and_leaves_a_hidden_value_empty(self):
        doc = {"a": [row({"country": "SE", "kind": "x"}, 12, {"lines": 14}), row({"country": "NO", "kind": "x"}, 3, {"lines": 3})]}
        lines = list(csv.DictReader(io.StringIO(to_csv(doc, ["a"]))))
        assert [(r["country"], r["measure"], r["value"], r["suppressed"]) for r in lines] == [
            ("SE", "persons", "12", "false"), ("SE", "lines", "14", "false"),
            ("NO", "persons", "", "true"), ("NO", "lines", "", "true")]


@pytest.fixture
def fresh(backend: str, tmp_path: Path, data_dir: Path, keys) -> Iterator[FastAPI]:  # noqa: ANN001
    with fresh_app(backend, tmp_path, data_dir, keys) as app:
        yield app


@pytest.fixture
def client(fresh: FastAPI) -> Iterator[TestClient]:
    with TestClient(fresh, raise_server_exceptions=False) as c:
        yield c


def put(client: TestClient, inst, person, **overrides) -> str:  # noqa: ANN001
    r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)], **overrides),
                   headers=inst.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


class TestFigures:
    def test_they_add_up_and_small_rows_are_hidden_everywhere(self, fresh, client, data_dir):
        se = make_institution(client, ADMIN, "lender", country="SE")
        no = make_institution(client, ADMIN, "lender", country="NO")
        collector = make_institution(client, ADMIN, "collector", country="SE")
        many = [make_person(client, data_dir) for _ in range(12)]
        few = [make_person(client, data_dir) for _ in range(3)]
        for i, p in enumerate(many):  # 12 SE loans of 1 000 000 öre; 2 of them 45 days late
            late = {"status": "overdue", "overdue_amount": 50_000, "days_past_due": 45} if i < 2 else {}
            put(client, se, p, balance=1_000_000, **late)
        for p in few:  # 3 NO cards: too few to show
            put(client, no, p, kind="credit_card", currency="NOK", balance=7_000, original_amount=None,
                matures_on=None, credit_limit=10_000)
        for p in many[:10]:  # 10 persons with a collector
            put(client, collector, p, kind="collection_claim", status="in_collection", balance=90_000,
                overdue_amount=90_000, days_past_due=200, monthly_payment=None, matures_on=None)
        closed = put(client, se, many[0], balance=5)  # closed lines are not counted
        for p in many[:11]:  # 11 persons looked up, once each, and one refusal (no consent)
            consent = grant(client, p.headers, se.id)
            r = client.post("/v1/exposure", headers=se.headers, json={
                "country": "SE", "national_id": p.nid, "purpose": "credit_application", "consent_id": consent})
            assert r.status_code == 200, r.text
        assert client.post("/v1/exposure", headers=se.headers, json={
            "country": "SE", "national_id": few[0].nid, "purpose": "credit_application",
            "consent_id": "00000000-0000-4000-8000-000000000000"}).status_code in (403, 404)
        assert closed

        r = client.get("/v1/statistics")
        assert r.status_code == 200, r.text
        doc = r.json()
        rows = {(x["country"], x["kind"]): x for x in doc["obligations"]}
        assert rows[("SE", "instalment_loan")] == {
            "country": "SE", "kind": "instalment_loan", "currency": "SEK", "persons": {"value": 12},
            "lines": {"value": 13}, "balance": {"value": 12_000_005}}
        assert rows[("NO", "credit_card")]["persons"] == HIDDEN and rows[("NO", "credit_card")]["balance"] == HIDDEN
        assert rows[("SE", "collection_claim")]["persons"]["value"] == 10
        arrears = {(x["country"], x["bucket"]): x["persons"] for x in doc["arrears"]}
        # SE: the 10 with a collector are 200 days late; of the other 2, both 0 days (the 2 late ones
        # are among the 10).
        assert arrears[("SE", "181+")]["value"] == 10 and arrears[("SE", "current")] == HIDDEN
        assert arrears[("NO", "current")] == HIDDEN
        assert doc["collection"] == [{"country": "SE", "persons": {"value": 10},
                                      "claims": {"value": 10}}]
        month = doc["lookups"][-1]
        # 11 looked up with consent, 1 refused (the refusal is a lookup of a 12th person too)
        assert (month["persons"]["value"], month["granted"]["value"], month["refused"]["value"]) == (12, 11, 1)
        assert all(x["persons"] == {"value": 0} for x in doc["lookups"][:-1])
        assert few[0].nid not in r.text and many[0].nid not in r.text

        csv_r = client.get("/v1/statistics?format=csv")
        assert csv_r.headers["content-type"].startswith("text/csv")
        cells = list(csv.DictReader(io.StringIO(csv_r.text)))
        no_cards = [c for c in cells if c["country"] == "NO" and c["section"] == "obligations"]
        assert {(c["value"], c["suppressed"]) for c in no_cards} == {("", "true")} and len(no_cards) == 3

        page = client.get("/app/statistics?lang=en")
        assert page.status_code == 200
        assert "<svg" in page.text and "<script" not in page.text.split("</head>", 1)[1] and "style=" not in page.text
        words = text_of(page.text)
        assert "fewer than 10 persons" in words and "12 000,05" not in words
        assert "Sweden Loan paid in instalments 12 13 SEK 120,000.05" in words, words[:2000]

    def test_a_bad_format_is_refused_plainly(self, client):
        r = client.get("/v1/statistics?format=xml")
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")

    def test_computed_once_an_interval(self, fresh, client, data_dir):
        se = make_institution(client, ADMIN, "lender", country="SE")
        state = fresh.state.register
        held = Statistics(state.sessions, state.clock, seconds=3600)
        fresh_each_time = Statistics(state.sessions, state.clock, seconds=1e-9)
        assert held.current()["obligations"] == fresh_each_time.current()["obligations"] == []
        put(client, se, make_person(client, data_dir))
        assert held.current()["obligations"] == [], "served from memory within the interval"
        assert len(fresh_each_time.current()["obligations"]) == 1

    def test_a_signed_in_person_sees_the_page_too(self, fresh, client, data_dir):
        """The page computes in the request's own transaction: on SQLite a second one in the same thread
        would wait for the writer gate the first holds, forever."""
        from tests.web.pages import sign_in

        person = make_person(client, data_dir)
        browser = sign_in(fresh, person)
        assert browser.get("/app/").status_code == 200
        page = browser.get("/app/statistics?lang=en")
        assert page.status_code == 200 and "The register in figures" in page.text
        assert 'action="/app/sign-out"' in page.text, "a signed-in person keeps their navigation"
