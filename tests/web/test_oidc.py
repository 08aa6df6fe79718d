"""Sign-in through an OpenID Connect provider (REGISTER_ENV=prod), against a stand-in provider: a tiny
HTTP app serving discovery, authorize, token and JWKS, reached through httpx's mock transport. The happy
path, then the attacks: each is refused and leaves no session."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from register.main import create_app
from register.storage.models import WebSession
from register.web.oidc import FLOW_COOKIE
from register.web.session import SESSION_COOKIE
from register.web.state import WebState
from tests.conftest import make_settings
from tests.factories import national_id

ISSUER = "https://idp.test"
CLIENT_ID = "register-web"
SECRET = "s3cret-of-the-register"
REDIRECT = "https://register.test/app/sign-in/callback"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class StandInProvider:
    """Just enough of a national e-ID: codes are single-use, bound to the client, redirect URI and PKCE
    challenge; ID tokens are ES256. `spoil` makes the next ID token wrong in one way."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = "idp-1"
        self.codes: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        self.spoil: str | None = None

    def jwk(self) -> dict[str, Any]:
        return {**jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": self.kid,
                "use": "sig", "alg": "ES256"}

    def authorize(self, url: str, *, nid: str, country: str = "SE") -> dict[str, str]:
        """The person signs in at the provider; returns the query the provider redirects back with."""
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/authorize"
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID and q["redirect_uri"] == REDIRECT
        assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
        assert "openid" in q["scope"].split() and q["nonce"] and q["state"]
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q["nonce"], "nid": nid, "country": country}
        return {"code": code, "state": q["state"]}

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                                             "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks"})
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [self.jwk()]})
        if path == "/token" and request.method == "POST":
            return self._token(request)
        return httpx.Response(404)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, json={"error": "invalid_client"})
        code = form.get("code", "")
        grant = self.codes.get(code)
        if grant is None or code in self.used or form.get("redirect_uri") != REDIRECT:
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.used.add(code)
        if _b64(hashlib.sha256(form.get("code_verifier", "").encode()).digest()) != grant["challenge"]:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "PKCE"})
        return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer",
                                         "id_token": self._id_token(grant)})

    def _id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "pairwise-" + grant["nid"][-4:], "iat": now,
                  "exp": now + 300, "nonce": grant["nonce"], "national_id": grant["nid"], "country": grant["country"]}
        key, kid, spoil = self.key, self.kid, self.spoil
        self.spoil = None
        if spoil == "nonce":
            claims["nonce"] = "another-sign-in"
        elif spoil == "key":
            key = ec.generate_private_key(ec.SECP256R1())  # same kid, another key
        elif spoil == "aud":
            claims["aud"] = "another-client"
        elif spoil == "iss":
            claims["iss"] = "https://evil.test"
        elif spoil == "exp":
            claims["iat"], claims["exp"] = now - 600, now - 60
        elif spoil == "identity":
            claims["national_id"] = "19900101-1235"
        elif spoil == "long_lived":  # over REGISTER_ID_TOKEN_MAX_SECONDS (3600)
            claims["exp"] = now + 7200
        elif spoil == "iat_text":  # PyJWT reads "123" as 123: a time must be a number
            claims["iat"] = str(now)
        elif spoil == "iat_nan":
            claims["iat"] = float("nan")
        elif spoil == "exp_huge":
            claims["exp"] = 10**400
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


@pytest.fixture(scope="module")
def provider() -> StandInProvider:
    return StandInProvider()


@pytest.fixture(scope="module")
def prod_app(database_url: str, tmp_path_factory, keys, provider) -> Iterator[FastAPI]:
    """The same database as the other tests, served as in production: no development sign-in."""
    settings = make_settings(database_url, tmp_path_factory.mktemp("prod"), env="prod", oidc_issuer=ISSUER,
                             oidc_client_id=CLIENT_ID, oidc_client_secret=SECRET, oidc_redirect_url=REDIRECT)
    application = create_app(settings, keys=keys)
    application.state.web = WebState.from_settings(settings, http=httpx.Client(transport=httpx.MockTransport(
        provider.handle)))
    yield application
    application.state.register.engine.dispose()


def browser(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://register.test", raise_server_exceptions=False)


def start(client: TestClient, next_page: str = "/app/consents") -> str:
    r = client.get(f"/app/sign-in/oidc?next={next_page}", follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(FLOW_COOKIE)).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie and "path=/app/sign-in" in cookie
    return r.headers["location"]


def sessions(app: FastAPI) -> int:
    with app.state.register.sessions() as s:
        return s.execute(select(func.count()).select_from(WebSession)).scalar_one()


class TestOidcSignIn:
    def test_the_sign_in_page_offers_the_e_id_and_no_development_sign_in(self, prod_app):
        page = browser(prod_app).get("/app/sign-in").text
        assert 'href="/app/sign-in/oidc?next=' in page and "demo person" not in page
        r = browser(prod_app).post("/app/sign-in", data={"person": "typed"}, follow_redirects=False)
        assert r.status_code == 404

    def test_code_flow_with_pkce_signs_the_person_in(self, prod_app, provider):
        client, nid = browser(prod_app), national_id()
        back = provider.authorize(start(client), nid=nid)
        r = client.get("/app/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 200, r.text
        assert '<meta http-equiv="refresh" content="0;url=/app/consents">' in r.text
        header = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")).lower()
        assert "secure" in header and "httponly" in header and "samesite=strict" in header
        page = client.get("/app/consents", follow_redirects=False)
        assert page.status_code == 200 and f"{nid[:8]}-****" not in page.text  # (the overview shows it)
        assert f"{nid[:8]}-****" in client.get("/app/").text and nid not in client.get("/app/").text

    @pytest.mark.parametrize("spoil", ["nonce", "key", "aud", "iss", "exp", "identity", "long_lived", "iat_text",
                                       "iat_nan", "exp_huge"])
    def test_a_wrong_id_token_is_refused(self, prod_app, provider, spoil):
        client = browser(prod_app)
        back = provider.authorize(start(client), nid=national_id())
        provider.spoil = spoil
        before = sessions(prod_app)
        r = client.get("/app/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 401 and "Signing in did not complete" in r.text, spoil
        assert SESSION_COOKIE not in client.cookies and sessions(prod_app) == before
        assert client.get("/app/", follow_redirects=False).status_code == 303

    def test_a_wrong_state_is_refused(self, prod_app, provider):
        client = browser(prod_app)
        back = provider.authorize(start(client), nid=national_id())
        before = sessions(prod_app)
        r = client.get("/app/sign-in/callback", params={**back, "state": "forged"}, follow_redirects=False)
        assert r.status_code == 401 and sessions(prod_app) == before and SESSION_COOKIE not in client.cookies
        assert back["code"] not in provider.used, "refused before the code was spent"

    def test_a_replayed_code_is_refused(self, prod_app, provider):
        client = browser(prod_app)
        back = provider.authorize(start(client), nid=national_id())
        flow = client.cookies.get(FLOW_COOKIE)
        assert client.get("/app/sign-in/callback", params=back, follow_redirects=False).status_code == 200
        before = sessions(prod_app)
        attacker = browser(prod_app)
        attacker.cookies.set(FLOW_COOKIE, flow, path="/app/sign-in")  # even with the flow's own cookie
        r = attacker.get("/app/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 401 and sessions(prod_app) == before and SESSION_COOKIE not in attacker.cookies

    def test_a_callback_without_a_sign_in_started_here_is_refused(self, prod_app, provider):
        victim = browser(prod_app)
        back = provider.authorize(start(browser(prod_app)), nid=national_id())  # the attacker's own sign-in
        r = victim.get("/app/sign-in/callback", params=back, follow_redirects=False)
        assert r.status_code == 401 and SESSION_COOKIE not in victim.cookies
        forged = browser(prod_app)
        forged.cookies.set(FLOW_COOKIE, "bm90LW91cnM", path="/app/sign-in")
        assert forged.get("/app/sign-in/callback", params=back, follow_redirects=False).status_code == 401

    def test_the_provider_saying_no_is_refused(self, prod_app, provider):
        client = browser(prod_app)
        state = parse_qs(urlsplit(start(client)).query)["state"][0]
        r = client.get("/app/sign-in/callback", params={"error": "access_denied", "state": state},
                       follow_redirects=False)
        assert r.status_code == 401 and SESSION_COOKIE not in client.cookies
