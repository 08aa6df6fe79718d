"""The regulator's view of one institution's lookups: by kind of consent, granted and refused, and the
granted ones without follow-up (no change of a line naming the person reported by the institution within
REGISTER_FOLLOW_UP_DAYS). Every test runs on SQLite and PostgreSQL; time moves through the app's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from register.storage.models import AccessEvent
from tests.api.test_exposure import events_for_request, query
from tests.factories import (
    attest, debtor, in_days, make_institution, make_person, new_ref, obligation_body,
)

MISSING = "00000000-0000-4000-8000-000000000000"


def lookups(client, regulator, institution_id: str, **params):
    return client.get(f"/v1/audit/institutions/{institution_id}/lookups", params=params, headers=regulator.headers)


def report_line(client, inst, person, clock) -> None:
    """`inst` reports a new line naming `person`, now (by the app's clock)."""
    as_of = clock.now.isoformat().replace("+00:00", "Z")
    r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)], as_of=as_of),
                   headers=inst.headers)
    assert r.status_code == 201, r.text


def given(client, person, inst, clock) -> str:
    """A consent the person gives in the register, valid from the app's clock."""
    r = client.post("/v1/consents", json={"institution_id": inst.id, "purpose": "credit_application",
                                          "expires_at": in_days(28, now=clock.now)}, headers=person.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def attested(client, inst, person, clock) -> str:
    r = attest(client, inst, person, now=clock.now)
    assert r.status_code == 201, r.text
    return r.json()["id"]


class TestFollowUp:
    def test_lookups_without_a_report_within_the_window_are_counted(self, client, admin_headers, data_dir, lender,
                                                                     regulator, clock):
        other = make_institution(client, admin_headers, "lender")
        p1, p2, p3, p4 = (make_person(client, data_dir) for _ in range(4))
        # Day 0: two attested lookups (P1, P2) and one with the person's own consent (P3).
        for p in (p1, p2):
            assert query(client, lender, p, attested(client, lender, p, clock)).status_code == 200
        assert query(client, lender, p3, given(client, p3, lender, clock)).status_code == 200
        # Day 10: the lender lends to P1 and reports it; another lender reports a line of P2's (not a follow-up).
        clock.advance(days=10)
        report_line(client, lender, p1, clock)
        report_line(client, other, p2, clock)
        # Day 40: the lender reports P3's line, too late; and looks at P4 (with P4's consent), still pending.
        clock.advance(days=30)
        report_line(client, lender, p3, clock)
        assert query(client, lender, p4, given(client, p4, lender, clock)).status_code == 200
        r = lookups(client, regulator, lender.id)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["institution"] == {"id": lender.id, "name": lender.name, "role": "lender"}
        assert doc["follow_up_days"] == 30
        want = {"attested": (2, 1, 1, 0), "consumer": (2, 0, 1, 1), "no_consent": (0, 0, 0, 0)}
        got = {k: (v["granted"], v["followed_up"], v["without_follow_up"], v["pending"])
               for k, v in doc["lookups"].items()}
        assert got == want
        assert doc["attestations"] == {"recorded": 2, "refused": 0, "refused_by_reason": {}}
        # The pending lookup becomes one without follow-up once its window has passed.
        clock.advance(days=30, seconds=1)
        later = lookups(client, regulator, lender.id).json()["lookups"]["consumer"]
        assert (later["without_follow_up"], later["pending"]) == (2, 0)

    def test_a_change_to_an_existing_line_is_a_follow_up(self, client, data_dir, lender, regulator, clock):
        """A credit-limit review: the person already has a line, and the lender's change of it follows the look."""
        p = make_person(client, data_dir)
        ref = new_ref()
        body = obligation_body(debtors=[debtor(p)], as_of=clock.now.isoformat().replace("+00:00", "Z"))
        assert client.put(f"/v1/obligations/{ref}", json=body, headers=lender.headers).status_code == 201
        clock.advance(days=1)
        assert query(client, lender, p, attested(client, lender, p, clock)).status_code == 200
        clock.advance(days=5)
        changed = {**body, "balance": 1, "as_of": clock.now.isoformat().replace("+00:00", "Z")}
        assert client.put(f"/v1/obligations/{ref}", json=changed, headers=lender.headers).status_code == 200
        clock.advance(days=40)
        counts = lookups(client, regulator, lender.id).json()["lookups"]["attested"]
        assert (counts["granted"], counts["followed_up"], counts["without_follow_up"]) == (1, 1, 0)


class TestCounts:
    def test_refused_lookups_by_kind_and_reason(self, client, admin_headers, data_dir, lender, regulator, clock):
        p = make_person(client, data_dir)
        cid = attested(client, lender, p, clock)
        assert client.delete(f"/v1/consents/{cid}", headers=p.headers).status_code == 200
        assert query(client, lender, p, cid).json()["code"] == "consent_revoked"
        assert query(client, lender, p, MISSING).json()["code"] == "consent_missing"
        other = make_institution(client, admin_headers, "lender")
        assert query(client, other, p, cid).json()["code"] == "consent_mismatch"  # counted for `other` only
        assert attest(client, lender, p, reference="APP-LOOKUPS-1", now=clock.now).status_code == 201
        reused = attest(client, lender, make_person(client, data_dir), reference="APP-LOOKUPS-1", now=clock.now)
        assert reused.status_code == 409
        doc = lookups(client, regulator, lender.id).json()
        assert doc["lookups"]["attested"]["refused_by_reason"] == {"consent_revoked": 1}
        assert doc["lookups"]["no_consent"]["refused_by_reason"] == {"consent_missing": 1}
        assert doc["lookups"]["consumer"]["refused"] == 0
        assert doc["attestations"] == {"recorded": 2, "refused": 1, "refused_by_reason": {"reference_reused": 1}}
        assert lookups(client, regulator, other.id).json()["lookups"]["attested"]["refused"] == 1

    def test_from_and_to_are_inclusive_utc_days(self, client, data_dir, lender, regulator, clock):
        p = make_person(client, data_dir)
        first = clock.now.date()
        assert query(client, lender, p, attested(client, lender, p, clock)).status_code == 200
        clock.advance(days=2)
        assert query(client, lender, p, attested(client, lender, p, clock)).status_code == 200

        def granted(**params) -> int:
            return lookups(client, regulator, lender.id, **params).json()["lookups"]["attested"]["granted"]

        assert granted() == 2
        assert granted(**{"from": first.isoformat(), "to": first.isoformat()}) == 1
        assert granted(**{"from": (first + timedelta(days=1)).isoformat()}) == 1
        assert granted(to=(first + timedelta(days=1)).isoformat()) == 1
        assert granted(**{"from": "1900-01-01", "to": "9999-12-31"}) == 2
        doc = lookups(client, regulator, lender.id, **{"from": first.isoformat()}).json()
        assert (doc["first_day"], doc["last_day"]) == (first.isoformat(), None)

    @pytest.mark.parametrize("params", [{"from": "2026-11-02", "to": "2026-11-01"}, {"from": "2026-13-01"},
                                        {"to": "1 Nov 2026"}, {"from": "2026-11-01T00:00:00Z"}])
    def test_bad_dates_are_422(self, client, lender, regulator, params):
        r = lookups(client, regulator, lender.id, **params)
        assert r.status_code == 422 and r.json()["code"] in ("invalid_range", "validation_error")


class TestTheRead:
    def test_it_is_an_access_event_and_names_nobody(self, app, client, data_dir, lender, regulator, clock):
        p = make_person(client, data_dir)
        assert query(client, lender, p, attested(client, lender, p, clock)).status_code == 200
        r = lookups(client, regulator, lender.id, to="2099-01-01")
        assert r.status_code == 200
        (ev,) = events_for_request(app, r.headers["x-request-id"])
        assert (ev.action, ev.actor_id, ev.outcome, ev.subject) == ("regulator:lookups:read", regulator.id, "ok", None)
        assert ev.details == {"institution_id": lender.id, "from": None, "to": "2099-01-01"}
        with app.state.register.sessions() as s:
            subject = s.execute(select(AccessEvent.subject).where(AccessEvent.actor_id == lender.id,
                                                                  AccessEvent.action == "exposure:query")).scalar_one()
        assert p.nid not in r.text and p.nid[:8] not in r.text and subject.hex() not in r.text


class TestWhoMayRead:
    @pytest.mark.parametrize("role", ["lender", "collector"])
    def test_institutions_are_403_even_for_their_own(self, client, admin_headers, role):
        inst = make_institution(client, admin_headers, role)
        r = client.get(f"/v1/audit/institutions/{inst.id}/lookups", headers=inst.headers)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"

    def test_the_operator_and_a_person_are_403_and_anonymous_401(self, client, admin_headers, data_dir, lender):
        path = f"/v1/audit/institutions/{lender.id}/lookups"
        assert client.get(path, headers=admin_headers).status_code == 403
        assert client.get(path, headers=make_person(client, data_dir).headers).status_code == 403
        assert client.get(path).status_code == 401

    @pytest.mark.parametrize("institution_id", [MISSING, "not-a-uuid", "x" * 36])
    def test_an_unknown_institution_is_404(self, client, regulator, institution_id):
        r = lookups(client, regulator, institution_id)
        assert r.status_code == 404 and r.json()["code"] == "not_found"

    def test_a_regulator_reads_any_institution(self, client, admin_headers, regulator):
        for role in ("lender", "collector", "regulator"):
            inst = make_institution(client, admin_headers, role)
            doc = lookups(client, regulator, inst.id).json()
            assert doc["institution"]["role"] == role
            assert all(v["granted"] == v["refused"] == 0 for v in doc["lookups"].values())
