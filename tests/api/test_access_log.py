"""Every look and every change leaves an access event, in the same transaction; nobody can alter them."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from register.storage.obligations import get_obligation
from tests.api.test_exposure import events_for_request, query
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body


class TestEveryRequestLeavesAnEvent:
    def test_each_action_writes_exactly_its_event(self, app, client, data_dir, lender, regulator):
        person = make_person(client, data_dir)
        ref = new_ref()
        steps = [
            ("obligation:created", lambda: client.put(f"/v1/obligations/{ref}", headers=lender.headers,
                                                      json=obligation_body(debtors=[debtor(person)]))),
            ("obligation:updated", lambda: client.put(f"/v1/obligations/{ref}", headers=lender.headers, json=
                                                      obligation_body(debtors=[debtor(person)], balance=1,
                                                                      as_of="2026-11-02T00:00:00Z"))),
            ("consent:grant", lambda: client.post("/v1/consents", headers=person.headers, json={
                "institution_id": lender.id, "purpose": "credit_application", "expires_at": "2027-01-01T00:00:00Z"})),
            ("consumer:obligations:read", lambda: client.get("/v1/me/obligations", headers=person.headers)),
            ("consumer:consents:read", lambda: client.get("/v1/me/consents", headers=person.headers)),
            ("consumer:access_log:read", lambda: client.get("/v1/me/access-log", headers=person.headers)),
            ("regulator:events:read", lambda: client.get("/v1/audit/events", headers=regulator.headers)),
            ("regulator:events:search", lambda: client.post("/v1/audit/events/search", headers=regulator.headers,
                                                            json={"country": person.country, "national_id": person.nid})),
            ("obligation:retracted", lambda: client.delete(f"/v1/obligations/{ref}", params={"reason": "x"},
                                                           headers=lender.headers)),
        ]
        for action, call in steps:
            r = call()
            assert r.status_code < 300, (action, r.text)
            events = events_for_request(app, r.headers["x-request-id"])
            assert [e.action for e in events] == [action]

    def test_refused_query_leaves_the_same_trace_as_granted(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        ok = query(client, lender, person, cid)
        client.delete(f"/v1/consents/{cid}", headers=person.headers)
        refused = query(client, lender, person, cid)
        (g,), (f,) = (events_for_request(app, r.headers["x-request-id"]) for r in (ok, refused))
        assert (g.outcome, f.outcome, f.reason) == ("granted", "refused", "consent_revoked")
        for field in ("actor_id", "action", "subject", "purpose", "consent_id"):
            assert getattr(g, field) == getattr(f, field), field


class TestConsumerView:
    def test_person_sees_who_looked_with_names(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        query(client, lender, person, cid)
        client.delete(f"/v1/consents/{cid}", headers=person.headers)
        query(client, lender, person, cid)
        items = client.get("/v1/me/access-log", headers=person.headers).json()["items"]
        looks = [e for e in items if e["action"] == "exposure:query"]
        assert [(e["outcome"], e["actor_name"], e["purpose"], e["consent_id"]) for e in looks] == [
            ("refused", lender.name, "credit_application", cid), ("granted", lender.name, "credit_application", cid)]
        assert all(e["actor_type"] != "consumer" for e in items)

    def test_person_sees_joint_and_guaranteed_debts(self, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers,
                   json=obligation_body(kind="mortgage", debtors=[debtor(x), debtor(y, "co_debtor")]))
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers,
                   json=obligation_body(debtors=[debtor(x), debtor(y, "guarantor")]))
        lines = client.get("/v1/me/obligations", headers=y.headers).json()["obligations"]
        assert sorted(ln["role"] for ln in lines) == ["co_debtor", "guarantor"]
        assert all(ln["creditor"]["name"] == lender.name for ln in lines)

    def test_consumer_x_never_sees_consumer_y(self, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers,
                   json=obligation_body(debtors=[debtor(y)], balance=777_777))
        y_consent = grant(client, y.headers, lender.id)
        query(client, lender, y, y_consent)
        for path in ("/v1/me/obligations", "/v1/me/access-log", "/v1/me/consents", "/v1/consents"):
            r = client.get(path, headers=x.headers)
            assert r.status_code == 200
            assert "777777" not in r.text and y_consent not in r.text, path
        assert client.delete(f"/v1/consents/{y_consent}", headers=x.headers).status_code == 404
        assert client.get("/v1/audit/events", headers=x.headers).status_code == 403
        assert client.get("/v1/obligations", headers=x.headers).status_code == 403


class TestRegulator:
    def test_filters_and_search_by_person(self, client, admin_headers, data_dir, lender, regulator):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        query(client, lender, person, cid)
        r = client.post("/v1/audit/events/search", headers=regulator.headers,
                        json={"country": person.country, "national_id": person.nid, "action": "exposure:query"})
        assert r.status_code == 200 and person.nid not in r.text
        assert [(e["actor_id"], e["outcome"]) for e in r.json()["items"]] == [(lender.id, "granted")]
        by_inst = client.get("/v1/audit/events", params={"institution_id": lender.id, "outcome": "granted"},
                             headers=regulator.headers).json()["items"]
        assert by_inst and all(e["actor_id"] == lender.id and e["outcome"] == "granted" for e in by_inst)

    def test_cursor_pages_through_events(self, client, data_dir, lender, regulator):
        for _ in range(5):
            client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers, json=obligation_body())
        seen, cursor = [], None
        while True:
            params = {"institution_id": lender.id, "limit": 2, **({"cursor": cursor} if cursor else {})}
            doc = client.get("/v1/audit/events", params=params, headers=regulator.headers).json()
            seen += [e["id"] for e in doc["items"]]
            cursor = doc["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 5

    def test_regulator_cannot_report_or_query(self, client, data_dir, lender, regulator):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        assert client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(),
                          headers=regulator.headers).status_code == 403
        assert query(client, regulator, person, cid).status_code == 403

    def test_lender_cannot_read_the_log(self, client, lender):
        assert client.get("/v1/audit/events", headers=lender.headers).status_code == 403


class TestAppendOnly:
    """The operator's own SQL cannot alter or remove an event: the database refuses."""

    @pytest.mark.parametrize("statement", [
        "UPDATE access_events SET outcome = 'granted' WHERE outcome = 'refused'",
        "DELETE FROM access_events",
    ])
    def test_update_and_delete_are_refused(self, client, data_dir, lender, database_url, statement):
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers, json=obligation_body())
        # a refusal of this test's own for the UPDATE to turn into a grant (not one an earlier test left)
        unknown_consent = "00000000-0000-4000-8000-000000000000"
        assert query(client, lender, make_person(client, data_dir), unknown_consent).status_code == 403
        engine = create_engine(database_url)
        try:
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM access_events")).scalar() > 0
        finally:
            engine.dispose()

    def test_truncate_is_refused_on_postgres(self, backend, database_url, client, lender):
        if backend != "postgres":
            pytest.skip("SQLite has no TRUNCATE")
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers, json=obligation_body())
        engine = create_engine(database_url)
        try:
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text("TRUNCATE access_events"))
        finally:
            engine.dispose()


class TestEventFailureFailsTheRequest:
    """If the event cannot be written, the request fails and its work is not kept."""

    @pytest.fixture
    def refuse_events_of(self, database_url, backend):
        engine = create_engine(database_url)
        created: list[str] = []

        def install(actor_id: str) -> None:
            with engine.begin() as conn:
                if backend == "postgres":
                    conn.execute(text(f"""
                        CREATE FUNCTION refuse_{len(created)}() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN IF NEW.actor_id = '{actor_id}' THEN RAISE EXCEPTION 'disk full'; END IF;
                        RETURN NEW; END $$"""))
                    conn.execute(text(f"CREATE TRIGGER refuse_{len(created)} BEFORE INSERT ON access_events "
                                      f"FOR EACH ROW EXECUTE FUNCTION refuse_{len(created)}()"))
                else:
                    conn.execute(text(f"CREATE TRIGGER refuse_{len(created)} BEFORE INSERT ON access_events "
                                      f"WHEN NEW.actor_id = '{actor_id}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
            created.append(actor_id)

        yield install
        with engine.begin() as conn:
            for i in range(len(created)):
                if backend == "postgres":
                    conn.execute(text(f"DROP TRIGGER refuse_{i} ON access_events"))
                    conn.execute(text(f"DROP FUNCTION refuse_{i}()"))
                else:
                    conn.execute(text(f"DROP TRIGGER refuse_{i}"))
        engine.dispose()

    def test_report_is_not_kept(self, app, client, admin_headers, lender, refuse_events_of):
        refuse_events_of(lender.id)
        ref = new_ref()
        r = client.put(f"/v1/obligations/{ref}", headers=lender.headers, json=obligation_body())
        assert r.status_code == 500 and "balance" not in r.text
        with app.state.register.sessions() as s:
            assert get_obligation(s, institution_id=lender.id, external_ref=ref) is None
        other = make_institution(client, admin_headers, "lender")  # the register still works for others
        assert client.put(f"/v1/obligations/{ref}", headers=other.headers, json=obligation_body()).status_code == 201

    def test_exposure_returns_nothing(self, client, data_dir, lender, refuse_events_of):
        person = make_person(client, data_dir)
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers,
                   json=obligation_body(debtors=[debtor(person)], balance=424_242))
        cid = grant(client, person.headers, lender.id)
        refuse_events_of(lender.id)
        r = query(client, lender, person, cid)
        assert r.status_code == 500 and "424242" not in r.text and "totals" not in r.text
