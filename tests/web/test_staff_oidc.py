"""The desk's staff sign-in through an OpenID Connect provider (REGISTER_ENV=prod, REGISTER_STAFF_OIDC_*),
against the stand-in provider of test_oidc.py: code flow with PKCE through the person's OIDC client, then
the attacks: an ID token naming a lender, or no institution, or spoiled, or a person's flow cookie."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from register.main import create_app
from register.storage.models import StaffSession
from register.web.oidc import FLOW_COOKIE, STAFF_FLOW, open_flow, seal_flow
from register.web.staff_session import STAFF_COOKIE
from register.web.staff_sign_in import STAFF_FLOW_COOKIE
from register.web.state import WebState
from tests.conftest import make_settings
from tests.web.test_oidc import CLIENT_ID, ISSUER, REDIRECT, SECRET, StandInProvider


@pytest.fixture(scope="module")
def provider() -> StandInProvider:
    return StandInProvider()


@pytest.fixture(scope="module")
def staff_app(database_url: str, tmp_path_factory, keys, provider) -> Iterator[FastAPI]:
    # The stand-in echoes one redirect URL and fills the claim `national_id` from what `authorize` is given:
    # here the staff member's institution id, so the desk reads that claim.
    settings = make_settings(database_url, tmp_path_factory.mktemp("staff"), env="prod", staff_oidc_issuer=ISSUER,
                             staff_oidc_client_id=CLIENT_ID, staff_oidc_client_secret=SECRET,
                             staff_oidc_redirect_url=REDIRECT, staff_oidc_institution_claim="national_id")
    application = create_app(settings, keys=keys)
    application.state.web = WebState.from_settings(settings, http=httpx.Client(transport=httpx.MockTransport(
        provider.handle)))
    yield application
    application.state.register.engine.dispose()


def browser(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://register.test", raise_server_exceptions=False)


def start(client: TestClient) -> str:
    r = client.get("/regulator/sign-in/oidc?next=/regulator/events", follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(STAFF_FLOW_COOKIE)).lower()
    assert "httponly" in cookie and "secure" in cookie and "path=/regulator/sign-in" in cookie
    return r.headers["location"]


def sessions(app: FastAPI) -> int:
    with app.state.register.sessions() as s:
        return s.execute(select(func.count()).select_from(StaffSession)).scalar_one()


class TestStaffOidc:
    def test_the_sign_in_page_offers_the_provider_and_no_stand_in(self, staff_app, regulator):
        page = browser(staff_app).get("/regulator/sign-in").text
        assert 'href="/regulator/sign-in/oidc?next=' in page and regulator.name not in page
        assert browser(staff_app).post("/regulator/sign-in", data={"institution": regulator.id},
                                       follow_redirects=False).status_code == 404

    def test_code_flow_with_pkce_signs_a_regulators_staff_in(self, staff_app, provider, regulator):
        client = browser(staff_app)
        back = provider.authorize(start(client), nid=regulator.id)
        r = client.get("/regulator/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 200, r.text
        assert '<meta http-equiv="refresh" content="0;url=/regulator/events">' in r.text
        header = next(h for h in r.headers.get_list("set-cookie") if h.startswith(STAFF_COOKIE + "=")).lower()
        assert "secure" in header and "httponly" in header and "samesite=strict" in header
        page = client.get("/regulator/events", follow_redirects=False)
        assert page.status_code == 200 and regulator.name in page.text

    def test_an_id_token_naming_a_lender_is_refused(self, staff_app, provider, lender):
        client, before = browser(staff_app), sessions(staff_app)
        back = provider.authorize(start(client), nid=lender.id)
        r = client.get("/regulator/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 403 and "Only a regulator" in r.text
        assert STAFF_COOKIE not in client.cookies and sessions(staff_app) == before

    @pytest.mark.parametrize("spoil", ["nonce", "key", "aud", "iss", "exp", "long_lived"])
    def test_a_wrong_id_token_is_refused(self, staff_app, provider, regulator, spoil):
        client, before = browser(staff_app), sessions(staff_app)
        back = provider.authorize(start(client), nid=regulator.id)
        provider.spoil = spoil
        r = client.get("/regulator/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 401 and STAFF_COOKIE not in client.cookies and sessions(staff_app) == before

    def test_a_persons_flow_cookie_starts_no_staff_sign_in(self, staff_app, provider, regulator):
        """The same flow sealed as a person's e-ID sign-in is (another associated data): refused."""
        client = browser(staff_app)
        back = provider.authorize(start(client), nid=regulator.id)
        cipher = staff_app.state.register.cipher
        flow = open_flow(cipher, client.cookies.get(STAFF_FLOW_COOKIE), column=STAFF_FLOW)
        other = browser(staff_app)
        other.cookies.set(STAFF_FLOW_COOKIE, seal_flow(cipher, flow), path="/regulator/sign-in")
        other.cookies.set(FLOW_COOKIE, seal_flow(cipher, flow), path="/regulator/sign-in")
        r = other.get("/regulator/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 401 and STAFF_COOKIE not in other.cookies
