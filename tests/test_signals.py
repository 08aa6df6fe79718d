"""The regulator's signals on a seeded population with injected anomalies (issue 21, SPEC.md "Signals").

A clean population (40 persons, three lenders each looking once at the persons it then lends to, disputes
answered in time) and, injected: a person looked up by three lenders within 24 hours, a lookup while the
person's credit ban was on, a creditor with an overdue dispute, a lender with many lookups and no follow-up,
a line reported five days after its as_of, a lender scanning eight persons in identity-number order (and,
a near miss, another scanning four).
Every injected case must be found and nothing raised on the clean part; the test prints precision and recall.
Each test has a database of its own (signals span the whole register); time moves through the app's clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from random import Random

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from stdnum import luhn

from register.storage.models import AccessEvent, Person
from tests.api.test_exposure import query
from tests.conftest import ADMIN_TOKEN, Clock, fresh_app
from tests.factories import Person as Someone
from tests.factories import attest, debtor, make_institution, make_person, new_ref, obligation_body

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def fresh(backend: str, tmp_path: Path, data_dir: Path, keys) -> Iterator[FastAPI]:  # noqa: ANN001
    # The harvester's burst of attested lookups is what the signal is about, not what the rate limit stops.
    with fresh_app(backend, tmp_path, data_dir, keys, attested_rate_per_second=0) as app:
        app.state.register.clock = Clock()
        yield app


@pytest.fixture
def client(fresh: FastAPI) -> Iterator[TestClient]:
    with TestClient(fresh, raise_server_exceptions=False) as c:
        yield c


def look(client, inst, person, clock) -> str:
    """`inst` looks `person` up with an attested consent, granted; the event's id."""
    r = attest(client, inst, person, now=clock.now)
    assert r.status_code == 201, r.text
    r = query(client, inst, person, r.json()["id"])
    assert r.status_code == 200, r.text
    return event_of(client.app, r.headers["x-request-id"])


def event_of(app, request_id: str) -> str:
    with app.state.register.sessions() as s:
        return s.scalars(select(AccessEvent.id).where(AccessEvent.request_id == request_id,
                                                      AccessEvent.action == "exposure:query")).one()


def in_order(birth: str, first: int, n: int) -> list[Someone]:
    """`n` Swedish numbers born `birth` (YYYYMMDD) with serials first, first+1, ...: a scan in order."""
    return [Someone(country="SE", nid=f"{birth}{s:03d}{luhn.calc_check_digit(birth[2:] + f'{s:03d}')}", headers={})
            for s in range(first, first + n)]


def report(client, inst, person, clock, *, days_late: float = 0) -> str:
    as_of = (clock.now - timedelta(days=days_late)).isoformat().replace("+00:00", "Z")
    r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)], as_of=as_of),
                   headers=inst.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def signals(client, regulator, **params):
    r = client.get("/v1/regulator/signals", params=params, headers=regulator.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


class TestSeededPopulation:
    def test_every_injected_case_is_found_and_nothing_else(self, fresh, client, data_dir):
        clock = fresh.state.register.clock
        t0 = clock.now
        lenders = [make_institution(client, ADMIN, "lender") for _ in range(3)]
        harvester = make_institution(client, ADMIN, "lender")
        regulator = make_institution(client, ADMIN, "regulator")
        persons = [make_person(client, data_dir) for _ in range(40)]
        # Clean: each person is looked up once by one lender, which then lends (a follow-up).
        lines = {}
        for i, p in enumerate(persons):
            inst = lenders[i % 3]
            look(client, inst, p, clock)
            lines[i] = report(client, inst, p, clock)
        # Clean disputes, answered the next day.
        answered = []
        for i in (4, 5):
            r = client.post("/v1/me/disputes", json={"obligation": lines[i], "reason": "repaid", "text": "paid"},
                            headers=persons[i].headers)
            assert r.status_code == 201, r.text
            answered.append((lenders[i % 3], r.json()["id"]))
        # Injected 1: person 0 (lender 0's) is looked up by lenders 1 and 2 within hours.
        clock.advance(hours=2)
        stacked = [look(client, lenders[1], persons[0], clock)]
        clock.advance(hours=3)
        stacked.append(look(client, lenders[2], persons[0], clock))
        # Near miss: person 1 (lender 1's) by lender 0 two hours in and lender 2 a day after that.
        look(client, lenders[0], persons[1], clock)
        # Injected 2: person 2 (lender 2's) sets a credit ban, then lender 2 looks again.
        r = client.put("/v1/me/credit-ban", json={"reason": "identity_theft"}, headers=persons[2].headers)
        assert r.status_code in (200, 201), r.text
        clock.advance(minutes=30)
        during_ban = look(client, lenders[2], persons[2], clock)
        # Injected 3: person 7 (lender 1's) disputes a line; lender 1 never answers.
        r = client.post("/v1/me/disputes", json={"obligation": lines[7], "reason": "not_mine", "text": "not me"},
                        headers=persons[7].headers)
        assert r.status_code == 201, r.text
        overdue = r.json()["id"]
        clock.advance(hours=20)
        for inst, dispute_id in answered:
            r = client.post(f"/v1/disputes/{dispute_id}/answer", json={"outcome": "corrected", "explanation": "x"},
                            headers=inst.headers)
            assert r.status_code == 200, r.text
        clock.advance(hours=5)
        look(client, lenders[2], persons[1], clock)  # 25 h after lender 0's look: never three in one window
        # Injected 5: lender 0 reports a line five days after its as_of (the rule: within two).
        late_line = report(client, lenders[0], persons[3], clock, days_late=5)
        report(client, lenders[1], persons[3], clock, days_late=1.5)  # late-ish, within the rule
        # Injected 4: a harvester looks at 25 persons and reports nothing.
        harvested = [look(client, harvester, p, clock) for p in persons[15:40]]
        # Injected 6: a scanner asks about eight persons in identity-number order, a minute apart (the first
        # has no neighbour before it: seven flagged). Near miss: another scans four (three flagged).
        scanner, slow = make_institution(client, ADMIN, "lender"), make_institution(client, ADMIN, "lender")
        birth = f"19{Random().randrange(50, 99)}0{Random().randrange(1, 9)}1{Random().randrange(0, 9)}"
        scanned = []
        for p in in_order(birth, 100, 8):
            clock.advance(minutes=1)
            scanned.append(look(client, scanner, p, clock))
        near_miss = []
        for p in in_order(birth, 500, 4):
            clock.advance(minutes=1)
            near_miss.append(look(client, slow, p, clock))
        clock.advance(days=31)

        found = {(s["kind"], s["institution_id"] or s["subject"]): s
                 for s in signals(client, regulator, since=(t0 - timedelta(minutes=1)).isoformat())}
        with fresh.state.register.sessions() as s:
            subject = s.scalars(select(AccessEvent.subject).where(AccessEvent.id == stacked[0])).one().hex()
            blind_indexes = {bytes(b).hex() for b in s.scalars(select(Person.blind_index))}
        injected = {("many_lenders_24h", subject), ("lookup_during_ban", lenders[2].id),
                    ("overdue_disputes", lenders[1].id), ("lookups_without_follow_up", harvester.id),
                    ("late_reporting", lenders[0].id), ("sequential_lookups", scanner.id)}
        hits = injected & set(found)
        precision, recall = len(hits) / max(len(found), 1), len(hits) / len(injected)
        print(f"\nsignals: {len(found)} raised, {len(injected)} injected: precision {precision:.2f}, recall {recall:.2f}")
        assert set(found) == injected, sorted(found)

        stacking = found[("many_lenders_24h", subject)]
        assert len(stacking["evidence"]) == 3 and set(stacked) <= set(stacking["evidence"])
        assert stacking["subject"] not in blind_indexes and persons[0].nid not in str(found)
        assert found[("lookup_during_ban", lenders[2].id)]["evidence"] == [during_ban]
        with fresh.state.register.sessions() as s:
            actions = s.execute(select(AccessEvent.action, AccessEvent.details).where(
                AccessEvent.id.in_(found[("overdue_disputes", lenders[1].id)]["evidence"]))).all()
        assert {a for a, _ in actions} == {"dispute:open"} and {d["dispute_id"] for _, d in actions} == {overdue}
        harvest = found[("lookups_without_follow_up", harvester.id)]
        assert harvest["evidence_total"] == 25 and set(harvest["evidence"]) == set(harvested)
        with fresh.state.register.sessions() as s:
            late = s.execute(select(AccessEvent.action, AccessEvent.details).where(
                AccessEvent.id.in_(found[("late_reporting", lenders[0].id)]["evidence"]))).all()
        assert [(a, d["obligation_id"]) for a, d in late] == [("obligation:created", late_line)]
        scan = found[("sequential_lookups", scanner.id)]
        assert scan["evidence"] == scanned[1:] and scan["evidence_total"] == 7
        with fresh.state.register.sessions() as s:  # the flag, and nothing of the number, on the events
            flagged = s.execute(select(AccessEvent.id, AccessEvent.details).where(
                AccessEvent.action == "exposure:query")).all()
        assert {e for e, d in flagged if (d or {}).get("sequential")} == set(scanned[1:]) | set(near_miss[1:])
        assert not any(p.nid[2:] in str(d) or p.nid in str(d) for _, d in flagged for p in in_order(birth, 100, 8))
        # One kind at a time gives the same finding, with the same id.
        again = signals(client, regulator, kind="overdue_disputes", since=(t0 - timedelta(minutes=1)).isoformat())
        assert [x["id"] for x in again] == [found[("overdue_disputes", lenders[1].id)]["id"]]


class TestAccess:
    def test_only_the_regulator_reads_signals_and_the_read_is_recorded(self, fresh, client):
        lender = make_institution(client, ADMIN, "lender")
        regulator = make_institution(client, ADMIN, "regulator")
        assert client.get("/v1/regulator/signals").status_code == 401
        assert client.get("/v1/regulator/signals", headers=lender.headers).status_code == 403
        r = client.get("/v1/regulator/signals", headers=regulator.headers)
        assert r.status_code == 200 and r.json()["items"] == []
        with fresh.state.register.sessions() as s:
            assert s.scalars(select(AccessEvent.actor_id).where(
                AccessEvent.action == "regulator:signals:read")).all() == [regulator.id]

    @pytest.mark.parametrize("params", [{"kind": "nope"}, {"since": "yesterday"}, {"since": "2000-01-01T00:00:00Z"},
                                        {"since": "2999-01-01T00:00:00Z"}])
    def test_a_bad_kind_or_since_is_a_problem(self, fresh, client, params):
        regulator = make_institution(client, ADMIN, "regulator")
        r = client.get("/v1/regulator/signals", params=params, headers=regulator.headers)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
