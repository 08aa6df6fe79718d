"""The transactional outbox: a change that commits is told once, with a stable id; one that rolls back
is told nowhere. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from register.domain.identity.national_id import parse_national_id
from register.domain.permission import Principal, Role
from register.services import consents as consent_service
from register.services import credit_ban as ban_service
from register.services import outbox as told
from register.storage import outbox
from register.storage.models import OutboxEvent
from register.storage.types import utcnow
from tests.factories import debtor, grant, make_person, new_ref, obligation_body


def events_of(app, **where) -> list[OutboxEvent]:
    with app.state.register.sessions() as s:
        stmt = select(OutboxEvent).order_by(OutboxEvent.seq)
        for k, v in where.items():
            stmt = stmt.where(getattr(OutboxEvent, k) == v)
        return list(s.scalars(stmt))


def consumer(person) -> Principal:
    return Principal(role=Role.consumer, name="consumer",
                     national_id=parse_national_id(person.country, person.nid, allow_test=True))


def test_a_consent_given_and_revoked_is_told_once_each(app, client, data_dir, lender):
    person = make_person(client, data_dir)
    consent_id = grant(client, person.headers, lender.id)
    assert client.delete(f"/v1/consents/{consent_id}", headers=person.headers).status_code in (200, 204)
    client.delete(f"/v1/consents/{consent_id}", headers=person.headers)  # again: no second event
    rows = [e for e in events_of(app, institution_id=lender.id) if e.data.get("consent_id") == consent_id]
    assert [e.type for e in rows] == ["consent.given", "consent.revoked"]
    assert rows[0].seq < rows[1].seq and rows[0].id != rows[1].id
    assert person.nid not in repr([e.data for e in rows])  # never an identity number


def test_a_rolled_back_change_records_nothing(app, client, data_dir, lender):
    person = make_person(client, data_dir)
    consent_id = grant(client, person.headers, lender.id)
    state = app.state.register
    with state.sessions() as s:
        before = outbox.last_seq(s)
    with state.sessions() as s:  # the change is made, then the transaction rolls back
        consent_service.revoke_consent(s, state.cipher, principal=consumer(person), consent_id=consent_id,
                                       now=utcnow(), request_id=None)
        ban_service.set_ban(s, state.cipher, principal=consumer(person), reason="identity_theft", until=None,
                            now=utcnow(), request_id=None)
        assert {e.type for e in s.scalars(select(OutboxEvent).where(OutboxEvent.seq > before))} >= {
            "consent.revoked", "credit_ban.set"}  # written in the change's transaction ...
        s.rollback()
    with state.sessions() as s:  # ... and gone with it
        assert list(s.scalars(select(OutboxEvent).where(OutboxEvent.seq > before))) == []
    consents = client.get("/v1/me/consents", headers=person.headers).json()
    assert all(c["revoked_at"] is None for c in (consents["items"] if isinstance(consents, dict) else consents))


def test_dispute_opened_answered_and_overdue(app, client, data_dir, lender, clock):
    person = make_person(client, data_dir)
    ref = new_ref()
    r = client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
    line_id = r.json()["id"]
    opened = client.post("/v1/me/disputes", json={"obligation": line_id, "reason": "repaid", "text": "paid"},
                         headers=person.headers)
    assert opened.status_code == 201, opened.text
    dispute_id = opened.json()["id"]
    mine = [e for e in events_of(app, institution_id=lender.id) if e.data.get("dispute_id") == dispute_id]
    assert [e.type for e in mine] == ["dispute.opened"]
    assert mine[0].data["external_ref"] == ref and mine[0].data["obligation_id"] == line_id

    told.detect_overdue(app.state.register.sessions, now=clock.now)  # not yet due
    clock.advance(days=31)
    told.detect_overdue(app.state.register.sessions, now=clock.now)
    told.detect_overdue(app.state.register.sessions, now=clock.now + timedelta(hours=1))  # once only
    mine = [e for e in events_of(app, institution_id=lender.id) if e.data.get("dispute_id") == dispute_id]
    assert [e.type for e in mine] == ["dispute.opened", "dispute.overdue"]

    answer = client.post(f"/v1/disputes/{dispute_id}/answer", json={"outcome": "upheld", "explanation": "unpaid"},
                         headers=lender.headers)
    assert answer.status_code == 200, answer.text
    mine = [e for e in events_of(app, institution_id=lender.id) if e.data.get("dispute_id") == dispute_id]
    assert mine[-1].type == "dispute.answered" and mine[-1].data["outcome"] == "upheld"


def test_credit_ban_set_and_lifted_concern_the_person_alone(app, client, data_dir):
    person = make_person(client, data_dir)
    assert client.put("/v1/me/credit-ban", json={"reason": "identity_theft"}, headers=person.headers).status_code == 200
    assert client.delete("/v1/me/credit-ban", headers=person.headers).status_code in (200, 202)
    with app.state.register.sessions() as s:
        from register.services.identities import find_person

        pid = find_person(s, app.state.register.cipher, consumer(person).national_id).id
    rows = events_of(app, person_id=pid)
    assert [e.type for e in rows] == ["credit_ban.set", "credit_ban.lifted"]
    assert all(e.institution_id is None for e in rows) and rows[1].data["effective_at"]


@pytest.mark.parametrize("unknown", ["lookup.granted", "consent"])
def test_only_known_types_are_recorded(app, unknown):
    with app.state.register.sessions() as s, pytest.raises(ValueError):
        outbox.record(s, unknown, institution_id=None, subject=None, data={})
