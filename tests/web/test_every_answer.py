"""Every answer under /app/ is a page's answer: whatever gave it (a page, the router's redirect from /app,
no such address, a wrong method, a form too large for the body-size cap, a refusal), it carries the pages'
security headers; HEAD answers as GET does, without the body; and an error page shown to a signed-in
person keeps their navigation.

The addresses come from the app itself, so a new page is walked without being listed here.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from register.web.render import SECURITY_HEADERS
from tests.web.pages import Browser, new_client

PARAMS = {"name": "style.css"}  # a static file's name; any other parameter is an id
NAV = re.compile(r'<nav class="pages"[^>]*>.*?href="/app/who-looked".*?</nav>\s*<form method="post" action="/app/sign-out"',
                 re.S)


def page_routes(app: FastAPI) -> list[tuple[str, frozenset[str]]]:
    """Every page's address (parameters filled in) with the methods its route takes."""
    methods: dict[str, set[str]] = {}
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute) and ctx.path.startswith("/app"):
            methods.setdefault(ctx.path, set()).update(ctx.methods)
    assert len(methods) > 15, "the walk found the pages"
    return [(re.sub(r"{(\w+)}", lambda m: PARAMS.get(m.group(1), str(uuid.uuid4())), path), frozenset(ms))
            for path, ms in sorted(methods.items())]


def assert_page_headers(r, what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        if name == "Cache-Control" and r.status_code == 200 and "/app/static/" in str(r.url):
            assert r.headers[name].startswith("public"), what  # the two static files may be cached
            continue
        assert r.headers.get(name) == value, f"{what}: {name} is {r.headers.get(name)!r}"


def too_large(app: FastAPI) -> bytes:
    return b"csrf=x&text=" + b"x" * app.state.register.settings.max_body_bytes


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def who(request, app: FastAPI, browser: Browser):
    """The anonymous visitor, or the signed-in person (their browser's client)."""
    return new_client(app) if request.param == "anonymous" else browser.client


@pytest.mark.parametrize("who", ["anonymous", "signed_in"], indirect=True)
class TestHeadersOnEveryAnswer:
    def test_get_and_head_on_every_page(self, app, who):
        for path, methods in page_routes(app):
            got = who.get(path, follow_redirects=False)
            assert_page_headers(got, f"GET {path} ({got.status_code})")
            head = who.head(path, follow_redirects=False)
            assert_page_headers(head, f"HEAD {path} ({head.status_code})")
            assert head.status_code == got.status_code, f"HEAD {path} is answered as GET is"
            assert (got.status_code == 405) == ("GET" not in methods), f"GET {path}: {got.status_code}"
            assert head.content == b"", f"HEAD {path} has no body"
            assert head.headers.get("content-type") == got.headers.get("content-type"), path
            assert head.headers.get("location") == got.headers.get("location"), path

    def test_a_form_too_large_is_a_page_with_them(self, app, who):
        for path, _ in page_routes(app):
            r = who.post(path, content=too_large(app), headers=FORM, follow_redirects=False)
            assert r.status_code == 413, f"POST {path}: {r.status_code}"
            assert r.headers["content-type"].startswith("text/html"), path
            assert "What you sent is too long" in r.text, path
            assert_page_headers(r, f"POST {path} too large")

    def test_a_form_too_large_without_a_declared_length_too(self, app, who):
        body = too_large(app)
        r = who.post("/app/disputes", content=iter([body[:1000], body[1000:]]), headers=FORM,
                     follow_redirects=False)
        assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
        assert_page_headers(r, "POST /app/disputes too large, chunked")

    def test_the_routers_own_answers(self, app, who):
        for method in ("GET", "HEAD"):
            r = who.request(method, "/app", follow_redirects=False)
            assert (r.status_code, r.headers["location"]) == (307, "http://testserver/app/"), method
            assert_page_headers(r, f"{method} /app")
            r = who.request(method, "/app/nowhere/at/all", follow_redirects=False)
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), method
            assert_page_headers(r, f"{method} a missing page")
        r = who.delete("/app/help")
        assert (r.status_code, r.headers["allow"]) == (405, "GET"), "a wrong method says which are allowed"
        assert_page_headers(r, "DELETE /app/help")
        for method in ("GET", "HEAD"):  # the regulator's desk is pages too: a mistyped address is a page
            r = who.request(method, "/regulator/nowhere/at/all", follow_redirects=False)
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), method
            assert_page_headers(r, f"{method} a missing desk page")

    def test_the_api_stays_json(self, app, who):
        r = who.post("/v1/consents", content=too_large(app), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        assert "content-security-policy" not in r.headers
        assert who.head("/v1/audit/log-key").status_code == 405, "HEAD is a pages' matter"


class TestErrorPagesKeepTheNavigation:
    def test_every_kind_of_error_page_for_a_signed_in_person(self, app, browser: Browser):
        missing = str(uuid.uuid4())
        answers = {
            "no such address": browser.get("/app/nowhere"),
            "no such event": browser.get(f"/app/who-looked/{missing}"),
            "a malformed id": browser.get("/app/who-looked/" + "x" * 40),
            "no such debt to dispute": browser.get("/app/disputes/new?debt=nope"),
            "no such dispute": browser.post(f"/app/disputes/{missing}/withdraw"),
            "a form without its token": browser.post("/app/sign-out", token=False),
            "a wrong method": browser.client.delete("/app/debts"),
            "a form too large": browser.client.post("/app/disputes", content=too_large(app), headers=FORM),
        }
        for what, r in answers.items():
            assert r.status_code >= 400, (what, r.status_code)
            assert NAV.search(r.text), f"{what} ({r.status_code}): the page lost the navigation"
            assert f'name="csrf" value="{browser.csrf}"' in r.text, what
        assert browser.get("/app/").status_code == 200, "still signed in"

    def test_nobody_elses_navigation_without_a_session(self, app):
        client = new_client(app)
        for r in (client.get("/app/nowhere"), client.post("/app/disputes", content=too_large(app), headers=FORM),
                  client.delete("/app/debts")):
            assert r.status_code >= 400 and not NAV.search(r.text) and 'action="/app/sign-out"' not in r.text
