"""The person's session: its cookie, what the table keeps, idle expiry, sign-out, CSRF, and the headers
every page carries."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from sqlalchemy import select

from register.storage.models import WebSession
from register.web.render import CSP
from register.web.session import SESSION_COOKIE
from tests.factories import make_person
from tests.web.pages import csrf_of, new_client, sign_in


def _rows(app: FastAPI) -> list[WebSession]:
    with app.state.register.sessions() as s:
        return list(s.execute(select(WebSession)).scalars())


def _session_cookie(response) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")]
    return header


class TestCookie:
    def test_http_only_strict_and_scoped_to_the_pages(self, app, person):
        client = new_client(app)
        page = client.get("/app/sign-in")
        r = client.post("/app/sign-in", data={"csrf": csrf_of(page.text), "person": "typed", "country": "SE",
                                              "national_id": person.nid}, follow_redirects=False)
        header = _session_cookie(r).lower()
        assert "httponly" in header and "samesite=strict" in header and "path=/app" in header
        assert "secure" not in header  # REGISTER_ENV=dev serves plain http; prod sets Secure (TestOidc)
        assert "max-age" not in header and "expires" not in header  # ends with the browser

    def test_the_table_keeps_a_hash_of_the_token_and_no_identity_in_plain_text(self, app, person):
        browser = sign_in(app, person)
        token = browser.client.cookies.get(SESSION_COOKIE)
        digest = hashlib.sha256(token.encode()).hexdigest()
        (row,) = [r for r in _rows(app) if r.token_hash == digest]
        digits = "".join(ch for ch in person.nid if ch.isdigit())
        for secret in (token, person.nid, digits):
            assert secret.encode() not in row.national_id_enc
            assert all(secret not in str(v) for v in row.model_dump().values())

    def test_a_new_sign_in_gets_a_new_token_and_ends_the_old_session(self, app, person):
        browser = sign_in(app, person)
        old = browser.client.cookies.get(SESSION_COOKIE)
        sign_in(app, person, client=browser.client)
        assert browser.client.cookies.get(SESSION_COOKIE) != old
        stale = new_client(app)
        stale.cookies.set(SESSION_COOKIE, old, path="/app")
        assert stale.get("/app/", follow_redirects=False).status_code == 303


class TestIdleExpiry:
    def test_fifteen_minutes_idle_ends_the_session(self, app, person, clock):
        browser = sign_in(app, person)
        clock.advance(minutes=14, seconds=59)
        assert browser.get("/app/").status_code == 200  # and this request restarts the idle clock
        clock.advance(minutes=15, seconds=1)
        r = browser.get("/app/debts")
        assert r.status_code == 303
        assert r.headers["location"] == "/app/sign-in?next=/app/debts&expired=1"
        assert "signed out after a while" in browser.client.get(r.headers["location"]).text
        digest = hashlib.sha256(browser.client.cookies.get(SESSION_COOKIE).encode()).hexdigest()
        assert digest not in {row.token_hash for row in _rows(app)}, "the idle session's row is deleted"

    def test_staying_signed_in_restarts_the_idle_clock(self, app, person, clock):
        browser = sign_in(app, person)
        clock.advance(minutes=13)
        r = browser.post("/app/keep-alive", {"next": "/app/consents"})
        assert (r.status_code, r.headers["location"]) == (303, "/app/consents")
        clock.advance(minutes=13)
        assert browser.post("/app/keep-alive", {"js": "1"}).status_code == 204
        clock.advance(minutes=13)
        assert browser.get("/app/").status_code == 200

    def test_the_page_says_when_it_will_warn(self, browser, app):
        html = browser.get("/app/").text
        settings = app.state.register.settings
        assert f'data-idle-seconds="{settings.session_idle_seconds}"' in html
        assert f'data-warning-seconds="{settings.session_warning_seconds}"' in html
        assert 'id="idle-alert"' in html and "/app/static/idle.js" in html
        assert 'action="/app/keep-alive"' in html  # the button that works without script


class TestSignOut:
    def test_sign_out_deletes_the_session(self, app, browser):
        token = browser.client.cookies.get(SESSION_COOKIE)
        r = browser.post("/app/sign-out")
        assert (r.status_code, r.headers["location"]) == (303, "/app/sign-in?signed_out=1")
        assert hashlib.sha256(token.encode()).hexdigest() not in {row.token_hash for row in _rows(app)}
        replay = new_client(app)
        replay.cookies.set(SESSION_COOKIE, token, path="/app")
        assert replay.get("/app/", follow_redirects=False).status_code == 303


class TestCsrf:
    def test_a_form_without_the_token_is_refused_and_changes_nothing(self, app, browser):
        for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}):
            r = browser.post("/app/sign-out", data, token=False)
            assert r.status_code == 403, r.text
            assert "The form could not be accepted" in r.text and "nothing was changed" in r.text
        assert browser.get("/app/").status_code == 200, "still signed in"

    def test_another_sessions_token_is_refused(self, app, client, data_dir, browser):
        other = sign_in(app, make_person(client, data_dir))
        assert browser.post("/app/keep-alive", {"csrf": other.csrf}, token=False).status_code == 403

    def test_the_sign_in_form_needs_its_token(self, app, person):
        client = new_client(app)
        client.get("/app/sign-in")
        r = client.post("/app/sign-in", data={"person": "typed", "country": "SE", "national_id": person.nid},
                        follow_redirects=False)
        assert r.status_code == 403
        assert SESSION_COOKIE not in client.cookies

    def test_a_sign_in_token_from_another_browser_is_refused(self, app, person):
        token = csrf_of(new_client(app).get("/app/sign-in").text)
        client = new_client(app)
        client.get("/app/sign-in")
        r = client.post("/app/sign-in", data={"csrf": token, "person": "typed", "country": "SE",
                                              "national_id": person.nid}, follow_redirects=False)
        assert r.status_code == 403


class TestSignIn:
    def test_an_invalid_identity_is_refused_without_echoing_it(self, app):
        client = new_client(app)
        page = client.get("/app/sign-in")
        r = client.post("/app/sign-in", data={"csrf": csrf_of(page.text), "person": "typed", "country": "SE",
                                              "national_id": "19900101-1235"}, follow_redirects=False)
        assert r.status_code == 422
        assert "not a valid identity number" in r.text and "19900101" not in r.text
        assert SESSION_COOKIE not in client.cookies

    def test_after_sign_in_only_pages_of_ours_are_gone_to(self, app, person):
        for given, went in (("/app/consents", "/app/consents"), ("https://evil.example/", "/app/"),
                            ("//evil.example/app/", "/app/"), ("/app/\\evil", "/app/"), ("/v1/me", "/app/")):
            client = new_client(app)
            page = client.get("/app/sign-in")
            r = client.post("/app/sign-in", data={"csrf": csrf_of(page.text), "person": "typed", "country": "SE",
                                                  "national_id": person.nid, "next": given}, follow_redirects=False)
            assert r.headers["location"] == went, given

    def test_the_demo_persons_are_shown_masked(self, app, data_dir, person):
        import json

        from register.domain.identity import parse_national_id

        path = data_dir / "demo.json"
        existed = path.exists()
        if not existed:
            path.write_text(json.dumps({"institutions": {}, "persons": [person.nid]}))
        try:
            numbers = json.loads(path.read_text())["persons"]
            html = new_client(app).get("/app/sign-in").text
            for n in numbers:
                assert n not in html
                assert parse_national_id("SE", n, allow_test=True).masked() in html
        finally:
            if not existed:
                path.unlink()


class TestHeaders:
    PAGES = ("/app/", "/app/debts", "/app/who-looked", "/app/consents", "/app/disputes", "/app/credit-ban", "/app/help",
             "/app/what-we-keep", "/app/notifications", "/app/statistics", "/app/sign-in",
             "/app/nowhere-to-be-found-but-under-app")

    def test_every_page_has_the_security_headers(self, browser):
        for url in self.PAGES[:-1]:
            r = browser.get(url)
            assert r.status_code == 200, url
            assert r.headers["content-security-policy"] == CSP, url
            assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert r.headers["cache-control"] == "no-store"
            assert "<script>" not in r.text and " on" + "click=" not in r.text and "style=" not in r.text

    def test_refusals_and_redirects_have_them_too(self, app, browser):
        for r in (new_client(app).get("/app/", follow_redirects=False), browser.post("/app/sign-out", token=False),
                  browser.get("/app/who-looked/not-an-event")):
            assert r.headers["content-security-policy"] == CSP, r.status_code
            assert r.headers["cache-control"] == "no-store"

    def test_a_mistyped_address_is_a_page_with_them(self, app, browser):
        for r in (browser.get(self.PAGES[-1]), new_client(app).get("/app/debts/extra/parts"),
                  new_client(app).delete("/app/help")):
            assert r.status_code in (404, 405) and r.headers["content-type"].startswith("text/html"), r.text
            assert r.headers["content-security-policy"] == CSP and r.headers["cache-control"] == "no-store"
            assert "We could not find that" in r.text or "That could not be done" in r.text
        assert browser.get("/v1/nowhere").headers["content-type"] == "application/problem+json", "the API is JSON"

    def test_static_files_are_served_by_name_only(self, app):
        client = new_client(app)
        css = client.get("/app/static/style.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert client.get("/app/static/idle.js").headers["content-type"].startswith("text/javascript")
        for name in ("../help.json", "..%2Fhelp.json", "templates", "messages.py"):
            assert client.get(f"/app/static/{name}").status_code == 404, name


class TestWithoutASession:
    def test_sign_in_returns_to_the_page_with_its_query(self, app, browser):
        r = new_client(app).get("/app/disputes/new?debt=abc", follow_redirects=False)
        assert r.headers["location"] == "/app/sign-in?next=/app/disputes/new%3Fdebt%3Dabc"
        page = browser.get("/app/disputes?opened=1").text  # the stay-signed-in form returns here, query and all
        assert 'name="next" value="/app/disputes?opened=1"' in page

    def test_a_bearer_token_is_not_a_session(self, app, person):
        client = new_client(app, **person.headers)
        r = client.get("/app/", follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/app/sign-in?next=/app/")
        r = client.post("/app/keep-alive", follow_redirects=False)
        assert r.status_code == 401 and "Please sign in" in r.text
