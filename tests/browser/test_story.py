"""The person's story in a real browser, on both databases: sign in, read the overview in plain language,
open the debts, revoke a consent with one click (the lender is refused at once), dispute a line and set a
credit ban (the lender's next exposure answer shows both), and see the lender's answer to the dispute."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.data import Register, story
from tests.browser.pages import sign_in, t


def words(page: Page, selector: str = "main") -> str:
    """What the person reads: the text with every kind of space as one plain space."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", page.locator(selector).inner_text())


class TestStory:
    def test_a_person_reads_revokes_disputes_bans_and_sees_the_lenders_answer(self, page: Page, served: Register):
        s = story(served)
        sign_in(page, s.person, lang="sv")

        # The overview, in Swedish, amounts as Swedes write them.
        expect(page.locator("html")).to_have_attribute("lang", "sv")
        text = words(page)
        # 50 000 kr for the loan and 22 000 kr for the collector's claim, which counts the card once.
        assert "Du är skyldig 72 000 kr till 2 borgenärer; 2 300 kr i månaden." in text, text
        assert "1 skuld ligger hos ett inkassoföretag" in text, text
        assert "Det finns gratis hjälp för dig" in text, "something is with a collector: help is offered"

        # Every debt, with its creditor and how to reach it.
        page.get_by_role("link", name=t("sv", "See every debt, with how to reach each creditor")).click()
        expect(page).to_have_url(re.compile(r"/app/debts$"))
        debts = words(page)
        assert s.lender.name in debts and "+46 8 123 456 00" in debts and "kundtjanst@nordbank.example" in debts
        assert "50 000 kr" in debts and "12 300 kr" in debts and "22 000 kr" in debts

        # Revoke a consent with one click: it is past, and the lender is refused at once.
        nav = page.get_by_role("navigation", name=t("sv", "Your pages"))
        nav.get_by_role("link", name=t("sv", "Consents")).click()
        page.locator(f"#consent-{s.consent}").get_by_role("button").click()
        expect(page.get_by_role("status")).to_contain_text(
            t("sv", "The consent is revoked. From now on it lets nobody look at your debts."))
        past = page.get_by_role("region", name=t("sv", "Past consents"))
        expect(past.locator(f"#consent-{s.consent}")).to_contain_text(t("sv", "Revoked"))
        refused = served.exposure(s.lender, s.person, s.consent)
        assert refused.status_code == 403 and refused.json()["code"] == "consent_revoked", refused.text

        # Dispute the card: the form asks what is wrong and in the person's own words.
        nav.get_by_role("link", name=t("sv", "Your debts")).click()
        dispute_it = t("sv", "Is something wrong? Dispute this debt")
        page.locator(f"#debt-{s.late}").get_by_role("link", name=dispute_it).click()
        page.get_by_label(t("sv", "The amount is wrong")).check()
        page.get_by_label(t("sv", "In your own words")).fill("Jag betalade 5 000 kr i oktober; skulden är mindre.")
        page.get_by_role("button", name=t("sv", "Send the dispute")).click()
        expect(page).to_have_url(re.compile(r"/app/disputes\?opened=1$"))
        mine = page.locator("li.dispute")
        expect(mine).to_have_count(1)
        expect(mine).to_contain_text(t("sv", "Waiting for the creditor's answer"))

        # Set a credit ban after a stolen identity.
        nav.get_by_role("link", name=t("sv", "Credit ban")).click()
        page.get_by_label(t("sv", "My identity was stolen or misused")).check()
        page.get_by_role("button", name=t("sv", "Set the credit ban now")).click()
        expect(page.get_by_role("status")).to_have_text(re.compile(re.escape(t("sv", "Your credit ban is on."))))

        # The lender's next exposure answer, with a new consent, shows both.
        consent = served.consent(s.person, s.lender)
        answer = served.exposure(s.lender, s.person, consent)
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        assert doc["credit_ban"]["active"] is True and doc["credit_ban"]["reason"] == "identity_theft"
        lines = {ln["id"]: ln for ln in doc["obligations"]}
        assert lines[s.late]["disputed"] is True
        assert lines[s.loan]["disputed"] is False and lines[s.claim]["disputed"] is False

        # The person sees that lookup marked: it was made while the ban was on.
        nav.get_by_role("link", name=t("sv", "Who looked")).click()
        expect(page.locator("li.event").first).to_contain_text(t("sv", "Your credit ban was on when this happened"))

        # The lender answers: the amount is right. The person reloads and reads the answer.
        open_ = served.call("GET", "/v1/disputes", s.lender.headers, params={"state": "open"}, expect=200).json()
        (dispute,) = [d for d in open_["items"] if d["obligation"] == s.late]
        assert dispute["text"].startswith("Jag betalade 5 000 kr")
        served.answer(s.lender, dispute["id"], "upheld", "Betalningen i oktober är registrerad; saldot stämmer.")
        nav.get_by_role("link", name=t("sv", "Disputes")).click()
        page.reload()
        expect(mine).to_contain_text(t("sv", "The creditor kept the debt as it was"))
        expect(mine).to_contain_text("Betalningen i oktober är registrerad; saldot stämmer.")

        # Upheld: the person may add their own statement, which lenders then see with the line.
        mine.get_by_label(t("sv", "Your own statement, shown with the debt to lenders who look")).fill(
            "Jag har betalat 5 000 kr som inte syns här.")
        mine.get_by_role("button", name=t("sv", "Save the statement")).click()
        expect(page.get_by_role("status")).to_contain_text(
            t("sv", "Your statement is saved. Lenders who look will see it with the debt."))
        lines = {ln["id"]: ln for ln in served.exposure(s.lender, s.person, consent).json()["obligations"]}
        assert lines[s.late]["statement"] == "Jag har betalat 5 000 kr som inte syns här."
        assert lines[s.late]["disputed"] is False, "answered: no longer open"
