"""Disputes and the credit ban, as the person uses them on the pages; the lender sees both through the API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from register.storage.models import AccessEvent
from tests.factories import grant
from tests.web.conftest import report
from tests.web.pages import sign_in
from tests.web.test_pages import text


def _events(app, request_id: str) -> list[tuple[str, dict | None]]:
    with app.state.register.sessions() as s:
        return [(e.action, e.details) for e in
                s.execute(select(AccessEvent).where(AccessEvent.request_id == request_id)).scalars()]


def _exposure(client, lender, person) -> dict:
    consent = grant(client, person.headers, lender.id)
    r = client.post("/v1/exposure", headers=lender.headers, json={
        "country": person.country, "national_id": person.nid, "purpose": "credit_application", "consent_id": consent})
    assert r.status_code == 200, r.text
    return r.json()


class TestDisputes:
    def test_from_the_debt_to_the_lenders_answer(self, app, client, lender, person):
        debt = report(client, lender, person)
        browser = sign_in(app, person)
        assert f'href="/app/disputes/new?debt={debt}"' in browser.get("/app/debts").text
        form = browser.get(f"/app/disputes/new?debt={debt}")
        assert form.status_code == 200 and lender.name in form.text and 'value="identity_fraud"' in form.text
        r = browser.post("/app/disputes", {"debt": debt, "reason": "repaid", "text": "I paid it all in March."})
        assert (r.status_code, r.headers["location"]) == (303, "/app/disputes?opened=1")
        (event,) = _events(app, r.headers["x-request-id"])
        assert event[0] == "dispute:open" and event[1]["obligation_id"] == debt
        page = text(browser.get("/app/disputes?opened=1").text)
        assert "Your dispute is sent." in page and "Waiting for the creditor's answer" in page
        assert "I paid it all in March." in page and "The creditor must answer by" in page
        assert "Disputed: the creditor must answer by" in text(browser.get("/app/debts").text)
        line = next(ln for ln in _exposure(client, lender, person)["obligations"] if ln["id"] == debt)
        assert line["disputed"] is True
        (mine,) = client.get("/v1/me/disputes", headers=person.headers).json()["items"]
        r = client.post(f"/v1/disputes/{mine['id']}/answer", headers=lender.headers,
                        json={"outcome": "upheld", "explanation": "Our ledger shows the March payment missing."})
        assert r.status_code == 200, r.text
        page = browser.get("/app/disputes").text
        assert "The creditor kept the debt as it was" in page and "March payment missing" in page
        who = text(browser.get("/app/who-looked").text)  # the creditor's handling, in words, not "Other use"
        assert f"{lender.name}: Answered your dispute" in who and "Other use of your data" not in who
        r = browser.post(f"/app/disputes/{mine['id']}/statement", {"statement": "I have the bank receipt."})
        assert r.status_code == 303
        assert "I have the bank receipt." in browser.get("/app/disputes").text
        too_long = browser.post(f"/app/disputes/{mine['id']}/statement", {"statement": "word " * 201})
        assert too_long.status_code == 422 and "Your statement has 201 words" in text(too_long.text)
        # ?lang= is remembered, so the Swedish look comes last
        assert "Svarade på ditt bestridande" in text(browser.get("/app/who-looked?lang=sv").text)

    def test_withdraw_and_a_dispute_that_runs_late(self, app, client, lender, person, clock):
        debt = report(client, lender, person)
        browser = sign_in(app, person)
        browser.post("/app/disputes", {"debt": debt, "reason": "wrong_amount", "text": "It was 5 000, not 85 000."})
        (d,) = client.get("/v1/me/disputes", headers=person.headers).json()["items"]
        clock.advance(days=31)
        browser = sign_in(app, person)  # the first session idled out over the month
        assert "The creditor has not answered in time" in browser.get("/app/disputes").text
        r = browser.post(f"/app/disputes/{d['id']}/withdraw")
        assert (r.status_code, r.headers["location"]) == (303, "/app/disputes?withdrawn=1")
        assert "Withdrawn by you" in browser.get("/app/disputes").text
        again = browser.post(f"/app/disputes/{d['id']}/withdraw")
        assert again.status_code == 409 and "nothing was changed" in again.text

    def test_an_incomplete_form_is_shown_again_and_nothing_is_opened(self, app, client, lender, person):
        debt = report(client, lender, person)
        browser = sign_in(app, person)
        r = browser.post("/app/disputes", {"debt": debt, "text": "wrong"})
        assert r.status_code == 422 and "Please choose what is wrong." in r.text
        r = browser.post("/app/disputes", {"debt": debt, "reason": "other", "text": "   "})
        assert r.status_code == 422 and "Please say in a few words what is wrong." in r.text
        r = browser.post("/app/disputes", {"debt": debt, "reason": "other", "text": "x"}, token=False)
        assert r.status_code == 403
        assert client.get("/v1/me/disputes", headers=person.headers).json()["items"] == []


class TestCreditBan:
    def test_set_seen_by_the_lender_marked_in_who_looked_lifted_after_the_delay(self, app, client, lender, person,
                                                                                clock):
        report(client, lender, person)
        browser = sign_in(app, person)
        assert "You have no credit ban." in browser.get("/app/credit-ban").text
        r = browser.post("/app/credit-ban", {"reason": "identity_theft", "until": ""})
        assert (r.status_code, r.headers["location"]) == (303, "/app/credit-ban?set=1")
        assert [a for a, _ in _events(app, r.headers["x-request-id"])] == ["credit_ban:set"]
        page = text(browser.get("/app/credit-ban?set=1").text)
        assert "Your credit ban is on." in page and "My identity was stolen or misused" in page
        assert "Your credit ban is on since" in text(browser.get("/app/").text)
        assert _exposure(client, lender, person)["credit_ban"]["active"] is True
        assert "Your credit ban was on when this happened" in browser.get("/app/who-looked").text
        browser.post("/app/credit-ban/lift")
        page = text(browser.get("/app/credit-ban?lift=1").text)
        assert "You asked to lift the ban." in page and "Keep the ban on" in page
        browser.post("/app/credit-ban", {"reason": "identity_theft"})  # taken back
        assert "You asked to lift the ban." not in browser.get("/app/credit-ban").text
        browser.post("/app/credit-ban/lift")
        clock.advance(seconds=app.state.register.settings.credit_ban_lift_seconds - 60)
        browser = sign_in(app, person)  # the hour is longer than the session's idle time
        assert "The ban is on since" in text(browser.get("/app/credit-ban").text)
        clock.advance(seconds=61)
        assert "You have no credit ban." in browser.get("/app/credit-ban").text

    def test_an_end_date_in_the_past_or_no_reason_is_refused(self, app, person, clock):
        browser = sign_in(app, person)
        yesterday = (clock.now - timedelta(days=1)).date().isoformat()
        r = browser.post("/app/credit-ban", {"reason": "other", "until": yesterday})
        assert r.status_code == 422 and "The end date must be a date in the future." in r.text
        r = browser.post("/app/credit-ban", {"until": ""})
        assert r.status_code == 422 and "Please choose a reason." in r.text
        assert "You have no credit ban." in browser.get("/app/credit-ban").text

    def test_keeping_the_ban_on_keeps_its_end_date(self, app, client, person, clock):
        browser = sign_in(app, person)
        end = (clock.now + timedelta(days=60)).date()
        assert browser.post("/app/credit-ban", {"reason": "self_control", "until": end.isoformat()}).status_code == 303
        before = client.get("/v1/me/credit-ban", headers=person.headers).json()
        browser.post("/app/credit-ban/lift")
        page = browser.get("/app/credit-ban?lift=1").text
        r = browser.post("/app/credit-ban", {"reason": "self_control", "keep": "1"})  # the "Keep the ban on" form
        assert r.status_code == 303 and 'name="keep"' in page
        after = client.get("/v1/me/credit-ban", headers=person.headers).json()
        assert after["until"] == before["until"] is not None, "a time-limited ban must not become permanent"
        assert after["lift_effective_at"] is None

    def test_lifting_a_ban_that_is_not_on_says_so_kindly(self, app, person):
        browser = sign_in(app, person)
        r = browser.post("/app/credit-ban/lift")  # a stale page: no ban is on
        assert (r.status_code, r.headers["location"]) == (303, "/app/credit-ban")
        assert "You have no credit ban." in browser.get("/app/credit-ban").text


def test_an_empty_statement_is_named_as_such(app, client, lender, person):
    debt = report(client, lender, person)
    browser = sign_in(app, person)
    browser.post("/app/disputes", {"debt": debt, "reason": "repaid", "text": "Paid."})
    (d,) = client.get("/v1/me/disputes", headers=person.headers).json()["items"]
    client.post(f"/v1/disputes/{d['id']}/answer", headers=lender.headers,
                json={"outcome": "upheld", "explanation": "Not received."})
    r = browser.post(f"/app/disputes/{d['id']}/statement", {"statement": "   "})
    assert r.status_code == 422 and "Your statement is empty" in r.text and "has moved on" not in r.text
