"""The regulator's figures for one institution (issue 21 point 2, SPEC.md "Institution activity"):
GET /v1/regulator/institutions/{id}/activity and register.services.activity.institution_activity, on a
small scene whose every figure is known; the rules (office hours, spikes, the period) without a database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from register.domain import activity as rules
from register.errors import InvalidInput, NotFound
from register.services.activity import institution_activity
from tests.api.test_exposure import query
from tests.conftest import ADMIN_TOKEN, Clock, fresh_app
from tests.factories import attest, debtor, make_institution, make_person, new_ref, obligation_body

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _wednesday_morning() -> datetime:
    """The last Wednesday 09:00 UTC before now (11:00 in Helsinki: office hours)."""
    now = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return now - timedelta(days=(now.weekday() - 2) % 7)


@pytest.fixture
def fresh(backend: str, tmp_path: Path, data_dir: Path, keys) -> Iterator[FastAPI]:  # noqa: ANN001
    with fresh_app(backend, tmp_path, data_dir, keys, attested_rate_per_second=0) as app:
        clock = Clock()
        clock.now = _wednesday_morning()
        app.state.register.clock = clock
        yield app


@pytest.fixture
def client(fresh: FastAPI) -> Iterator[TestClient]:
    with TestClient(fresh, raise_server_exceptions=False) as c:
        yield c


def look(client, inst, person, clock) -> None:
    r = attest(client, inst, person, now=clock.now)
    assert r.status_code == 201, r.text
    r = query(client, inst, person, r.json()["id"])
    assert r.status_code == 200, r.text


def report(client, inst, person, clock, *, days_late: float = 0) -> str:
    as_of = (clock.now - timedelta(days=days_late)).isoformat().replace("+00:00", "Z")
    r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)], as_of=as_of),
                   headers=inst.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


class TestInstitutionActivity:
    def test_every_figure_of_a_known_scene(self, fresh, client, data_dir):
        clock = fresh.state.register.clock
        t0 = clock.now
        lender = make_institution(client, ADMIN, "lender", country="FI")
        other = make_institution(client, ADMIN, "lender")
        regulator = make_institution(client, ADMIN, "regulator")
        persons = [make_person(client, data_dir) for _ in range(5)]
        for p in persons[:3]:  # three granted lookups in office hours, each its own consent
            look(client, lender, p, clock)
        look(client, other, persons[0], clock)  # another's: not counted
        r = query(client, lender, persons[3], "00000000-0000-4000-8000-000000000000")  # refused
        assert r.status_code == 403, r.text
        refusal = r.json()["code"]
        line = report(client, lender, persons[0], clock)  # a follow-up of persons[0]
        report(client, lender, persons[1], clock, days_late=5)  # late (the rule: 2 days)
        report(client, lender, persons[2], clock, days_late=40)  # late and stale
        r = client.post("/v1/me/disputes", json={"obligation": line, "reason": "repaid", "text": "paid"},
                        headers=persons[0].headers)
        assert r.status_code == 201, r.text
        dispute = r.json()["id"]
        clock.advance(hours=2)
        r = client.post(f"/v1/disputes/{dispute}/answer", json={"outcome": "corrected", "explanation": "x"},
                        headers=lender.headers)
        assert r.status_code == 200, r.text
        r = client.put("/v1/me/credit-ban", json={"reason": "identity_theft"}, headers=persons[4].headers)
        assert r.status_code in (200, 201), r.text
        clock.advance(hours=10)  # 21:00 UTC, 23:00 in Helsinki: outside office hours
        look(client, lender, persons[4], clock)

        r = client.get(f"/v1/regulator/institutions/{lender.id}/activity", headers=regulator.headers,
                       params={"from": (t0 - timedelta(hours=1)).isoformat(), "to": (t0 + timedelta(days=1)).isoformat()})
        assert r.status_code == 200, r.text
        a = r.json()
        assert a["institution"]["id"] == lender.id and a["office_hours"]["time_zone"] == "Europe/Helsinki"
        lk = a["lookups"]
        assert (lk["total"], lk["granted"], lk["refused"]) == (5, 4, 1)
        assert lk["refused_by_reason"] == {refusal: 1}
        assert sum(d["granted"] for d in lk["per_day"]) == 4 and [d["day"] for d in lk["per_day"]] == [
            (t0 - timedelta(hours=1)).date().isoformat(), (t0 + timedelta(days=1)).date().isoformat()]
        assert (lk["consents"], lk["per_consent"]) == (4, 1.0)
        assert (lk["outside_office_hours"], lk["outside_office_hours_share"]) == (1, 0.2)
        assert lk["during_ban"] == 1 and lk["spikes"] == []
        assert lk["follow_up"]["pending"] + lk["follow_up"]["followed_up"] == 4
        d = a["disputes"]
        assert (d["open"], d["overdue"], d["answered"], d["answered_late"], d["median_answer_hours"]) == (0, 0, 1, 0, 2.0)
        rp = a["reporting"]
        assert (rp["lines"], rp["stale_lines"], rp["changes"], rp["late_changes"]) == (3, 1, 3, 2)
        assert rp["last_file"] is None and rp["files"] == 0 and rp["file_error_rate"] is None

        # The service reads the same without recording anything; the route recorded its read.
        with fresh.state.register.sessions() as s:
            same = institution_activity(s, lender.id, t0 - timedelta(hours=1), t0 + timedelta(days=1), now=clock.now)
        assert same["lookups"]["total"] == 5 and same["reporting"]["late_changes"] == 2
        r = client.get("/v1/audit/events", params={"action": "regulator:activity:read"}, headers=regulator.headers)
        assert [e["details"]["institution_id"] for e in r.json()["items"]] == [lender.id]

    def test_the_default_period_is_the_30_days_before_now(self, fresh, client):
        lender = make_institution(client, ADMIN, "lender")
        regulator = make_institution(client, ADMIN, "regulator")
        r = client.get(f"/v1/regulator/institutions/{lender.id}/activity", headers=regulator.headers)
        assert r.status_code == 200, r.text
        a = r.json()
        assert datetime.fromisoformat(a["to"]) - datetime.fromisoformat(a["from"]) == timedelta(days=30)
        assert a["lookups"]["total"] == 0 and a["lookups"]["per_consent"] is None and len(a["lookups"]["per_day"]) == 31

    def test_bad_periods_an_unknown_institution_and_other_roles_are_refused(self, fresh, client):
        lender = make_institution(client, ADMIN, "lender")
        regulator = make_institution(client, ADMIN, "regulator")
        url = f"/v1/regulator/institutions/{lender.id}/activity"
        for params in ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
                       {"from": "2026-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}):
            r = client.get(url, params=params, headers=regulator.headers)
            assert r.status_code == 422 and r.json()["code"] == "invalid_range", r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        r = client.get("/v1/regulator/institutions/00000000-0000-4000-8000-000000000000/activity",
                       headers=regulator.headers)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        assert client.get(url, headers=lender.headers).status_code == 403
        assert client.get(url).status_code == 401


class TestRules:
    def test_office_hours_are_local_weekdays_8_to_18(self):
        helsinki = "Europe/Helsinki"
        assert rules.in_office_hours(datetime(2026, 12, 2, 6, 0, tzinfo=UTC), helsinki)  # Wed 08:00 local
        assert not rules.in_office_hours(datetime(2026, 12, 2, 5, 59, tzinfo=UTC), helsinki)
        assert not rules.in_office_hours(datetime(2026, 12, 2, 16, 0, tzinfo=UTC), helsinki)  # 18:00 local
        assert not rules.in_office_hours(datetime(2026, 12, 5, 10, 0, tzinfo=UTC), helsinki)  # Saturday
        assert rules.time_zone(None) == "Europe/Stockholm" and rules.time_zone("PL") == "Europe/Warsaw"

    def test_a_spike_is_three_times_the_baseline_and_20_more(self):
        day = date(2026, 12, 1)
        per_day = {day - timedelta(days=i): 10 for i in range(1, 29)}
        assert rules.spikes({**per_day, day: 30}, [day])[0].baseline == 10.0
        assert rules.spikes({**per_day, day: 29}, [day]) == []  # under 3 times
        small = {day - timedelta(days=i): 1 for i in range(1, 29)}
        assert rules.spikes({**small, day: 20}, [day]) == []  # 3 times, but not 20 more
        assert rules.spikes({day: 20}, [day])[0].lookups == 20  # no history: 20 is a spike

    def test_the_period(self):
        now = datetime(2026, 12, 4, tzinfo=UTC)
        assert rules.check_period(None, None, now) == (now - timedelta(days=30), now)
        with pytest.raises(InvalidInput):
            rules.check_period(now, now, now)
        with pytest.raises(InvalidInput):
            rules.check_period(now - timedelta(days=93), now, now)
        assert rules.median([3.0, 1.0, 2.0, 10.0]) == 2.5 and rules.median([]) is None


def test_an_unknown_institution_is_not_found(fresh):
    with fresh.state.register.sessions() as s, pytest.raises(NotFound):
        institution_activity(s, "00000000-0000-4000-8000-000000000000", None, None)
