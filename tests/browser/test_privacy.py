"""What the pages never give away, in a real browser on both databases: person X signed in sees nothing of
person Y through any page or any of Y's ids in a URL; a form posted without this session's CSRF token is
refused and changes nothing; and no page's HTML holds a full national identity number."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from register.domain.identity import parse_national_id
from tests.browser.data import Register, Story, story
from tests.browser.pages import assert_no_identity, sign_in, spellings, t


def person_pages(page: Page) -> list[str]:
    """Every page the signed-in person's navigation offers, and the proof page of each look."""
    page.goto("/app/")
    nav = page.get_by_role("navigation", name=t("sv", "Your pages"))
    links = [a.get_attribute("href") for a in nav.get_by_role("link").all()]
    page.goto("/app/who-looked")
    proofs = [a.get_attribute("href") for a in page.locator("a[href^='/app/who-looked/']").all()]
    assert len(links) >= 5 and proofs, (links, proofs)
    return links + proofs


def secrets_of(reg: Register, y: Story) -> list[str]:
    """What would give Y away: the names of Y's creditors, Y's masked number and every id of Y's."""
    events = reg.my(y.person, "access-log")["items"]
    disputes = reg.my(y.person, "disputes")["items"]
    masked = parse_national_id(y.person.country, y.person.nid, allow_test=True).masked()
    return [y.lender.name, y.collector.name, masked, y.consent, y.revoked, y.loan, y.late, y.claim,
            *[e["id"] for e in events], *[d["id"] for d in disputes], *spellings(y.person)]


class TestPersonXNeverSeesY:
    def test_no_page_and_no_url_of_ys_shows_anything_of_y(self, page: Page, served: Register):
        x, y = story(served), story(served)
        served.dispute(y.person, y.late, text="Ys own words about the card")
        y_events = [e["id"] for e in served.my(y.person, "access-log")["items"]]
        secrets = secrets_of(served, y) + ["Ys own words about the card"]

        sign_in(page, x.person)
        for url in person_pages(page):
            response = page.goto(url)
            assert response and response.status == 200, url
            html = page.content()
            if url in ("/app/debts", "/app/consents", "/app/who-looked"):
                assert x.lender.name in html, f"{url} should show X's own lender"
            leaked = [s for s in secrets if s in html]
            assert not leaked, f"{url} shows Y's {leaked}"

        for url in [f"/app/who-looked/{e}" for e in y_events] + [f"/app/disputes/new?debt={y.late}"]:
            response = page.goto(url)
            assert response and response.status == 404, f"{url}: {response and response.status}"
            # (the id X put in the URL comes back in the language switch's links: X knew it already)
            leaked = [s for s in secrets if s in page.content() and s not in url]
            assert not leaked, f"{url} shows Y's {leaked}"

    def test_xs_forms_aimed_at_ys_ids_are_not_found_and_change_nothing(self, page: Page, served: Register):
        x, y = story(served), story(served)
        y_dispute = served.dispute(y.person, y.late)
        served.answer(y.lender, served.dispute(y.person, y.loan), "upheld", "It is right.")
        y_upheld = next(d["id"] for d in served.my(y.person, "disputes")["items"] if d["state"] == "upheld")
        before = served.my(y.person, "disputes")
        sign_in(page, x.person)
        page.goto("/app/consents")
        form = page.locator(f"#consent-{x.consent} form")  # a real form of X's, with X's token
        for action, fields in [(f"/app/consents/{y.consent}/revoke", {}),
                               (f"/app/disputes/{y_dispute}/withdraw", {}),
                               (f"/app/disputes/{y_upheld}/statement", {"statement": "Written by X"}),
                               ("/app/disputes", {"debt": y.claim, "reason": "not_mine", "text": "Written by X"})]:
            page.goto("/app/consents")
            form.evaluate("""(f, [action, fields]) => {
                f.action = action;
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = name; input.value = value; f.appendChild(input);
                }
            }""", [action, fields])
            with page.expect_navigation() as nav:
                form.get_by_role("button").click()
            assert nav.value and nav.value.status == 404, f"{action}: {nav.value and nav.value.status}"
        assert served.my(y.person, "disputes") == before
        assert served.exposure(y.lender, y.person, y.consent).status_code == 200, "Y's consent is untouched"


class TestCsrf:
    def test_a_form_without_the_token_is_refused_and_changes_nothing(self, page: Page, served: Register):
        x = story(served)
        sign_in(page, x.person)
        forms = [  # each filled in as the person would, then posted without its csrf field
            ("/app/consents", f"#consent-{x.consent} form", lambda: None),
            (f"/app/disputes/new?debt={x.late}", "main form", lambda: (
                page.get_by_label(t("sv", "This debt is not mine")).check(),
                page.get_by_label(t("sv", "In your own words")).fill("Not mine"))),
            ("/app/credit-ban", "main form", lambda: page.get_by_label(t("sv", "Another reason")).check()),
        ]
        for url, selector, fill in forms:
            page.goto(url)
            fill()
            form = page.locator(selector)
            form.locator("input[name=csrf]").evaluate("input => input.remove()")
            with page.expect_navigation() as nav:
                form.locator("button[type=submit]").click()
            assert nav.value and nav.value.status == 403, url
            expect(page.get_by_role("heading", level=1)).to_have_text(t("sv", "The form could not be accepted"))
        assert served.exposure(x.lender, x.person, x.consent).status_code == 200, "the consent is still valid"
        assert served.my(x.person, "disputes")["items"] == []
        assert served.my(x.person, "credit-ban")["active"] is False

    def test_a_form_with_another_sessions_token_is_refused(self, context: BrowserContext, chromium, served: Register):
        x = story(served)
        other = chromium.new_context(base_url=served.url)
        try:
            theirs = other.new_page()
            sign_in(theirs, x.person)  # the same person, another browser: another session, another token
            theirs.goto("/app/consents")
            foreign = theirs.locator("form input[name=csrf]").first.get_attribute("value")
        finally:
            other.close()
        page = context.new_page()
        sign_in(page, x.person)
        page.goto("/app/consents")
        form = page.locator(f"#consent-{x.consent} form")
        form.locator("input[name=csrf]").evaluate("(input, v) => input.value = v", foreign)
        with page.expect_navigation() as nav:
            form.get_by_role("button").click()
        assert nav.value and nav.value.status == 403
        assert served.exposure(x.lender, x.person, x.consent).status_code == 200


class TestNoFullIdentityNumber:
    def test_no_page_holds_the_full_number_in_any_spelling(self, page: Page, served: Register):
        x = story(served)
        served.dispute(x.person, x.late)
        served.wait_for_proofs(x.person)
        page.goto("/app/sign-in")
        assert_no_identity(page.content(), x.person, "the sign-in page")
        sign_in(page, x.person)
        for url in person_pages(page):
            for lang in ("sv", "fi", "nb", "pl", "en"):
                page.goto(f"{url}?lang={lang}")
                assert_no_identity(page.content(), x.person, f"{url} in {lang}")
        page.goto("/app/who-looked/not-an-event")
        assert_no_identity(page.content(), x.person, "the not-found page")
