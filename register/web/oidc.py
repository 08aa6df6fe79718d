"""Sign-in through the national e-ID's OpenID Connect provider: the authorisation-code flow with PKCE (S256),
`state` and `nonce` (OpenID Connect Core 1.0 section 3.1, RFC 7636).

The flow's secrets (state, nonce, code verifier) travel in an encrypted, HttpOnly cookie bound to this
browser, never in a URL. The callback is refused, and no session made, when the state differs, the flow is
older than ten minutes, the provider will not exchange the code (a replayed one), or the ID token is not
signed by a key in the provider's JWKS, or names another issuer, audience or nonce, or has expired, or
lacks `iat`, or lives longer than REGISTER_ID_TOKEN_MAX_SECONDS, or has a time that is not a finite
number in range (register.crypto.idtoken.check_lifetime, as for the API's ID tokens).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from register.config import Settings
from register.crypto.fields import DecryptionError, FieldCipher
from register.crypto.idtoken import IdTokenError, check_lifetime
from register.domain.identity import InvalidNationalId, NationalId, parse_national_id
from register.errors import Unauthenticated

FLOW_COOKIE = "register_oidc"
FLOW_COOKIE_PATH = "/app/sign-in"
FLOW_SECONDS = 600
ID_TOKEN_ALGS = ["RS256", "PS256", "ES256", "EdDSA"]
LEEWAY_SECONDS = 10
_AAD = {"table": "web", "column": "oidc_flow", "row_id": "v1"}
STAFF_FLOW = "staff_oidc_flow"  # the desk's flows are sealed apart: a person's flow cookie opens no staff sign-in


class SignInFailed(Unauthenticated):
    """The provider's answer was refused. The reason is logged by code; the page says only that it failed."""

    code = "sign_in_failed"
    title = "Sign-in did not complete"


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next: str
    started: float


@dataclass(frozen=True)
class OidcConfig:
    """One relying party at one provider: the person's (REGISTER_OIDC_*) or the regulator's staff's
    (REGISTER_STAFF_OIDC_*). The flow and the ID token's checks are the same for both."""

    issuer: str
    client_id: str
    redirect_url: str
    scopes: str
    client_secret: str | None
    max_seconds: int

    @classmethod
    def person(cls, settings: Settings) -> OidcConfig:
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_url
        secret = settings.oidc_client_secret
        return cls(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
                   redirect_url=settings.oidc_redirect_url, scopes=settings.oidc_scopes,
                   client_secret=secret.get_secret_value() if secret else None,
                   max_seconds=settings.id_token_max_seconds)


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def seal_flow(cipher: FieldCipher, flow: Flow, *, column: str = _AAD["column"]) -> str:
    doc = json.dumps(flow.__dict__).encode()
    return _b64(cipher.encrypt(doc, **{**_AAD, "column": column}))


def open_flow(cipher: FieldCipher, sealed: str | None, *, column: str = _AAD["column"]) -> Flow:
    if not sealed:
        raise SignInFailed("no sign-in was started in this browser", code="sign_in_not_started")
    try:
        doc = cipher.decrypt(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)),
                             **{**_AAD, "column": column})
        return Flow(**json.loads(doc))
    except (DecryptionError, ValueError, TypeError):
        raise SignInFailed("the sign-in cookie is not one of ours") from None


class OidcClient:
    def __init__(self, settings: Settings, http: httpx.Client, config: OidcConfig | None = None) -> None:
        self.settings = settings
        self.config = config or OidcConfig.person(settings)
        self.http = http
        self._provider: Provider | None = None
        self._keys: dict[str, jwt.PyJWK] = {}

    def provider(self) -> Provider:
        """Discovery, once per process; the issuer in the document must be the configured one."""
        if self._provider is None:
            issuer = self.config.issuer.rstrip("/")
            doc = self._get_json(f"{issuer}/.well-known/openid-configuration")
            if doc.get("issuer", "").rstrip("/") != issuer:
                raise SignInFailed("the provider's discovery document names another issuer")
            try:
                self._provider = Provider(issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
                                          token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"])
            except KeyError:
                raise SignInFailed("the provider's discovery document is incomplete") from None
        return self._provider

    def begin(self, *, next_page: str) -> tuple[str, Flow]:
        """The provider's authorisation URL to send the browser to, and the flow to keep in its cookie."""
        flow = Flow(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                    verifier=secrets.token_urlsafe(64), next=next_page, started=time.time())
        challenge = _b64(hashlib.sha256(flow.verifier.encode()).digest())
        query = urlencode({
            "response_type": "code", "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_url, "scope": self.config.scopes,
            "state": flow.state, "nonce": flow.nonce, "code_challenge": challenge, "code_challenge_method": "S256",
        })  # fmt: skip
        return f"{self.provider().authorization_endpoint}?{query}", flow

    def finish(self, flow: Flow, params: dict[str, str]) -> NationalId:
        """The person's identity from the provider's answer, or SignInFailed."""
        return self._identity(self.finish_claims(flow, params))

    def finish_claims(self, flow: Flow, params: dict[str, str]) -> dict[str, Any]:
        """The verified ID token's claims from the provider's answer, or SignInFailed."""
        if "error" in params:
            raise SignInFailed("the provider did not sign the person in", code="sign_in_cancelled")
        if not hmac.compare_digest(params.get("state", ""), flow.state):
            raise SignInFailed("the answer belongs to another sign-in (state)")
        if time.time() - flow.started > FLOW_SECONDS:
            raise SignInFailed("the sign-in took too long; start again", code="sign_in_expired")
        code = params.get("code")
        if not code:
            raise SignInFailed("the provider sent no code")
        claims = self.verify_id_token(self._exchange(code, flow.verifier))
        if not hmac.compare_digest(str(claims.get("nonce", "")), flow.nonce):
            raise SignInFailed("the ID token belongs to another sign-in (nonce)")
        return claims

    def _exchange(self, code: str, verifier: str) -> str:
        p = self.provider()
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_url,
                "code_verifier": verifier, "client_id": self.config.client_id}
        secret = self.config.client_secret
        auth = (self.config.client_id, secret) if secret else None
        try:
            r = self.http.post(p.token_endpoint, data=data, auth=auth, headers={"Accept": "application/json"})
        except httpx.HTTPError:
            raise SignInFailed("the provider could not be reached", code="provider_unreachable") from None
        if r.status_code != 200:
            raise SignInFailed("the provider would not exchange the code (used, expired or not ours)")
        token = r.json().get("id_token") if r.headers.get("content-type", "").startswith("application/json") else None
        if not isinstance(token, str):
            raise SignInFailed("the provider's answer has no ID token")
        return token

    def verify_id_token(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise SignInFailed("the ID token is not well-formed") from None
        if header.get("alg") not in ID_TOKEN_ALGS:
            raise SignInFailed("the ID token's algorithm is not accepted")
        key = self._key(str(header.get("kid")))
        if key.algorithm_name != header["alg"]:
            raise SignInFailed("the ID token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[header["alg"]], audience=self.config.client_id,
                issuer=self.provider().issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            )  # fmt: skip
            check_lifetime(claims, max_seconds=self.config.max_seconds)
        except jwt.PyJWTError as exc:
            raise SignInFailed(f"the ID token was refused: {type(exc).__name__}") from None
        except IdTokenError as exc:
            raise SignInFailed(f"the ID token was refused: {exc}") from None
        return claims

    def _key(self, kid: str) -> jwt.PyJWK:
        """The provider's key by kid; the JWKS is fetched again once for an unknown kid (key rotation)."""
        if kid not in self._keys:
            doc = self._get_json(self.provider().jwks_uri)
            keys = {}
            for jwk in doc.get("keys", []):
                try:
                    keys[str(jwk.get("kid"))] = jwt.PyJWK(jwk)
                except jwt.PyJWTError:
                    continue  # a key of a type we do not use
            self._keys = keys
        if kid not in self._keys:
            raise SignInFailed("the ID token is not signed by a key of the provider")
        return self._keys[kid]

    def _identity(self, claims: dict[str, Any]) -> NationalId:
        number = claims.get(self.settings.oidc_national_id_claim)
        country = claims.get(self.settings.oidc_country_claim) or self.settings.oidc_country
        if not isinstance(number, str) or not isinstance(country, str):
            raise SignInFailed("the ID token carries no national identity number or country")
        try:
            return parse_national_id(country.upper(), number, allow_test=self.settings.accept_test_identities)
        except InvalidNationalId:
            raise SignInFailed("the ID token's identity number is not valid") from None

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            r = self.http.get(url, headers={"Accept": "application/json"})
            r.raise_for_status()
            doc = r.json()
        except (httpx.HTTPError, ValueError):
            raise SignInFailed("the provider could not be reached", code="provider_unreachable") from None
        if not isinstance(doc, dict):
            raise SignInFailed("the provider's answer is not a JSON object")
        return doc
