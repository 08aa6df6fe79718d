"""WCAG 2.2 AA on every page, in a real browser, in Swedish, Polish and English, on both databases: axe-core
finds no serious or critical violation (in Finnish and bokmål too); every target is at least 24 by 24 CSS
pixels (links inside running text excepted, as 2.5.8 allows); a status always says in words what its colour shows; `<html lang>` is
the chosen language and the visible language switch changes it; and each page's main action can be
reached with Tab, shows where the focus is, and works with Enter or Space."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import TIMEOUT_MS, VIEWPORT
from tests.browser.data import Register, story
from tests.browser.pages import (
    LANGS,
    NEW_LANGS,
    focused,
    invisible_focus,
    sign_in,
    small_targets,
    t,
    tab_to,
)

SERIOUS = {"serious", "critical"}
# The person's pages by name; {…} are filled from the person's own data.
PAGES = {
    "sign-in": "/app/sign-in",
    "overview": "/app/",
    "debts": "/app/debts",
    "who-looked": "/app/who-looked",
    "proof": "/app/who-looked/{event}",
    "consents": "/app/consents",
    "disputes": "/app/disputes",
    "dispute-form": "/app/disputes/new?debt={loan}",
    "credit-ban": "/app/credit-ban",
    "help": "/app/help",
    "what-we-keep": "/app/what-we-keep",
    "statistics": "/app/statistics",
    "notifications": "/app/notifications",
    "notifications-confirm": "/app/notifications/confirm?token=unknown",
    "not-found": "/app/who-looked/00000000-0000-4000-8000-000000000000",
}
NOT_FOUND = ("not-found", "notifications-confirm")
axe = Axe()


@pytest.fixture(scope="module")
def shown(served: Register) -> dict[str, str]:
    """A person with something on every page: late debts and a collector (help on the overview), an open
    and an upheld dispute (the statement form), granted and refused looks already in the signed log."""
    s = story(served)
    served.dispute(s.person, s.late, text="The card's balance is wrong")
    served.answer(s.lender, served.dispute(s.person, s.loan, reason="repaid", text="Repaid in May"), "upheld",
                  "The payment in May was for another loan.")
    events = served.wait_for_proofs(s.person)
    return {"event": events[0]["id"], "loan": s.claim, "story": s}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def signed_in(chromium, served: Register, shown) -> Iterator[BrowserContext]:
    """One signed-in browser for the read-only checks of this module."""
    ctx = chromium.new_context(base_url=served.url, viewport=VIEWPORT)
    ctx.set_default_timeout(TIMEOUT_MS)
    sign_in(ctx.new_page(), shown["story"].person)
    yield ctx
    ctx.close()


def open_page(name: str, lang: str, shown, signed_in: BrowserContext, context: BrowserContext) -> Page:
    url = PAGES[name].format(**shown)
    page = (context if name == "sign-in" else signed_in).new_page()
    response = page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
    # the confirm page with an unknown token: the served register's tokens only ever go out by mail
    assert response is not None and response.status == (404 if name in NOT_FOUND else 200), url
    return page


def describe(violations: list[dict]) -> list[str]:
    return [f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in violations]


@pytest.mark.parametrize("name", PAGES)
class TestEveryPage:
    @pytest.mark.parametrize("lang", LANGS + NEW_LANGS)
    def test_axe_finds_no_serious_or_critical_violation(self, name, lang, shown, signed_in, context):
        page = open_page(name, lang, shown, signed_in, context)
        try:
            violations = axe.run(page).response["violations"]
        finally:
            page.close()
        serious = [v for v in violations if v["impact"] in SERIOUS]
        assert not serious, "\n".join(describe(serious))

    @pytest.mark.parametrize("lang", LANGS)
    def test_language_targets_and_words_for_every_status(self, name, lang, shown, signed_in, context):
        page = open_page(name, lang, shown, signed_in, context)
        try:
            assert page.locator("html").get_attribute("lang") == lang
            small = small_targets(page)
            assert not small, f"targets under 24x24 CSS px: {small}"
            # A status is an icon, a colour and words: never the colour (or the icon) alone.
            for badge in page.locator(".status").all():
                said = re.sub(r"[^\w]+", "", badge.inner_text(), flags=re.UNICODE)
                assert len(said) >= 3, f"a status without words: {badge.evaluate('e => e.outerHTML')}"
        finally:
            page.close()


class TestLanguageSwitch:
    @pytest.mark.parametrize("name", PAGES)
    def test_the_switch_changes_the_language_and_keeps_the_page(self, name, shown, signed_in, context):
        page = open_page(name, "sv", shown, signed_in, context)
        try:
            before = page.locator("main h1").inner_text()
            for lang, label in (("fi", "Suomi"), ("nb", "Norsk bokmål"), ("pl", "Polski"), ("en", "English"),
                                ("sv", "Svenska")):
                switch = page.locator("nav.langs")  # its name is in the page's language
                with page.expect_navigation() as nav:
                    switch.get_by_role("link", name=label).click()
                assert nav.value and nav.value.status == (404 if name in NOT_FOUND else 200), (lang, page.url)
                expect(page.locator("html")).to_have_attribute("lang", lang)
                expect(switch.get_by_role("link", name=label)).to_have_attribute("aria-current", "true")
            assert page.locator("main h1").inner_text() == before, "back in Swedish, the same page"
        finally:
            page.close()


def keyboard_only(page: Page, target, key: str = "Enter") -> None:
    """Tab from the top of the page to `target`, every stop showing where the focus is, then press `key`."""
    seen = tab_to(page, target)
    assert not invisible_focus(seen), f"focus not visible on {invisible_focus(seen)}"
    page.keyboard.press(key)


class TestKeyboard:
    """Each page's main action, reached with Tab and done with Enter or Space, the focus visible all the way."""

    def test_sign_in(self, page: Page, served: Register):
        s = story(served)
        page.goto("/app/sign-in?lang=en")
        seen = tab_to(page, page.locator("#national_id"))  # past the language switch, the choice, the country
        page.keyboard.type(s.person.nid)
        page.keyboard.press("Tab")
        seen.append(focused(page))
        assert seen[-1]["tag"] == "button" and seen[-1]["text"] == t("en", "Sign in")
        assert not invisible_focus(seen), f"focus not visible on {invisible_focus(seen)}"
        page.keyboard.press("Enter")
        page.wait_for_url("**/app/")
        expect(page.locator("main h1")).to_have_text(t("en", "Your debts at a glance"))

    def test_skip_link_then_overview_to_debts(self, page: Page, served: Register):
        s = story(served)
        sign_in(page, s.person, lang="en")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name=t("en", "Skip to the content"))
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0, "the skip link shows when it has the focus"
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        keyboard_only(page, page.get_by_role("link", name=t("en", "See every debt, with how to reach each creditor")))
        page.wait_for_url("**/app/debts")

    def test_debts_to_the_dispute_form_and_send_it(self, page: Page, served: Register):
        s = story(served)
        sign_in(page, s.person, lang="en")
        page.goto("/app/debts")
        keyboard_only(page, page.locator(f"#debt-{s.late}").get_by_role(
            "link", name=t("en", "Is something wrong? Dispute this debt")))
        page.wait_for_url(f"**/app/disputes/new?debt={s.late}")
        keyboard_only(page, page.get_by_label(t("en", "This debt is not mine")), key="Space")
        expect(page.get_by_label(t("en", "This debt is not mine"))).to_be_checked()
        keyboard_only(page, page.get_by_label(t("en", "In your own words")), key="End")
        page.keyboard.type("I never had a card there.")
        keyboard_only(page, page.get_by_role("button", name=t("en", "Send the dispute")), key="Space")
        page.wait_for_url("**/app/disputes?opened=1")
        assert [d["reason"] for d in served.my(s.person, "disputes")["items"]] == ["not_mine"]

    def test_withdraw_a_dispute(self, page: Page, served: Register):
        s = story(served)
        served.dispute(s.person, s.loan)
        sign_in(page, s.person, lang="en", next_page="/app/disputes")
        keyboard_only(page, page.locator("li.dispute").get_by_role("button"))
        page.wait_for_url("**/app/disputes?withdrawn=1")
        assert [d["state"] for d in served.my(s.person, "disputes")["items"]] == ["withdrawn"]

    def test_who_looked_to_a_proof_and_back(self, page: Page, served: Register):
        s = story(served)
        served.wait_for_proofs(s.person)
        sign_in(page, s.person, lang="en", next_page="/app/who-looked")
        keyboard_only(page, page.locator("a[href^='/app/who-looked/']").first)
        page.wait_for_url("**/app/who-looked/*")
        keyboard_only(page, page.get_by_role("link", name=t("en", "Back to who looked")))
        page.wait_for_url("**/app/who-looked")

    def test_revoke_a_consent(self, page: Page, served: Register):
        s = story(served)
        sign_in(page, s.person, lang="en", next_page="/app/consents")
        keyboard_only(page, page.locator(f"#consent-{s.consent}").get_by_role("button"), key="Space")
        expect(page.get_by_role("status")).to_contain_text(t("en", "The consent is revoked."))
        assert served.exposure(s.lender, s.person, s.consent).status_code == 403

    def test_set_a_credit_ban(self, page: Page, served: Register):
        s = story(served)
        sign_in(page, s.person, lang="en", next_page="/app/credit-ban")
        # A radio group is one Tab stop; the arrow keys choose within it.
        keyboard_only(page, page.get_by_label(t("en", "My identity was stolen or misused")), key="ArrowDown")
        expect(page.get_by_label(t("en", "I want to stop myself from borrowing"))).to_be_checked()
        assert not invisible_focus([focused(page)])
        keyboard_only(page, page.get_by_role("button", name=t("en", "Set the credit ban now")), key="Space")
        expect(page.get_by_role("status")).to_have_text(re.compile(re.escape(t("en", "Your credit ban is on."))))
        assert served.my(s.person, "credit-ban")["reason"] == "self_control"

    def test_help_to_a_counselling_service(self, page: Page, served: Register):
        # The services are elsewhere on the web: the browser is answered here instead of going out.
        page.route(re.compile(r"^https://"), lambda route: route.fulfill(body="<title>elsewhere</title>",
                                                                         content_type="text/html"))
        page.goto("/app/help?lang=sv")
        first = page.locator("main .help-entry a[href^='https://']").first
        href = first.get_attribute("href")
        keyboard_only(page, first)
        page.wait_for_url(href)
