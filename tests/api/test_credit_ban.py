"""The credit ban: set at once, advisory in every exposure answer, logged on every lookup while on, and
lifted only an hour after asked (a lift can be taken back). Time moves through the app's one clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from register.storage.models import AccessEvent
from tests.factories import debtor, grant, in_days, make_person, new_ref, obligation_body


def borrower(client, data_dir, lender):
    person = make_person(client, data_dir)
    r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]),
                   headers=lender.headers)
    assert r.status_code == 201
    return person, grant(client, person.headers, lender.id, days=60)


def ask(client, lender, person, consent_id, purpose="credit_application"):
    r = client.post("/v1/exposure", json={"country": person.country, "national_id": person.nid, "purpose": purpose,
                                          "consent_id": consent_id}, headers=lender.headers)
    assert r.status_code == 200, r.text
    return r


def event_of(app, request_id: str) -> AccessEvent:
    with app.state.register.sessions() as s:
        return s.scalars(select(AccessEvent).where(AccessEvent.request_id == request_id,
                                                   AccessEvent.action == "exposure:query")).one()


def ban(client, person, **body):
    return client.put("/v1/me/credit-ban", json={"reason": "identity_theft", **body}, headers=person.headers)


class TestBan:
    def test_without_a_ban_the_answer_says_so_and_the_event_is_unmarked(self, app, client, data_dir, lender):
        person, consent = borrower(client, data_dir, lender)
        r = ask(client, lender, person, consent)
        assert r.json()["credit_ban"] == {"active": False}
        assert "credit_ban_active" not in (event_of(app, r.headers["x-request-id"]).details or {})
        assert client.get("/v1/me/credit-ban", headers=person.headers).json()["active"] is False

    def test_a_ban_takes_effect_at_once_and_every_lookup_carries_and_logs_it(self, app, client, data_dir, lender,
                                                                            regulator):
        person, consent = borrower(client, data_dir, lender)
        r = ban(client, person)
        assert r.status_code == 200 and r.json()["active"] is True and r.json()["reason"] == "identity_theft"
        answer = ask(client, lender, person, consent)
        top = answer.json()["credit_ban"]
        assert top["active"] is True and top["reason"] == "identity_theft" and top["since"] == r.json()["since"]
        assert answer.json()["obligations"], "advisory: the data is still given"
        ev = event_of(app, answer.headers["x-request-id"])
        assert ev.details["credit_ban_active"] is True and ev.purpose == "credit_application"
        # the person sees that lookup, marked
        log = client.get("/v1/me/access-log", headers=person.headers).json()["items"]
        mine = next(e for e in log if e["id"] == ev.id)
        assert mine["details"]["credit_ban_active"] is True
        # the regulator finds who looked while it was on
        seen = client.get("/v1/audit/events", params={"action": "exposure:query", "institution_id": lender.id,
                                                      "limit": 1000}, headers=regulator.headers).json()["items"]
        assert next(e for e in seen if e["id"] == ev.id)["details"]["credit_ban_active"] is True

    def test_a_lift_waits_an_hour_and_can_be_taken_back(self, app, client, data_dir, lender, clock):
        person, consent = borrower(client, data_dir, lender)
        assert ban(client, person, reason="self_control").status_code == 200
        r = client.delete("/v1/me/credit-ban", headers=person.headers)
        assert r.status_code == 202
        asked = datetime.fromisoformat(r.json()["lift_requested_at"])
        assert datetime.fromisoformat(r.json()["lift_effective_at"]) - asked == timedelta(hours=1)
        clock.now += timedelta(minutes=59)
        assert ask(client, lender, person, consent).json()["credit_ban"]["active"] is True
        # taken back within the hour: the ban stays
        again = ban(client, person, reason="self_control")
        assert again.json()["active"] and again.json()["lift_effective_at"] is None
        clock.now += timedelta(minutes=2)
        assert ask(client, lender, person, consent).json()["credit_ban"]["active"] is True
        # lifted for real this time
        client.delete("/v1/me/credit-ban", headers=person.headers)
        clock.now += timedelta(hours=1, seconds=1)
        assert ask(client, lender, person, consent).json()["credit_ban"] == {"active": False}
        assert client.get("/v1/me/credit-ban", headers=person.headers).json()["active"] is False

    def test_a_second_lift_request_does_not_move_the_time(self, client, data_dir, lender, clock):
        person, _ = borrower(client, data_dir, lender)
        ban(client, person)
        first = client.delete("/v1/me/credit-ban", headers=person.headers).json()["lift_effective_at"]
        clock.now += timedelta(minutes=10)
        assert client.delete("/v1/me/credit-ban", headers=person.headers).json()["lift_effective_at"] == first

    def test_a_ban_with_an_end_ends_by_itself(self, client, data_dir, lender, clock):
        person, consent = borrower(client, data_dir, lender)
        assert ban(client, person, until=in_days(7, now=clock.now)).json()["active"] is True
        clock.now += timedelta(days=7, seconds=1)
        assert ask(client, lender, person, consent).json()["credit_ban"]["active"] is False

    def test_a_person_unknown_to_the_register_can_set_one(self, client, data_dir, lender):
        stranger = make_person(client, data_dir)  # no debts: the moment a thief would apply in their name
        assert ban(client, stranger).json()["active"] is True
        r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(stranger)]),
                       headers=lender.headers)
        assert r.status_code == 201
        consent = grant(client, stranger.headers, lender.id)
        assert ask(client, lender, stranger, consent).json()["credit_ban"]["active"] is True

    def test_lifting_without_a_ban_is_404(self, client, data_dir):
        assert client.delete("/v1/me/credit-ban", headers=make_person(client, data_dir).headers).status_code == 404

    @pytest.mark.parametrize("body", [{"reason": "bored"}, {"reason": "other", "until": "2020-01-01T00:00:00Z"},
                                      {"reason": "other", "until": "next week"}, {"reason": "other", "extra": 1},
                                      {"reason": True}])
    def test_bad_requests_are_refused_and_set_nothing(self, client, data_dir, body):
        person = make_person(client, data_dir)
        r = client.put("/v1/me/credit-ban", json=body, headers=person.headers)
        assert r.status_code == 422, r.text
        assert client.get("/v1/me/credit-ban", headers=person.headers).json()["active"] is False

    def test_one_persons_ban_is_not_anothers(self, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        ban(client, x)
        assert client.get("/v1/me/credit-ban", headers=y.headers).json()["active"] is False
        assert client.delete("/v1/me/credit-ban", headers=y.headers).status_code == 404
        assert client.get("/v1/me/credit-ban", headers=x.headers).json()["active"] is True

    def test_institutions_cannot_set_or_lift_it(self, client, lender, regulator):
        for inst in (lender, regulator):
            assert client.put("/v1/me/credit-ban", json={"reason": "other"}, headers=inst.headers).status_code == 403
            assert client.delete("/v1/me/credit-ban", headers=inst.headers).status_code == 403

    def test_setting_and_lifting_are_logged(self, app, client, data_dir):
        person = make_person(client, data_dir)
        r1 = ban(client, person)
        r2 = client.delete("/v1/me/credit-ban", headers=person.headers)
        with app.state.register.sessions() as s:
            actions = [e.action for e in s.scalars(select(AccessEvent).where(AccessEvent.request_id.in_(
                [r1.headers["x-request-id"], r2.headers["x-request-id"]])).order_by(AccessEvent.seq))]
        assert actions == ["credit_ban:set", "credit_ban:lift"]
