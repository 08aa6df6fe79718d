"""The regulator's desk under /regulator/: its pages, the staff session, and the attacks on it (no session,
a person's session, a lender's staff, a form without its token), each tried for real."""

from __future__ import annotations

import hashlib

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from register.storage.models import AccessEvent, StaffSession
from register.web.render import CSP
from register.web.staff_session import STAFF_COOKIE
from tests.api.test_exposure import query
from tests.factories import Inst, Person, attest, grant, make_institution, make_person
from tests.web.desk import Desk, staff_sign_in, try_staff_sign_in
from tests.web.pages import new_client, sign_in

PAGES = ["/regulator/", "/regulator/events", "/regulator/events?outcome=refused"]


def _events(app: FastAPI, actor: str, action: str) -> int:
    with app.state.register.sessions() as s:
        return len(s.scalars(select(AccessEvent.id).where(AccessEvent.actor_id == actor,
                                                          AccessEvent.action == action)).all())


def _stacking(client: TestClient, admin_headers, person: Person) -> list[Inst]:
    """Three lenders look `person` up within a minute, each granted: a many_lenders_24h signal."""
    lenders = [make_institution(client, admin_headers, "lender") for _ in range(3)]
    for inst in lenders:
        r = attest(client, inst, person)
        assert r.status_code == 201, r.text
        assert query(client, inst, person, r.json()["id"]).status_code == 200
    return lenders


@pytest.fixture
def desk(app: FastAPI, regulator: Inst) -> Desk:
    return staff_sign_in(app, regulator)


class TestPages:
    @pytest.mark.parametrize("url", PAGES)
    def test_each_page_answers_with_the_pages_headers(self, desk, url):
        r = desk.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["cache-control"] == "no-store"
        assert "<script" not in r.text and " style=" not in r.text  # nothing inline

    def test_the_overview_lists_a_signal_and_its_evidence_opens(self, app, client, admin_headers, desk, data_dir):
        person = make_person(client, data_dir)
        lenders = _stacking(client, admin_headers, person)
        page = desk.get("/regulator/")
        assert "Many lenders in a day" in page.text
        r = client.get("/v1/regulator/signals", params={"kind": "many_lenders_24h"}, headers=desk.regulator.headers)
        (found,) = [s for s in r.json()["items"] if len(s["evidence"]) == 3
                    and set(_actors(app, s["evidence"])) == {i.id for i in lenders}]
        assert f'/regulator/signals/{found["id"]}?days=30' in page.text
        signal = desk.get(f'/regulator/signals/{found["id"]}')
        assert signal.status_code == 200, signal.text
        for event_id in found["evidence"]:
            assert event_id in signal.text
        assert found["subject"] in signal.text  # the blind subject, and never the identity number
        digits = "".join(ch for ch in person.nid if ch.isdigit())
        assert person.nid not in signal.text and digits not in signal.text

    def test_an_unknown_signal_or_institution_is_a_kind_404(self, desk):
        for url in ("/regulator/signals/00000000-0000-0000-0000-000000000000", "/regulator/institutions/nope",
                    "/regulator/signals/" + "x" * 80):
            url += "?lang=en"
            r = desk.get(url)
            assert r.status_code == 404 and "We could not find that" in r.text

    def test_the_institution_page_shows_its_figures_and_records_the_read(self, app, client, admin_headers, desk,
                                                                          data_dir):
        person = make_person(client, data_dir)
        lenders = _stacking(client, admin_headers, person)
        before = _events(app, desk.regulator.id, "regulator:activity:read")
        r = desk.get(f"/regulator/institutions/{lenders[0].id}?lang=en")
        assert r.status_code == 200 and lenders[0].name in r.text and lenders[0].id in r.text
        figures = r.text.split('id="lookups-title"')[1]
        assert "<dt>Lookups</dt><dd>1</dd>" in figures and "<dt>Allowed</dt><dd>1</dd>" in figures
        assert "<dt>Allowed lookups per consent</dt><dd>1</dd>" in figures
        assert "Median time to answer (hours)" in figures and "Lines reported" in figures
        assert _events(app, desk.regulator.id, "regulator:activity:read") == before + 1
        with app.state.register.sessions() as s:
            details = s.scalars(select(AccessEvent.details).where(
                AccessEvent.actor_id == desk.regulator.id, AccessEvent.action == "regulator:activity:read")
                .order_by(AccessEvent.occurred_at.desc())).first()
        assert details["institution_id"] == lenders[0].id

    def test_the_access_log_filters_by_institution(self, desk, lender, client, data_dir):
        person = make_person(client, data_dir)
        attest(client, lender, person)
        r = desk.get(f"/regulator/events?institution={lender.id}")
        assert r.status_code == 200 and lender.name in r.text and "<code>consent:attest</code>" in r.text
        other = desk.get("/regulator/events?institution=00000000-0000-0000-0000-000000000000")
        assert lender.name not in other.text.split('id="events-title"')[1]

    def test_every_view_is_an_access_event_of_the_regulator(self, app, desk):
        before = (_events(app, desk.regulator.id, "regulator:signals:read"),
                  _events(app, desk.regulator.id, "regulator:events:read"))
        desk.get("/regulator/")
        desk.get("/regulator/events")
        after = (_events(app, desk.regulator.id, "regulator:signals:read"),
                 _events(app, desk.regulator.id, "regulator:events:read"))
        assert after == (before[0] + 1, before[1] + 1)

    def test_every_language(self, desk):
        for lang in ("en", "sv", "pl", "fi", "nb"):
            r = desk.get(f"/regulator/?lang={lang}")
            assert r.status_code == 200 and f'<html lang="{lang}">' in r.text


def _actors(app: FastAPI, event_ids: list[str]) -> list[str]:
    with app.state.register.sessions() as s:
        return list(s.scalars(select(AccessEvent.actor_id).where(AccessEvent.id.in_(event_ids))))


class TestStaffSession:
    def test_the_cookie_is_http_only_strict_and_scoped_to_the_desk(self, app, regulator):
        client = new_client(app)
        r = try_staff_sign_in(client, regulator.id)
        (header,) = [h.lower() for h in r.headers.get_list("set-cookie") if h.startswith(STAFF_COOKIE + "=")]
        assert "httponly" in header and "samesite=strict" in header and "path=/regulator" in header

    def test_the_table_keeps_only_a_hash_of_the_token(self, app, desk):
        token = desk.client.cookies.get(STAFF_COOKIE)
        with app.state.register.sessions() as s:
            row = s.get(StaffSession, hashlib.sha256(token.encode()).hexdigest())
        assert row is not None and row.institution_id == desk.regulator.id
        assert all(token not in str(v) for v in row.model_dump().values())

    def test_sign_out_ends_the_session(self, app, desk):
        token = desk.client.cookies.get(STAFF_COOKIE)
        r = desk.post("/regulator/sign-out")
        assert r.status_code == 303 and r.headers["location"] == "/regulator/sign-in?signed_out=1"
        stale = new_client(app)
        stale.cookies.set(STAFF_COOKIE, token, path="/regulator")
        assert stale.get("/regulator/", follow_redirects=False).status_code == 303

    def test_idle_time_ends_the_session(self, app, desk, clock):
        clock.advance(seconds=app.state.register.settings.session_idle_seconds + 1)
        r = desk.get("/regulator/")
        assert r.status_code == 303 and r.headers["location"].startswith("/regulator/sign-in?next=")


class TestAttacks:
    @pytest.mark.parametrize("url", [*PAGES, "/regulator/institutions/x", "/regulator/signals/x"])
    def test_no_session_is_sent_to_sign_in(self, app, url):
        r = new_client(app).get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/regulator/sign-in")

    def test_a_persons_session_opens_no_desk_page(self, app, client, lender, data_dir):
        person = make_person(client, data_dir)
        browser = sign_in(app, person)
        from register.web.session import SESSION_COOKIE
        token = browser.client.cookies.get(SESSION_COOKIE)
        for url in PAGES:
            assert browser.get(url).status_code == 303  # the cookie is not even sent under /regulator
            forged = new_client(app)  # and set there by hand, as either cookie, it opens nothing
            forged.cookies.set(SESSION_COOKIE, token, path="/regulator")
            forged.cookies.set(STAFF_COOKIE, token, path="/regulator")
            r = forged.get(url, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/regulator/sign-in")

    def test_a_lenders_staff_cannot_sign_in(self, app, lender):
        client = new_client(app)
        r = try_staff_sign_in(client, lender.id)
        assert r.status_code == 403 and "Only the staff of a regulator" in r.text
        assert STAFF_COOKIE not in client.cookies
        assert client.get("/regulator/", follow_redirects=False).status_code == 303

    def test_a_lenders_api_token_opens_no_desk_page(self, app, lender):
        client = new_client(app, Authorization=f"Bearer {lender.token}")
        for url in PAGES:
            assert client.get(url, follow_redirects=False).status_code == 303

    def test_a_regulator_that_stops_being_one_loses_its_desk(self, app, admin_headers, client):
        reg = make_institution(client, admin_headers, "regulator")
        desk = staff_sign_in(app, reg)
        with app.state.register.sessions.begin() as s:
            from register.storage.models import Institution
            s.get(Institution, reg.id).role = "lender"
        assert desk.get("/regulator/").status_code == 303

    def test_sign_out_without_the_forms_token_is_refused(self, desk):
        r = desk.post("/regulator/sign-out", token=False)
        assert r.status_code == 403 and "The form could not be accepted" in r.text
        assert desk.get("/regulator/").status_code == 200  # still signed in
        r = desk.post("/regulator/sign-out", {"csrf": "0" * 64}, token=False)
        assert r.status_code == 403

    def test_the_sign_in_form_needs_its_token(self, app, regulator):
        client = new_client(app)
        client.get("/regulator/sign-in")
        r = client.post("/regulator/sign-in", data={"institution": regulator.id}, follow_redirects=False)
        assert r.status_code == 403 and STAFF_COOKIE not in client.cookies

    def test_next_never_leaves_the_desk(self, app, regulator):
        client = new_client(app)
        from tests.web.pages import csrf_of
        page = client.get("/regulator/sign-in")
        for target in ("https://evil.test/", "//evil.test/", "/app/", "/regulator/\\evil"):
            r = client.post("/regulator/sign-in", data={"csrf": csrf_of(page.text), "institution": regulator.id,
                                                        "next": target}, follow_redirects=False)
            assert r.headers["location"] == "/regulator/"


class TestEveryAnswer:
    @pytest.mark.parametrize("days", ["0", "91", "-1", "x", "9" * 40, "1e3", "abc", "1000", "١"])
    def test_a_bad_period_is_a_422_that_says_so(self, desk, regulator, days):
        for url in ("/regulator/", f"/regulator/institutions/{regulator.id}", "/regulator/signals/x"):
            r = desk.get(f"{url}?days={days}&lang=en")
            assert r.status_code == 422 and r.headers["content-security-policy"] == CSP, (url, days)
            assert "The period must be 1 to 90 days." in r.text
            assert "changed" not in r.text.split("<main")[1] and "signal is found" not in r.text

    def test_a_bad_cursor_is_a_422_that_says_so(self, desk):
        for after in ("not-a-cursor", "zzz", "z" * 600):
            r = desk.get(f"/regulator/events?after={after}&lang=en")
            assert r.status_code == 422 and r.headers["content-security-policy"] == CSP
            assert "That page link is not valid; start again from the first page." in r.text
            assert "changed" not in r.text.split("<main")[1]

    def test_a_too_long_action_or_a_bad_filter_is_a_422_that_says_so(self, desk):
        r = desk.get("/regulator/events?lang=en&action=" + "a" * 500)
        assert r.status_code == 422 and "at most 60 characters" in r.text
        for query in ("outcome=nope", "institution=" + "x" * 80):
            r = desk.get(f"/regulator/events?lang=en&{query}")
            assert r.status_code == 422 and "Choose the institution and the outcome" in r.text, query

    @pytest.mark.parametrize("lang", ["en", "sv", "pl", "fi", "nb"])
    def test_bad_input_pages_are_in_every_language(self, desk, lang):
        en = {"/regulator/?days=0": "The period must be 1 to 90 days.",
              "/regulator/events?after=zzz": "That page link is not valid",
              "/regulator/institutions/nope": "We could not find that institution"}
        for url, words in en.items():
            r = desk.get(f"{url}{'&' if '?' in url else '?'}lang={lang}")
            assert r.status_code in (404, 422) and (words in r.text) == (lang == "en"), (url, lang)

    def test_an_unknown_or_malformed_institution_is_a_404_about_the_institution(self, desk):
        for url in ("/regulator/institutions/nope", "/regulator/institutions/" + "x" * 80,
                    "/regulator/institutions/00000000-0000-0000-0000-000000000000?days=1000"):
            r = desk.get(url + ("&" if "?" in url else "?") + "lang=en")
            assert r.status_code == 404 and "We could not find that institution" in r.text, url
            assert "signal" not in r.text.split("<main")[1].lower(), url

    @pytest.mark.parametrize("signed_in", [False, True])
    def test_every_desk_answer_carries_the_pages_headers(self, app, desk, signed_in):
        client = desk.client if signed_in else new_client(app)
        for r in (client.get("/regulator/sign-in"), client.get("/regulator/", follow_redirects=False),
                  client.get("/regulator/nowhere"), client.delete("/regulator/"),
                  client.post("/regulator/sign-out", follow_redirects=False)):
            assert r.headers.get("content-security-policy") == CSP, (r.request.url, r.status_code)
            assert r.headers.get("cache-control") == "no-store"


def _main(text: str) -> str:
    return text.split('id="main"')[1]


class TestPlainWords:
    """The desk shows words, not the register's codes, for roles, who acted and why a lookup was refused."""

    @pytest.mark.parametrize("lang", ["en", "sv", "pl", "fi", "nb"])
    def test_refusals_roles_and_who_are_words_in_every_language(self, app, desk, client, lender, data_dir, lang):
        person = make_person(client, data_dir)
        r = query(client, lender, person, "00000000-0000-4000-8000-000000000000")
        assert r.status_code == 403 and r.json()["code"] == "consent_missing"
        grant(client, person.headers, lender.id)
        with app.state.register.sessions() as s:
            granted = s.scalars(select(AccessEvent.action).where(AccessEvent.actor_role == "consumer")
                                .order_by(AccessEvent.occurred_at.desc())).first()
        log = _main(desk.get(f"/regulator/events?institution={lender.id}&lang={lang}").text)
        assert "exposure:query" in log and "consent_missing" not in log, lang
        inst = _main(desk.get(f"/regulator/institutions/{lender.id}?lang={lang}").text)
        assert "consent_missing" not in inst and "<dd>lender</dd>" not in inst, lang
        mine = _main(desk.get(f"/regulator/events?action={granted}&lang={lang}").text)
        assert "<td>consumer</td>" not in mine, lang
        if lang == "en":
            assert "Refused: there was no consent" in log
            assert "<dd>Lender</dd>" in inst and "there was no consent" in inst
            assert "The person, on their own pages" in mine


class TestEmptyEvidence:
    def test_a_late_reporting_signal_without_access_events_says_where_its_evidence_is(self, app, client, desk,
                                                                                      lender, data_dir):
        from datetime import timedelta

        from register.storage.models import ObligationVersion
        from tests.factories import debtor, new_ref, obligation_body
        person = make_person(client, data_dir)
        as_of = (app.state.register.clock() - timedelta(days=10)).isoformat().replace("+00:00", "Z")
        r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)], as_of=as_of),
                       headers=lender.headers)
        assert r.status_code == 201, r.text
        with app.state.register.sessions.begin() as s:  # as a line that came in a file with no request's event
            for v in s.scalars(select(ObligationVersion).where(ObligationVersion.institution_id == lender.id)):
                v.request_id = None
        page = desk.get("/regulator/?lang=en")
        r = client.get("/v1/regulator/signals", params={"kind": "late_reporting"}, headers=desk.regulator.headers)
        (found,) = [s for s in r.json()["items"] if s["institution_id"] == lender.id]
        assert found["evidence"] == []
        row = page.text.split(f'/regulator/signals/{found["id"]}?days=30">')[1].split("<")[0]
        assert row == "Open the signal"
        signal = _main(desk.get(f'/regulator/signals/{found["id"]}?lang=en').text)
        assert "rests on the lines and files the creditor reported, not on access events" in signal
        assert '<ol class="evidence' not in signal


class TestEvidenceLinks:
    def test_each_evidence_event_shows_what_it_was_and_opens_the_access_log_at_it(self, app, client,
                                                                                   admin_headers, desk, data_dir):
        import html
        person = make_person(client, data_dir)
        lenders = _stacking(client, admin_headers, person)
        r = client.get("/v1/regulator/signals", params={"kind": "many_lenders_24h"}, headers=desk.regulator.headers)
        (found,) = [s for s in r.json()["items"] if set(_actors(app, s["evidence"])) == {i.id for i in lenders}]
        signal = _main(desk.get(f'/regulator/signals/{found["id"]}?lang=en').text)
        names = {i.id: i.name for i in lenders}
        with app.state.register.sessions() as s:
            actors = dict(s.execute(select(AccessEvent.id, AccessEvent.actor_id)
                                    .where(AccessEvent.id.in_(found["evidence"]))).all())
        for event_id, actor in actors.items():
            item = signal.split(f"<code>{event_id}</code></a>")[1].split("</li>")[0]
            assert "<code>exposure:query</code>" in item and "Allowed" in item
            assert html.escape(names[actor]) in item or names[actor] in item
            href = html.unescape(signal.split(f"<code>{event_id}</code></a>")[0].rsplit('<a href="', 1)[1]
                                 .split('"')[0])
            assert href.endswith(f"#event-{event_id}")
            log = desk.get(href.split("#")[0])
            assert log.status_code == 200 and f'<tr id="event-{event_id}">' in log.text
