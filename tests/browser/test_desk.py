"""The regulator's desk in a real browser (Debian's Chromium), on both databases: a staff member signs in
through the development stand-in, walks from "where to look" to a signal's evidence, an institution and the
access log, and signs out; every desk page passes axe (no serious or critical violation) in all five
languages, has no target under 24 by 24 CSS pixels, fits from 320 px up, and shows no identity number.
A person signed in to their own pages is sent to the desk's sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from register.web.i18n import LANGUAGES
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.data import Register
from tests.browser.pages import LANGS, NEW_LANGS, assert_no_identity, sign_in, small_targets, t
from tests.browser.test_fit import MEASURE, WIDTHS

SERIOUS = {"serious", "critical"}
PAGES = {
    "sign-in": "/regulator/sign-in",
    "overview": "/regulator/",
    "signal": "/regulator/signals/{signal}",
    "institution": "/regulator/institutions/{lender}",
    "events": "/regulator/events?institution={lender}",
    "not-found": "/regulator/signals/00000000-0000-4000-8000-000000000000",
}
axe = Axe()


def seed(reg: Register, regulator_name: str = "Finansinspektionen", *, first: str | None = None) -> dict[str, Any]:
    """A regulator, and a person looked up by three lenders within minutes (the first with a 188-character
    name unless `first` names it): a many_lenders_24h signal, found through the API as the desk shows it."""
    regulator = reg.institution("regulator", name=regulator_name)
    person = reg.person()
    lenders = [reg.institution(name=first or ("Nordiska Kredit- och Finansieringsaktiebolaget " * 4).strip()),
               reg.institution(name="Snabblån Direkt AB"), reg.institution(name="Kortbolaget Norden AB")]
    for lender in lenders:
        assert reg.exposure(lender, person, reg.consent(person, lender)).status_code == 200
    first = reg.call("GET", "/v1/audit/events", regulator.headers, expect=200, params={
        "institution_id": lenders[0].id, "action": "exposure:query"}).json()["items"][0]["id"]
    signals = reg.call("GET", "/v1/regulator/signals", regulator.headers, expect=200,
                       params={"kind": "many_lenders_24h"}).json()["items"]
    (signal,) = [s for s in signals if first in s["evidence"]]
    return {"regulator": regulator, "person": person, "lenders": lenders, "signal": signal["id"],
            "lender": lenders[0].id, "evidence": signal["evidence"]}


def staff_sign_in(page: Page, regulator_name: str, *, lang: str = "sv", next_page: str = "/regulator/") -> None:
    """Sign in as a staff member would on the stand-in: pick the regulator, press the button."""
    page.goto(f"/regulator/sign-in?lang={lang}&next={next_page}")
    page.get_by_label(regulator_name, exact=True).check()
    page.locator("form.dev-sign-in button[type=submit]").click()
    page.wait_for_url(f"**{next_page}")


@pytest.fixture(scope="module")
def shown(served: Register) -> dict[str, Any]:
    return seed(served)


@pytest.fixture(scope="module")
def desk(chromium, served: Register, shown) -> Iterator[BrowserContext]:
    """One signed-in staff browser for the read-only checks of this module."""
    ctx = chromium.new_context(base_url=served.url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    staff_sign_in(ctx.new_page(), shown["regulator"].name)
    yield ctx
    ctx.close()


def open_page(name: str, lang: str, shown, desk: BrowserContext, context: BrowserContext) -> Page:
    url = PAGES[name].format(**shown)
    page = (context if name == "sign-in" else desk).new_page()
    response = page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
    assert response is not None and response.status == (404 if name == "not-found" else 200), url
    return page


class TestWalk:
    def test_from_where_to_look_to_the_evidence_and_out(self, page: Page, shown):
        staff_sign_in(page, shown["regulator"].name, lang="en")
        expect(page.get_by_role("heading", level=1)).to_have_text("Where to look")
        section = page.locator("section", has=page.locator("#many_lenders_24h"))
        section.locator(f'a[href^="/regulator/signals/{shown["signal"]}"]').click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Many lenders in a day")
        for event_id in shown["evidence"]:
            expect(page.locator("ol.evidence")).to_contain_text(event_id)
        page.get_by_role("link", name="Access log").click()
        page.get_by_label("Institution").select_option(shown["lender"])
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table")).to_contain_text("exposure:query")
        expect(page.locator("table")).to_contain_text(shown["lenders"][0].name[:40])
        page.goto(f"/regulator/institutions/{shown['lender']}")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Nordiska Kredit")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/regulator/sign-in?signed_out=1")
        page.goto("/regulator/")
        assert "/regulator/sign-in?next=" in page.url

    def test_a_persons_session_opens_no_desk_page(self, page: Page, served: Register, shown):
        sign_in(page, shown["person"], lang="en")
        for name in ("overview", "signal", "events"):
            page.goto(PAGES[name].format(**shown))
            assert "/regulator/sign-in?next=" in page.url, name
            expect(page.locator("form.dev-sign-in")).to_be_visible()


class TestAccessibility:
    @pytest.mark.parametrize("lang", sorted(LANGUAGES))
    def test_axe_and_targets_on_every_page(self, lang: str, shown, desk: BrowserContext, context: BrowserContext):
        found, small = {}, {}
        for name in PAGES:
            page = open_page(name, lang, shown, desk, context)
            try:
                assert page.locator("html").get_attribute("lang") == lang
                violations = [v for v in axe.run(page).response["violations"] if v["impact"] in SERIOUS]
                if violations:
                    found[name] = [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in violations]
                if targets := small_targets(page):
                    small[name] = targets[:5]
                assert_no_identity(page.content(), shown["person"], name)
            finally:
                page.close()
        assert not found, found
        assert not small, small

    def test_the_language_switch_keeps_the_page(self, shown, desk: BrowserContext):
        page = desk.new_page()
        page.goto(f"/regulator/institutions/{shown['lender']}?lang=sv")
        page.get_by_role("link", name="Polski").click()
        expect(page.locator("html")).to_have_attribute("lang", "pl")
        assert f"/regulator/institutions/{shown['lender']}" in page.url
        expect(page.get_by_role("link", name=t("pl", "Where to look"))).to_be_visible()


SIZES = [(lang, width) for lang in LANGS for width in WIDTHS] + [(lang, WIDTHS[0]) for lang in NEW_LANGS]


class TestFit:
    @pytest.mark.parametrize(("lang", "width"), SIZES)
    def test_every_page_at_every_width(self, lang: str, width: int, shown, desk: BrowserContext,
                                       context: BrowserContext):
        found = {}
        for name in PAGES:
            page = open_page(name, lang, shown, desk, context)
            try:
                page.set_viewport_size({"width": width, "height": 900})
                if bad := page.evaluate(MEASURE):
                    found[name] = bad[:6]
            finally:
                page.close()
        assert not found, "\n".join(f"{name}: {bad}" for name, bad in found.items())


class TestLayout:
    @pytest.mark.parametrize("width", [320, 1280])
    def test_codes_in_the_access_log_stay_whole_in_finnish(self, width: int, shown, desk: BrowserContext,
                                                           context: BrowserContext):
        page = open_page("events", "fi", shown, desk, context)
        try:
            page.set_viewport_size({"width": width, "height": 900})
            broken = page.evaluate("""() => [...document.querySelectorAll('table code')]
                .filter(e => e.getClientRects().length > 1).map(e => e.textContent)""")
            assert page.locator("table code").count() > 0
            assert not broken, broken
            assert not page.evaluate(MEASURE)  # the table scrolls in its region; the page itself does not
        finally:
            page.close()

    @pytest.mark.parametrize("lang", sorted(LANGUAGES))
    def test_sign_out_shares_the_header_row_at_1280(self, lang: str, shown, desk: BrowserContext,
                                                     context: BrowserContext):
        page = open_page("overview", lang, shown, desk, context)
        try:
            who = page.locator("header .who").bounding_box()
            out = page.locator("header form.sign-out button").bounding_box()
            nav = page.locator("header nav.pages").bounding_box()
            assert who and out and nav
            for other in (who, nav):  # on one row: their boxes overlap vertically
                assert out["y"] < other["y"] + other["height"] and other["y"] < out["y"] + out["height"], (
                    lang, who, out, nav)
        finally:
            page.close()
