"""The API's documentation in a real browser with no way out: every request to another host is stopped, and
Swagger UI and ReDoc still draw the whole API, with nothing refused by their Content-Security-Policy that
they need (ReDoc's attribution logo, from its vendor's CDN, is the one thing the policy blocks)."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.data import Register


def offline(page: Page, served: Register) -> list[str]:
    """Stop every request to another host, as a machine without the internet would; returns them."""
    stopped: list[str] = []

    def route(r: Route) -> None:
        if r.request.url.startswith(served.url + "/") or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            stopped.append(r.request.url)
            r.abort("internetdisconnected")

    page.route("**/*", route)
    return stopped


def console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


class TestDocumentationOffline:
    def test_swagger_ui_draws_every_operation_and_opens_one(self, page: Page, served: Register):
        stopped, errors = offline(page, served), console_errors(page)
        page.goto("/docs")
        expect(page.locator(".opblock").first).to_be_visible(timeout=TIMEOUT_MS)
        assert page.locator(".opblock").count() >= 40  # every operation of the document
        page.locator(".opblock-summary").first.click()
        expect(page.locator(".opblock-body").first).to_be_visible()
        assert stopped == [] and errors == []

    def test_redoc_draws_the_api_and_its_search_works(self, page: Page, served: Register):
        stopped, errors = offline(page, served), console_errors(page)
        page.goto("/redoc")
        expect(page.locator(".api-content h1").first).to_contain_text("The register", timeout=TIMEOUT_MS)
        page.get_by_placeholder("Search...").fill("exposure")
        # The search index runs in a blob: worker.
        expect(page.locator("[role=search] li").first).to_be_visible(timeout=TIMEOUT_MS)
        assert stopped == []
        assert all("cdn.redoc.ly" in e and "Content Security Policy" in e for e in errors), errors

    def test_the_landing_page_leads_to_the_documentation(self, page: Page, served: Register):
        stopped = offline(page, served)
        page.goto("/")
        page.get_by_role("link", name="The API, to read and to try").click()
        expect(page.locator(".opblock").first).to_be_visible(timeout=TIMEOUT_MS)
        assert stopped == []
