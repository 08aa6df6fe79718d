"""Disputes: a person says a line is wrong; its creditor answers in time, or the regulator sees it run late.

Every test runs on SQLite and PostgreSQL. Time moves through the app's one clock (no waiting).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from register.services.reports import ReportWorker
from register.storage.models import AccessEvent, Dispute
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body

TEXT = "I paid this card in full on 2 November; my bank statement shows it."


def report(client, inst, person, ref=None, **overrides):
    ref = ref or new_ref()
    r = client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(person)], **overrides),
                   headers=inst.headers)
    assert r.status_code in (200, 201), r.text
    return ref, r.json()["id"]


def open_dispute(client, person, line_id, reason="repaid", text=TEXT):
    return client.post("/v1/me/disputes", json={"obligation": line_id, "reason": reason, "text": text},
                       headers=person.headers)


def exposure(client, inst, person, consent_id):
    r = client.post("/v1/exposure", json={"country": person.country, "national_id": person.nid,
                                          "purpose": "credit_application", "consent_id": consent_id},
                    headers=inst.headers)
    assert r.status_code == 200, r.text
    return r.json()


def line(doc, line_id):
    return next(ln for ln in doc["obligations"] if ln["id"] == line_id)


def dispute_events(app, dispute_id: str) -> list[AccessEvent]:
    with app.state.register.sessions() as s:
        rows = s.scalars(select(AccessEvent).order_by(AccessEvent.seq)).all()
    return [e for e in rows if (e.details or {}).get("dispute_id") == dispute_id]


class TestOpening:
    def test_person_disputes_own_line_and_lender_sees_it_flagged(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        mine = client.get("/v1/me/obligations", headers=person.headers).json()
        assert line(mine, line_id)["disputed"] is False and line(mine, line_id)["dispute"] is None

        r = open_dispute(client, person, line_id)
        assert r.status_code == 201, r.text
        d = r.json()
        assert d["state"] == "open" and d["reason"] == "repaid" and d["text"] == TEXT
        opened = datetime.fromisoformat(d["opened_at"])
        assert datetime.fromisoformat(d["deadline"]) - opened == timedelta(days=30)

        mine = client.get("/v1/me/obligations", headers=person.headers).json()
        assert line(mine, line_id)["disputed"] is True
        assert line(mine, line_id)["dispute"]["id"] == d["id"]
        answer = exposure(client, lender, person, grant(client, person.headers, lender.id))
        assert line(answer, line_id)["disputed"] is True
        listed = client.get("/v1/me/disputes", headers=person.headers).json()["items"]
        assert [x["id"] for x in listed] == [d["id"]]

    def test_every_debtor_of_a_joint_line_sees_it_disputed(self, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        r = client.put(f"/v1/obligations/{new_ref()}",
                       json=obligation_body(debtors=[debtor(x), debtor(y, "co_debtor")]), headers=lender.headers)
        line_id = r.json()["id"]
        assert open_dispute(client, x, line_id).status_code == 201
        assert line(exposure(client, lender, y, grant(client, y.headers, lender.id)), line_id)["disputed"] is True

    def test_another_persons_line_is_404_like_a_missing_one(self, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        _, line_x = report(client, lender, x)
        report(client, lender, y)  # y is known to the register, with a line of their own
        theirs = open_dispute(client, y, line_x)
        missing = open_dispute(client, y, "00000000-0000-4000-8000-000000000000")
        assert theirs.status_code == missing.status_code == 404
        assert {k: v for k, v in theirs.json().items() if k not in ("instance", "request_id")} == \
               {k: v for k, v in missing.json().items() if k not in ("instance", "request_id")}
        assert client.get("/v1/me/disputes", headers=x.headers).json()["items"] == []

    def test_a_second_open_dispute_on_the_same_line_is_409(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        assert open_dispute(client, person, line_id).status_code == 201
        r = open_dispute(client, person, line_id, reason="wrong_amount")
        assert r.status_code == 409 and r.json()["code"] == "dispute_open"

    @pytest.mark.parametrize("body", [
        {"reason": "repaid", "text": TEXT},  # no line
        {"obligation": "00000000-0000-4000-8000-000000000000", "reason": "angry", "text": TEXT},
        {"obligation": "00000000-0000-4000-8000-000000000000", "reason": "repaid", "text": True},
        {"obligation": "00000000-0000-4000-8000-000000000000", "reason": "repaid", "text": ""},
        {"obligation": "00000000-0000-4000-8000-000000000000", "reason": "repaid", "text": TEXT, "state": "upheld"},
    ])
    def test_bad_requests_are_422_and_open_nothing(self, app, client, data_dir, body):
        person = make_person(client, data_dir)
        r = client.post("/v1/me/disputes", json=body, headers=person.headers)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")

    def test_institutions_cannot_open_disputes(self, client, lender, regulator):
        for inst in (lender, regulator):
            r = client.post("/v1/me/disputes", json={"obligation": "00000000-0000-4000-8000-000000000000",
                                                     "reason": "other", "text": "x"}, headers=inst.headers)
            assert r.status_code == 403


class TestAnswering:
    def test_lender_lists_answers_upheld_and_person_adds_a_statement(self, app, client, admin_headers, data_dir,
                                                                      lender):
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id).json()

        listed = client.get("/v1/disputes", params={"state": "open"}, headers=lender.headers).json()["items"]
        mine = next(x for x in listed if x["id"] == d["id"])
        assert mine["text"] == TEXT and mine["obligation"] == line_id and mine["external_ref"]
        assert person.nid not in json.dumps(listed)

        # a statement before an answer is refused: only an upheld line carries one
        r = client.put(f"/v1/me/disputes/{d['id']}/statement", json={"statement": "mine"}, headers=person.headers)
        assert r.status_code == 409 and r.json()["code"] == "dispute_not_upheld"

        r = client.post(f"/v1/disputes/{d['id']}/answer",
                        json={"outcome": "upheld", "explanation": "Our ledger shows the November payment missing."},
                        headers=lender.headers)
        assert r.status_code == 200, r.text
        seen = client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()
        assert seen["state"] == "upheld" and seen["explanation"].startswith("Our ledger")
        consent = grant(client, person.headers, lender.id)
        assert line(exposure(client, lender, person, consent), line_id)["disputed"] is False

        too_long = " ".join(["word"] * 201)
        r = client.put(f"/v1/me/disputes/{d['id']}/statement", json={"statement": too_long}, headers=person.headers)
        assert r.status_code == 422 and r.json()["code"] == "statement_too_long"
        statement = " ".join(["word"] * 199) + " end."
        r = client.put(f"/v1/me/disputes/{d['id']}/statement", json={"statement": statement}, headers=person.headers)
        assert r.status_code == 200 and r.json()["statement"] == statement
        assert line(exposure(client, lender, person, consent), line_id)["statement"] == statement
        # ... and the statement is the writer's own: a co-debtor's answers do not carry it
        other = make_person(client, data_dir)
        assert open_dispute(client, other, line_id).status_code == 404

        # closed: no second answer, no withdrawal
        again = client.post(f"/v1/disputes/{d['id']}/answer", json={"outcome": "corrected", "explanation": "x"},
                            headers=lender.headers)
        assert again.status_code == 409 and again.json()["code"] == "dispute_closed"
        r = client.post(f"/v1/me/disputes/{d['id']}/withdraw", headers=person.headers)
        assert r.status_code == 409

    def test_another_institution_gets_404_and_does_not_list_it(self, client, admin_headers, data_dir, lender):
        other = make_institution(client, admin_headers, "lender")
        collector = make_institution(client, admin_headers, "collector")
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id).json()
        for inst in (other, collector):
            assert client.get(f"/v1/disputes/{d['id']}", headers=inst.headers).status_code == 404
            r = client.post(f"/v1/disputes/{d['id']}/answer", json={"outcome": "corrected", "explanation": "x"},
                            headers=inst.headers)
            assert r.status_code == 404
            assert d["id"] not in {x["id"] for x in client.get("/v1/disputes", headers=inst.headers).json()["items"]}
        assert client.get(f"/v1/me/disputes/{d['id']}", headers=make_person(client, data_dir).headers).status_code == 404
        assert client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()["state"] == "open"

    def test_withdrawn_dispute_unflags_the_line(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id).json()
        r = client.post(f"/v1/me/disputes/{d['id']}/withdraw", headers=person.headers)
        assert r.status_code == 200 and r.json()["state"] == "withdrawn"
        assert line(client.get("/v1/me/obligations", headers=person.headers).json(), line_id)["disputed"] is False
        # and a new dispute can be opened after
        assert open_dispute(client, person, line_id, reason="wrong_amount").status_code == 201


class TestDeadline:
    def test_overdue_shows_for_everyone_and_a_late_answer_is_logged_late(self, app, client, data_dir, lender,
                                                                         regulator, clock):
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id).json()
        consent = grant(client, person.headers, lender.id, days=60)
        overdue = client.get("/v1/disputes", params={"state": "overdue"}, headers=lender.headers).json()["items"]
        assert d["id"] not in {x["id"] for x in overdue}
        clock.now += timedelta(days=30, seconds=1)
        assert client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()["state"] == "overdue"
        overdue = client.get("/v1/disputes", params={"state": "overdue"}, headers=lender.headers).json()["items"]
        assert d["id"] in {x["id"] for x in overdue}
        audit = client.get("/v1/audit/disputes", params={"state": "overdue"}, headers=regulator.headers).json()
        item = next(x for x in audit["items"] if x["id"] == d["id"])
        assert item["state"] == "overdue" and item["late"] is True and item["institution_id"] == lender.id
        assert "text" not in item and TEXT not in json.dumps(audit) and person.nid not in json.dumps(audit)
        counts = next(c for c in audit["by_institution"] if c["institution_id"] == lender.id)
        assert counts["overdue"] >= 1
        # still flagged while overdue
        assert line(exposure(client, lender, person, consent), line_id)["disputed"] is True

        r = client.post(f"/v1/disputes/{d['id']}/answer", json={"outcome": "corrected", "explanation": "Fixed."},
                        headers=lender.headers)
        assert r.status_code == 200 and r.json()["state"] == "corrected"
        answer = [e for e in dispute_events(app, d["id"]) if e.action == "dispute:answer"]
        assert len(answer) == 1 and answer[0].details["late"] is True and answer[0].actor_id == lender.id
        after = client.get("/v1/audit/disputes", headers=regulator.headers).json()
        counts = next(c for c in after["by_institution"] if c["institution_id"] == lender.id)
        assert counts["answered_late"] >= 1

    def test_deadline_is_a_setting(self, app, client, data_dir, lender):
        state = app.state.register
        saved = state.settings
        state.settings = saved.model_copy(update={"dispute_days": 10})
        try:
            person = make_person(client, data_dir)
            _, line_id = report(client, lender, person)
            d = open_dispute(client, person, line_id).json()
        finally:
            state.settings = saved
        span = datetime.fromisoformat(d["deadline"]) - datetime.fromisoformat(d["opened_at"])
        assert span == timedelta(days=10)


class TestCorrectionByReport:
    def test_a_report_naming_the_dispute_closes_it_as_corrected(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        ref, line_id = report(client, lender, person, balance=500000)
        d = open_dispute(client, person, line_id, reason="wrong_amount").json()
        # a daily refresh that does not name it leaves it open
        report(client, lender, person, ref=ref, balance=490000, as_of="2026-11-21T00:00:00Z")
        assert client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()["state"] == "open"
        report(client, lender, person, ref=ref, balance=100000, as_of="2026-11-22T00:00:00Z",
               corrects_dispute=d["id"])
        seen = client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()
        assert seen["state"] == "corrected" and seen["closed_by"] == "report"
        assert [e.action for e in dispute_events(app, d["id"])][-1] == "dispute:correct"

    def test_naming_a_dispute_not_on_the_line_is_refused_and_changes_nothing(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        ref, line_id = report(client, lender, person)
        _, other_line = report(client, lender, person)
        d = open_dispute(client, person, other_line).json()
        before = client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()
        r = client.put(f"/v1/obligations/{ref}", json=obligation_body(
            debtors=[debtor(person)], balance=1, as_of="2026-11-22T00:00:00Z", corrects_dispute=d["id"]),
            headers=lender.headers)
        assert r.status_code == 422 and r.json()["code"] == "dispute_not_found"
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).json() == before
        assert client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()["state"] == "open"

    def test_retraction_closes_it(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        ref, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id, reason="not_mine").json()
        r = client.delete(f"/v1/obligations/{ref}", params={"reason": "reported in error"}, headers=lender.headers)
        assert r.status_code == 200, r.text
        seen = client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()
        assert seen["state"] == "corrected" and seen["explanation"] == "the creditor removed the line"

    def test_a_batch_line_naming_the_dispute_closes_it_and_a_wrong_one_is_rejected(self, app, client, data_dir,
                                                                                   lender):
        person = make_person(client, data_dir)
        ref, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id).json()
        ok = {**obligation_body(debtors=[debtor(person)], balance=7, as_of="2026-11-22T00:00:00Z",
                                corrects_dispute=d["id"]), "external_ref": ref}
        wrong_ref, _ = report(client, lender, person)
        wrong = {**obligation_body(debtors=[debtor(person)], balance=8, as_of="2026-11-22T00:00:00Z",
                                   corrects_dispute=d["id"]), "external_ref": wrong_ref}
        body = (json.dumps(wrong) + "\n" + json.dumps(ok) + "\n").encode()
        r = client.post("/v1/reports", content=body, headers={**lender.headers, "Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        report_id = r.json()["id"]
        state = app.state.register
        ReportWorker(state.sessions, state.cipher, allow_test=False).run_pending()
        status = client.get(f"/v1/reports/{report_id}", headers=lender.headers).json()
        assert status["status"] == "done" and status["accepted"] == 1 and status["rejected"] == 1, status
        errors = [json.loads(x) for x in client.get(f"/v1/reports/{report_id}/errors",
                                                    headers=lender.headers).text.splitlines()]
        assert [(e["line"], e["code"]) for e in errors] == [(1, "dispute_not_found")]
        assert client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()["state"] == "corrected"


class TestLog:
    def test_every_step_is_an_event_naming_the_dispute_that_the_regulator_sees(self, app, client, data_dir, lender,
                                                                               regulator):
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id).json()
        client.get(f"/v1/disputes/{d['id']}", headers=lender.headers)
        client.post(f"/v1/disputes/{d['id']}/answer", json={"outcome": "upheld", "explanation": "Correct."},
                    headers=lender.headers)
        client.put(f"/v1/me/disputes/{d['id']}/statement", json={"statement": "I disagree."}, headers=person.headers)
        actions = [e.action for e in dispute_events(app, d["id"])]
        assert actions == ["dispute:open", "dispute:read", "dispute:answer", "dispute:statement"]
        seen = client.get("/v1/audit/events", params={"action": "dispute:answer", "institution_id": lender.id,
                                                      "limit": 1000}, headers=regulator.headers).json()["items"]
        assert d["id"] in {e["details"]["dispute_id"] for e in seen}

    def test_the_persons_words_are_not_stored_in_plain_text(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        _, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id, text="My number is " + person.nid).json()
        with app.state.register.sessions() as s:
            row = s.get(Dispute, d["id"])
            assert person.nid.encode() not in row.text_enc and b"My number" not in row.text_enc

    def test_a_csv_line_naming_the_dispute_closes_it(self, app, client, data_dir, lender):
        from register.population import CSV_COLUMNS, to_csv_row

        person = make_person(client, data_dir)
        ref, line_id = report(client, lender, person)
        d = open_dispute(client, person, line_id).json()
        doc = {**obligation_body(debtors=[debtor(person)], balance=5, as_of="2026-11-22T00:00:00Z"), "external_ref": ref}
        row = to_csv_row(doc)
        body = ",".join([*CSV_COLUMNS, "corrects_dispute"]) + "\n" + ",".join([*row, d["id"]]) + "\n"
        r = client.post("/v1/reports", content=body.encode(), headers={**lender.headers, "Content-Type": "text/csv"})
        assert r.status_code == 202, r.text
        state = app.state.register
        ReportWorker(state.sessions, state.cipher, allow_test=False).run_pending()
        status = client.get(f"/v1/reports/{r.json()['id']}", headers=lender.headers).json()
        errs = client.get(f"/v1/reports/{r.json()['id']}/errors", headers=lender.headers).text
        assert status["accepted"] == 1 and status["rejected"] == 0, (status, errs)
        assert client.get(f"/v1/me/disputes/{d['id']}", headers=person.headers).json()["state"] == "corrected"
