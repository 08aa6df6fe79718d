"""What the person sees, and that the pages are the API's services in another dress: the same data, the
same access events, and nobody else's data."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select

from register.storage.models import AccessEvent
from tests.factories import debtor, grant, make_institution, make_person, new_ref
from tests.web.conftest import report
from tests.web.pages import Browser, new_client, sign_in

PAGES = ("/app/", "/app/debts", "/app/who-looked", "/app/consents", "/app/disputes", "/app/credit-ban", "/app/help",
         "/app/what-we-keep", "/app/notifications")


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def actions(app: FastAPI, request_id: str) -> list[str]:
    with app.state.register.sessions() as s:
        return list(s.execute(select(AccessEvent.action).where(AccessEvent.request_id == request_id)).scalars())


def look(client, lender, person, consent: str) -> None:
    r = client.post("/v1/exposure", headers=lender.headers, json={
        "country": person.country, "national_id": person.nid, "purpose": "credit_application", "consent_id": consent})
    assert r.status_code == 200, r.text


class TestOverview:
    def test_what_is_owed_in_a_sentence_and_in_figures(self, app, client, admin_headers, person):
        a, b = make_institution(client, admin_headers), make_institution(client, admin_headers)
        report(client, a, person, balance=5_000_000, monthly_payment=150_000)
        report(client, b, person, kind="credit_card", balance=3_430_000, credit_limit=5_000_000,
               monthly_payment=140_000, original_amount=None, matures_on=None)
        page = text(sign_in(app, person, **{"Accept-Language": "sv-SE,sv;q=0.9"}).get("/app/").text)
        assert "Du är skyldig 84 300 kr till 2 borgenärer; 2 900 kr i månaden." in page
        assert "Outnyttjad kredit som långivare räknar med 15 700 kr" in page
        assert "Alla dina skulder betalas enligt avtal." in page
        assert "Det finns gratis hjälp för dig" not in page, "help is offered when something is late, not always"

    def test_a_plain_line_per_status_and_help_when_something_is_late(self, app, client, admin_headers, person):
        bank, collector = make_institution(client, admin_headers), make_institution(client, admin_headers, "collector")
        for _ in range(3):
            report(client, bank, person, status="overdue", overdue_amount=250_000, days_past_due=35)
        report(client, collector, person, kind="collection_claim", status="in_collection", overdue_amount=900_000,
               balance=900_000, monthly_payment=None, matures_on=None)
        report(client, collector, person, kind="collection_claim", status="payment_plan", balance=200_000,
               monthly_payment=20_000, matures_on=None)
        browser = sign_in(app, person)
        page = text(browser.get("/app/").text)
        for line in ("3 debts have late payments", "1 debt is with a debt collector", "1 debt is on a payment plan",
                     "Free help is there for you", "Kronofogden – skuldsanering", "0771-73 73 00"):
            assert line in page, line
        pl = text(browser.get("/app/?lang=pl").text)
        assert "3 długi mają opóźnione płatności" in pl and "1 dług jest w firmie windykacyjnej" in pl

    def test_nothing_registered(self, app, client, data_dir):
        page = text(sign_in(app, make_person(client, data_dir)).get("/app/").text)
        assert "There are no debts registered in your name." in page


class TestDebts:
    def test_each_debt_with_its_creditor_role_amounts_status_and_freshness(self, app, client, admin_headers, person):
        bank = make_institution(client, admin_headers)
        report(client, bank, person, status="overdue", overdue_amount=500_000, days_past_due=40,
               as_of="2026-01-02T00:00:00Z")
        page = text(sign_in(app, person).get("/app/debts").text)
        for fact in (f"{bank.name}: Loan paid in instalments", "Payments are late", "Your own debt", "SEK 85,000",
                     "SEK 5,000 – 40 days late", "SEK 2,500", "Not updated for over 35 days",
                     "How to reach the creditor"):
            assert fact in page, fact

    def test_a_guarantee_and_a_shared_debt_say_so(self, app, client, admin_headers, data_dir, person):
        bank, other = make_institution(client, admin_headers), make_person(client, data_dir)
        report(client, bank, other, debtors=[{"country": other.country, "national_id": other.nid, "role": "primary"},
                                             {"country": person.country, "national_id": person.nid,
                                              "role": "guarantor"}])
        page = text(sign_in(app, person).get("/app/debts").text)
        assert "You are guarantor: you pay only if the borrower does not" in page


class TestWhoLooked:
    def test_the_lenders_look_with_purpose_outcome_consent_and_a_proof(self, app, client, lender, regulator, browser):
        person = browser.person
        consent = grant(client, person.headers, lender.id)
        look(client, lender, person, consent)
        page = browser.get("/app/who-looked").text
        assert f"{lender.name}: Looked at your debts" in text(page)
        assert "to decide on a credit application" in page and "Allowed" in page
        assert f"/app/consents#consent-{consent}" in page
        events = [e for e in client.get("/v1/me/access-log", headers=person.headers).json()["items"]
                  if e["action"] == "exposure:query"]
        proof_url = f"/app/who-looked/{events[0]['id']}"
        assert proof_url in page
        # Not yet in a signed checkpoint: said kindly, not as an error.
        r = browser.get(proof_url)
        assert r.status_code == 200 and "not in the signed log yet" in r.text
        assert client.post("/v1/audit/checkpoints", headers=regulator.headers).status_code == 200
        r = browser.get(proof_url)
        assert r.status_code == 200
        assert "Checked: this entry is leaf" in text(r.text) and "— register.local/access-log" in r.text

    def test_a_refused_look_says_why(self, client, lender, browser):
        r = client.post("/v1/exposure", headers=lender.headers, json={
            "country": browser.person.country, "national_id": browser.person.nid, "purpose": "credit_application",
            "consent_id": "00000000-0000-4000-8000-000000000000"})
        assert r.status_code == 403
        assert "Refused : there was no consent" in text(browser.get("/app/who-looked").text)


class TestConsents:
    def test_revoke_with_one_click_as_the_api_does(self, app, client, lender, browser):
        consent = grant(client, browser.person.headers, lender.id)
        page = browser.get("/app/consents").text
        assert f'action="/app/consents/{consent}/revoke"' in page
        assert f"Revoke the consent for {lender.name}" in page
        r = browser.post(f"/app/consents/{consent}/revoke")
        assert (r.status_code, r.headers["location"]) == (303, "/app/consents?revoked=1")
        assert actions(app, r.headers["x-request-id"]) == ["consent:revoke"]
        mine = client.get("/v1/me/consents", headers=browser.person.headers).json()["items"]
        assert next(c for c in mine if c["id"] == consent)["revoked_at"] is not None
        page = text(browser.get("/app/consents?revoked=1").text)
        assert "The consent is revoked." in page and "You have no active consents." in page
        look_after = client.post("/v1/exposure", headers=lender.headers, json={
            "country": browser.person.country, "national_id": browser.person.nid, "purpose": "credit_application",
            "consent_id": consent})
        assert look_after.json()["code"] == "consent_revoked"


class TestSameServicesAsTheApi:
    def test_each_page_read_leaves_the_apis_access_event(self, app, browser):
        expected = {"/app/": ["consumer:obligations:read"], "/app/debts": ["consumer:obligations:read"],
                    "/app/who-looked": ["consumer:access_log:read"], "/app/consents": ["consumer:consents:read"],
                    "/app/help": []}  # fmt: skip
        for url, want in expected.items():
            r = browser.get(url)
            assert actions(app, r.headers["x-request-id"]) == want, url

    def test_the_page_and_the_api_show_the_same_totals(self, client, browser):
        api = client.get("/v1/me/obligations", headers=browser.person.headers).json()
        balance = api["totals"]["SEK"]["balance"] // 100
        assert f"SEK {balance:,}" in text(browser.get("/app/").text)


class TestNobodyElsesData:
    def test_x_never_sees_y(self, app, client, admin_headers, data_dir, regulator):
        bank = make_institution(client, admin_headers, name="Bank Of Only Y")
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        debt_y = report(client, bank, y, balance=7_777_700)
        r = client.post("/v1/me/disputes", headers=y.headers, json={"obligation": debt_y, "reason": "repaid",
                                                                    "text": "Only Y wrote this"})
        assert r.status_code == 201, r.text
        dispute_y = r.json()["id"]
        consent_y = grant(client, y.headers, bank.id)
        look(client, bank, y, consent_y)
        client.post("/v1/audit/checkpoints", headers=regulator.headers)
        event_y = next(e["id"] for e in client.get("/v1/me/access-log", headers=y.headers).json()["items"])
        bx = sign_in(app, x)
        for url in PAGES:
            html = bx.get(url).text
            for secret in ("Bank Of Only Y", "77,777", consent_y, event_y, dispute_y, debt_y, "Only Y wrote", y.nid,
                           y.nid[:8]):
                assert secret not in html, (url, secret)
        r = bx.get(f"/app/who-looked/{event_y}")
        assert r.status_code == 404 and "We could not find that" in r.text
        r = bx.post(f"/app/consents/{consent_y}/revoke")
        assert r.status_code == 404
        assert bx.get(f"/app/disputes/new?debt={debt_y}").status_code == 404
        for url in (f"/app/disputes/{dispute_y}/withdraw", f"/app/disputes/{dispute_y}/statement"):
            assert bx.post(url, {"statement": "mine now"}).status_code == 404, url
        assert bx.post("/app/disputes", {"debt": debt_y, "reason": "not_mine", "text": "x"}).status_code == 404
        (still,) = client.get("/v1/me/disputes", headers=y.headers).json()["items"]
        assert still["state"] == "open"
        mine = client.get("/v1/me/consents", headers=y.headers).json()["items"]
        assert next(c for c in mine if c["id"] == consent_y)["revoked_at"] is None

    def test_no_page_shows_the_persons_full_identity_number(self, app, client, lender, regulator, browser: Browser):
        person = browser.person
        consent = grant(client, person.headers, lender.id)
        look(client, lender, person, consent)
        client.post("/v1/audit/checkpoints", headers=regulator.headers)
        event = client.get("/v1/me/access-log", headers=person.headers).json()["items"][0]["id"]
        digits = re.sub(r"\D", "", person.nid)  # 12 digits: YYYYMMDDNNNC
        spellings = {person.nid, digits, f"{digits[:8]}-{digits[8:]}", digits[2:], f"{digits[2:8]}-{digits[8:]}",
                     f"{digits[2:8]}+{digits[8:]}"}
        for url in (*PAGES, f"/app/who-looked/{event}", "/app/?lang=sv", "/app/debts?lang=pl", "/app/sign-in"):
            html = browser.client.get(url).text
            assert not any(s in html for s in spellings), url
        assert f"{person.nid[:8]}-****" in browser.get("/app/").text


class TestHelp:
    def test_for_everyone_and_the_signed_in_persons_country_first(self, app, client, data_dir):
        anyone = text(new_client(app, **{"Accept-Language": "en"}).get("/app/help").text)
        assert "Free help with debts" in anyone and "Sign out" not in anyone
        person = make_person(client, data_dir, "PL")
        page = text(sign_in(app, person).get("/app/help").text)
        assert "Sign out" in page and "Your debts" in page, "a signed-in person keeps their pages' navigation"
        assert page.index("Poland") < page.index("Sweden"), "their own country's help comes first"
        assert "must answer within 30 days" in page


class TestCountedOnce:
    def _loan_and_claim(self, client, admin_headers, person):
        bank, collector = make_institution(client, admin_headers), make_institution(client, admin_headers, "collector")
        loan_ref, claim_ref = new_ref(), new_ref()
        loan = dict(status="in_collection", balance=400_000, monthly_payment=0, overdue_amount=400_000, days_past_due=120)
        report(client, bank, person, loan_ref, **loan, as_of="2026-11-01T00:00:00Z")
        report(client, collector, person, claim_ref, kind="collection_claim", status="in_collection", balance=430_000,
               overdue_amount=430_000, monthly_payment=None, matures_on=None,
               collects={"institution_id": bank.id, "external_ref": loan_ref})
        return bank, collector, loan_ref, claim_ref, loan

    def test_a_loan_a_collector_holds_is_one_debt_with_a_collector(self, app, client, admin_headers, person):
        bank, collector, loan_ref, claim_ref, loan = self._loan_and_claim(client, admin_headers, person)
        report(client, bank, person, loan_ref, **loan, as_of="2026-11-02T00:00:00Z",
               handed_to={"institution_id": collector.id, "external_ref": claim_ref})
        browser = sign_in(app, person)
        page = text(browser.get("/app/").text)
        assert "1 debt is with a debt collector" in page and "2 debts are with a debt collector" not in page
        assert "You owe SEK 4,300 to 1 creditor." in page
        assert "it is counted once" in text(browser.get("/app/debts").text)

    def test_until_the_creditor_confirms_the_hand_over_both_debts_count(self, app, client, admin_headers, person):
        self._loan_and_claim(client, admin_headers, person)
        browser = sign_in(app, person)
        page = text(browser.get("/app/").text)
        assert "2 debts are with a debt collector" in page
        assert "You owe SEK 8,300 to 2 creditors." in page
        debts = text(browser.get("/app/debts").text)
        assert "has not confirmed handing it over" in debts and "it is counted once" not in debts

    def test_a_co_debtors_dispute_is_not_said_to_be_yours(self, app, client, lender, data_dir):
        me_, partner = make_person(client, data_dir), make_person(client, data_dir)
        line = report(client, lender, me_, debtors=[debtor(me_), debtor(partner, "co_debtor")])
        r = client.post("/v1/me/disputes", headers=partner.headers,
                        json={"obligation": line, "reason": "wrong_amount", "text": "Too high."})
        assert r.status_code == 201, r.text
        assert "You have disputed 1 debt" in text(sign_in(app, partner).get("/app/").text)
        mine = text(sign_in(app, me_).get("/app/").text)
        assert "You have disputed" not in mine
