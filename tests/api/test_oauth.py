"""Institution sign-in with OAuth2 client credentials and a signed JWT assertion (RFC 7523 private_key_jwt):
the happy paths for Ed25519 and ES256, and every attack tried for real, each refused with nothing issued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from register.crypto.client_assertion import JWT_BEARER
from register.storage.models import AccessEvent, OAuthAccessToken
from tests.factories import Inst, make_institution

TOKEN = "/v1/oauth/token"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Signer:
    key: Any  # a private key
    algorithm: str
    kid: str

    @property
    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip


def public_jwk(key: Any) -> dict[str, Any]:
    algorithm = jwt.algorithms.OKPAlgorithm if isinstance(key, Ed25519PrivateKey) else jwt.algorithms.ECAlgorithm
    return algorithm.to_jwk(key.public_key(), as_dict=True)


def add_key(client, admin_headers, inst: Inst, kind: str = "ed25519", *, as_pem: bool = False, kid: str | None = None
            ) -> Signer:  # fmt: skip
    key = Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    signer = Signer(key=key, algorithm="EdDSA" if kind == "ed25519" else "ES256", kid="")
    body: dict[str, Any] = {"pem": signer.public_pem.decode()} if as_pem else {"jwk": public_jwk(key)}
    if kid:
        body["kid"] = kid
    r = client.post(f"/v1/institutions/{inst.id}/keys", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["algorithm"] == signer.algorithm and r.json()["revoked_at"] is None
    signer.kid = r.json()["kid"]
    return signer


def whole_second(clock) -> int:
    """Pin the app's clock (tests/conftest.py, `clock`) to a whole second and return it: a bound tested one second
    past its limit is then exact, while `int(time.time())` read before the request let a second boundary that
    passed before the server looked move the limit by up to a second (seen under a parallel run)."""
    now = int(clock.now.timestamp())
    clock.now = datetime.fromtimestamp(now, UTC)
    return now


def audience(client) -> str:
    return client.app.state.register.settings.resolved_oauth_audience


def claims_for(client, inst: Inst, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": inst.id, "sub": inst.id, "aud": audience(client), "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}  # fmt: skip
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(signer: Signer, claims: dict[str, Any], *, kid: str | None | bool = True) -> str:
    headers = {} if kid is None else {"kid": signer.kid if kid is True else kid}
    return jwt.encode(claims, signer.key, algorithm=signer.algorithm, headers=headers)


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes | None = None, secret: bytes = b"") -> str:
    """A JWT built by hand: `alg: none` with no signature, or HMAC-SHA256 keyed with `secret`."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if signature is None and header["alg"] == "HS256":
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature or b'')}"


def request_token(client, assertion: str, **form: str):
    data = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    data.update(form)
    return client.post(TOKEN, data=data)


def issued_count(client, inst: Inst) -> int:
    with client.app.state.register.sessions() as s:
        return s.execute(select(func.count()).select_from(OAuthAccessToken)
                         .where(OAuthAccessToken.institution_id == inst.id)).scalar_one()  # fmt: skip


def events(client, inst: Inst, action: str = "oauth:token:issue") -> list[AccessEvent]:
    with client.app.state.register.sessions() as s:
        return list(s.execute(select(AccessEvent).where(AccessEvent.actor_id == inst.id, AccessEvent.action == action)
                              .order_by(AccessEvent.seq)).scalars())  # fmt: skip


def token_headers(r) -> dict[str, str]:
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def bank(client, admin_headers) -> Inst:
    return make_institution(client, admin_headers, "lender")


@pytest.fixture
def signer(client, admin_headers, bank) -> Signer:
    return add_key(client, admin_headers, bank)


def assert_refused(client, inst: Inst, r, error: str = "invalid_client", status: int = 401, before: int = 0) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["code"] == error and body["error"] == error and body["error_description"] == body["detail"]
    assert "access_token" not in body
    assert r.headers["cache-control"] == "no-store"
    assert issued_count(client, inst) == before


class TestSignIn:
    def test_ed25519_assertion_gets_a_token_that_works_on_a_lender_route(self, client, bank, signer):
        r = request_token(client, sign(signer, claims_for(client, bank)))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert body["token_type"] == "Bearer" and body["expires_in"] == 300
        assert body["access_token"].startswith("rat_") and "." not in body["access_token"]
        assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
        assert client.get("/v1/obligations", headers=token_headers(r)).status_code == 200
        assert issued_count(client, bank) == 1

    def test_es256_key_registered_as_pem_gets_a_working_token(self, client, admin_headers, bank):
        es = add_key(client, admin_headers, bank, "es256", as_pem=True, kid="bank-2026-11")
        assert es.kid == "bank-2026-11"
        r = request_token(client, sign(es, claims_for(client, bank)), client_id=bank.id)
        assert r.status_code == 200, r.text
        assert client.get("/v1/obligations", headers=token_headers(r)).status_code == 200

    def test_the_token_carries_the_institutions_role_only(self, client, admin_headers, bank, signer):
        r = request_token(client, sign(signer, claims_for(client, bank)))
        assert client.get("/v1/institutions", headers=token_headers(r)).status_code == 403

    def test_without_kid_each_active_key_is_tried(self, client, admin_headers, bank, signer):
        other = add_key(client, admin_headers, bank)
        assert request_token(client, sign(other, claims_for(client, bank), kid=None)).status_code == 200

    def test_issuance_is_an_access_event_without_the_assertion(self, client, bank, signer):
        assertion = sign(signer, claims_for(client, bank))
        r = request_token(client, assertion)
        assert r.status_code == 200
        [event] = events(client, bank)
        assert event.outcome == "ok" and event.actor_type == "institution"
        assert event.details == {"kid": signer.kid, "expires_in": 300}
        assert assertion not in json.dumps(event.details) and r.json()["access_token"] not in json.dumps(event.details)

    def test_the_default_audience_is_the_token_endpoint_url(self, client):
        assert audience(client) == "https://register.local/v1/oauth/token"


class TestDiscovery:
    """RFC 8414 metadata: what a bank's software needs to sign in, without being told the audience."""

    def test_the_metadata_names_the_audience_the_register_expects(self, client):
        r = client.get("/.well-known/oauth-authorization-server")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "issuer": "http://testserver", "token_endpoint": "http://testserver/v1/oauth/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA"],
            "grant_types_supported": ["client_credentials"], "response_types_supported": [],
            "client_assertion_audience": "https://register.local/v1/oauth/token",
        }  # fmt: skip

    def test_an_assertion_for_the_advertised_audience_gets_a_token(self, client, bank, signer):
        advertised = client.get("/.well-known/oauth-authorization-server").json()
        r = client.post(advertised["token_endpoint"], data={
            "grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": sign(signer, claims_for(client, bank, aud=advertised["client_assertion_audience"]))})
        assert r.status_code == 200, r.text


class TestRefusedAssertions:
    def test_alg_none(self, client, bank, signer):
        r = request_token(client, forge({"alg": "none", "typ": "JWT", "kid": signer.kid}, claims_for(client, bank)))
        assert_refused(client, bank, r)
        assert "algorithm" in r.json()["detail"]

    def test_hs256_keyed_with_the_public_key(self, client, bank, signer):
        """The classic confusion: a verifier that lets the token pick the algorithm uses the public key
        (known to everyone) as the HMAC secret."""
        claims = claims_for(client, bank)
        for secret in (signer.public_pem, signer.public_pem.strip(),
                       signer.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)):
            r = request_token(client, forge({"alg": "HS256", "typ": "JWT", "kid": signer.kid}, claims, secret=secret))
            assert_refused(client, bank, r)

    def test_wrong_audience(self, client, bank, signer):
        for aud in ("register", "https://other-register.example/v1/oauth/token", [audience(client) + "/"]):
            r = request_token(client, sign(signer, claims_for(client, bank, aud=aud)))
            assert_refused(client, bank, r)
            # The refusal names what the register expects (its own setting), so a bank can fix its signer.
            assert r.json()["detail"] == (
                'the assertion is for another audience: aud must be "https://register.local/v1/oauth/token"')

    def test_expired_beyond_the_skew(self, client, bank, signer, clock):
        now = whole_second(clock)
        r = request_token(client, sign(signer, claims_for(client, bank, iat=now - 100, exp=now - 11)))
        assert_refused(client, bank, r)
        assert r.json()["detail"] == "the assertion has expired"

    def test_expired_within_the_skew_is_accepted(self, client, bank, signer, clock):
        now = whole_second(clock)
        assert request_token(client, sign(signer, claims_for(client, bank, iat=now - 100, exp=now - 9))).status_code == 200

    def test_iat_61_seconds_ahead(self, client, bank, signer, clock):
        now = whole_second(clock)
        r = request_token(client, sign(signer, claims_for(client, bank, iat=now + 61, exp=now + 120)))
        assert_refused(client, bank, r)

    def test_iat_9_seconds_ahead_is_accepted(self, client, bank, signer, clock):
        now = whole_second(clock)
        assert request_token(client, sign(signer, claims_for(client, bank, iat=now + 9, exp=now + 60))).status_code == 200

    def test_replayed_jti(self, client, bank, signer):
        claims = claims_for(client, bank)
        assertion = sign(signer, claims)
        assert request_token(client, assertion).status_code == 200
        assert_refused(client, bank, request_token(client, assertion), before=1)
        again = sign(signer, {**claims, "exp": claims["exp"] + 5})  # a new assertion, the same jti
        r = request_token(client, again)
        assert_refused(client, bank, r, before=1)
        assert "jti" in r.json()["detail"]

    def test_a_jti_of_another_institution_is_not_a_replay(self, client, admin_headers, bank, signer):
        other = make_institution(client, admin_headers, "collector")
        other_signer = add_key(client, admin_headers, other)
        jti = str(uuid.uuid4())
        assert request_token(client, sign(signer, claims_for(client, bank, jti=jti))).status_code == 200
        assert request_token(client, sign(other_signer, claims_for(client, other, jti=jti))).status_code == 200

    def test_unknown_kid(self, client, bank, signer):
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank), kid="no-such-key")))

    def test_signed_with_another_institutions_key(self, client, admin_headers, bank, signer):
        other = make_institution(client, admin_headers, "lender")
        other_signer = add_key(client, admin_headers, other)
        claims = claims_for(client, bank)  # says it is `bank`
        assert_refused(client, bank, request_token(client, sign(other_signer, claims)))  # other's kid
        assert_refused(client, bank, request_token(client, sign(other_signer, claims, kid=None)))  # no kid
        assert_refused(client, bank, request_token(client, sign(other_signer, claims, kid=signer.kid)))  # bank's kid
        assert issued_count(client, other) == 0

    def test_an_unregistered_key_under_the_right_kid(self, client, bank, signer):
        impostor = Signer(key=Ed25519PrivateKey.generate(), algorithm="EdDSA", kid=signer.kid)
        r = request_token(client, sign(impostor, claims_for(client, bank)))
        assert_refused(client, bank, r)
        assert r.json()["detail"] == "the assertion's signature does not verify"

    def test_algorithm_other_than_the_keys(self, client, admin_headers, bank, signer):
        es = ec.generate_private_key(ec.SECP256R1())
        r = request_token(client, jwt.encode(claims_for(client, bank), es, algorithm="ES256",
                                             headers={"kid": signer.kid}))  # an Ed25519 kid  # fmt: skip
        assert_refused(client, bank, r)

    def test_iss_sub_and_client_id_must_all_be_the_institution(self, client, admin_headers, bank, signer):
        other = make_institution(client, admin_headers, "lender")
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank, sub=other.id))))
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank)), client_id=other.id))

    def test_required_claims(self, client, bank, signer):
        for missing in ("exp", "iat", "jti", "sub", "aud"):
            r = request_token(client, sign(signer, claims_for(client, bank, **{missing: None})))
            assert_refused(client, bank, r)
            assert missing in r.json()["detail"]

    def test_an_assertion_lives_at_most_five_minutes(self, client, bank, signer):
        now = int(time.time())
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank, exp=now + 301))))
        assert request_token(client, sign(signer, claims_for(client, bank, exp=now + 300))).status_code == 200

    def test_nbf_in_the_future(self, client, bank, signer):
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank, nbf=int(time.time()) + 30))))

    def test_unknown_institution(self, client, bank, signer):
        stranger = str(uuid.uuid4())
        r = request_token(client, sign(signer, claims_for(client, bank, iss=stranger, sub=stranger)))
        assert_refused(client, bank, r)

    def test_garbage(self, client, bank, signer):
        for assertion in ("not-a-jwt", "a.b.c", "rgt_" + "x" * 40):
            assert_refused(client, bank, request_token(client, assertion))

    def test_refusals_of_a_known_institution_are_access_events(self, client, bank, signer):
        assertion = sign(signer, claims_for(client, bank, aud="elsewhere"))
        request_token(client, assertion)
        [event] = events(client, bank)
        assert (event.outcome, event.reason, event.details) == ("refused", "invalid_client", {"check": "audience"})
        assert assertion not in json.dumps(event.details)

    def test_a_replay_is_an_access_event_too(self, client, bank, signer):
        assertion = sign(signer, claims_for(client, bank))
        request_token(client, assertion)
        request_token(client, assertion)
        assert [(e.outcome, (e.details or {}).get("check")) for e in events(client, bank)] == [
            ("ok", None), ("refused", "replayed_jti")]


class TestRevocationAndRotation:
    def test_revoked_key_signs_nothing_and_its_tokens_stop(self, client, admin_headers, bank, signer):
        r = request_token(client, sign(signer, claims_for(client, bank)))
        headers = token_headers(r)
        assert client.get("/v1/obligations", headers=headers).status_code == 200
        revoked = client.delete(f"/v1/institutions/{bank.id}/keys/{signer.kid}", headers=admin_headers)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None and revoked.json()["access_tokens_revoked"] == 1
        assert client.get("/v1/obligations", headers=headers).status_code == 401
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank))), before=1)
        again = client.delete(f"/v1/institutions/{bank.id}/keys/{signer.kid}", headers=admin_headers)
        assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]

    def test_revoked_access_tokens_stop_and_the_key_still_signs(self, client, admin_headers, bank, signer):
        first = token_headers(request_token(client, sign(signer, claims_for(client, bank))))
        second = token_headers(request_token(client, sign(signer, claims_for(client, bank))))
        assert client.get("/v1/obligations", headers=first).status_code == 200
        r = client.delete(f"/v1/institutions/{bank.id}/access-tokens", headers=admin_headers)
        assert r.status_code == 200 and r.json() == {"institution_id": bank.id, "access_tokens_revoked": 2}
        for headers in (first, second):
            unauth = client.get("/v1/obligations", headers=headers)
            assert unauth.status_code == 401 and unauth.json()["code"] == "unauthenticated"
        fresh = token_headers(request_token(client, sign(signer, claims_for(client, bank))))
        assert client.get("/v1/obligations", headers=fresh).status_code == 200

    def test_rotated_key(self, client, admin_headers, bank, signer):
        new = add_key(client, admin_headers, bank, "es256")
        assert client.delete(f"/v1/institutions/{bank.id}/keys/{signer.kid}", headers=admin_headers).status_code == 200
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank))))
        assert_refused(client, bank, request_token(client, sign(signer, claims_for(client, bank), kid=None)))
        assert request_token(client, sign(new, claims_for(client, bank))).status_code == 200
        keys = client.get(f"/v1/institutions/{bank.id}/keys", headers=admin_headers).json()["items"]
        assert [(k["kid"], k["revoked_at"] is None) for k in keys] == [(signer.kid, False), (new.kid, True)]

    def test_rotated_bearer_token(self, client, admin_headers, bank):
        assert client.get("/v1/obligations", headers=bank.headers).status_code == 200
        r = client.post(f"/v1/institutions/{bank.id}/token", headers=admin_headers)
        assert r.status_code == 200 and r.json()["token"].startswith("rgt_") and r.json()["id"] == bank.id
        assert client.get("/v1/obligations", headers=bank.headers).status_code == 401
        assert client.get("/v1/obligations", headers={"Authorization": f"Bearer {r.json()['token']}"}).status_code == 200

    def test_an_expired_access_token_is_refused(self, client, bank, signer):
        r = request_token(client, sign(signer, claims_for(client, bank)))
        state = client.app.state.register
        real_clock = state.clock
        try:
            state.clock = lambda: real_clock() + timedelta(seconds=301)
            state.tokens.forget()
            assert client.get("/v1/obligations", headers=token_headers(r)).status_code == 401
        finally:
            state.clock = real_clock


class TestTokenRequest:
    def test_unsupported_grant_type(self, client, bank, signer):
        r = request_token(client, sign(signer, claims_for(client, bank)), grant_type="password")
        assert_refused(client, bank, r, "unsupported_grant_type", 400)

    @pytest.mark.parametrize("missing", ["grant_type", "client_assertion_type", "client_assertion"])
    def test_missing_parameter(self, client, bank, signer, missing):
        data = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                "client_assertion": sign(signer, claims_for(client, bank))}  # fmt: skip
        del data[missing]
        r = client.post(TOKEN, data=data)
        assert_refused(client, bank, r, "invalid_request", 400)
        assert missing in r.json()["detail"]

    def test_other_assertion_type(self, client, bank, signer):
        r = request_token(client, sign(signer, claims_for(client, bank)),
                          client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
        assert_refused(client, bank, r, "invalid_request", 400)

    def test_json_body(self, client, bank, signer):
        r = client.post(TOKEN, json={"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                     "client_assertion": sign(signer, claims_for(client, bank))})  # fmt: skip
        assert_refused(client, bank, r, "invalid_request", 400)

    def test_repeated_parameter(self, client, bank, signer):
        assertion = sign(signer, claims_for(client, bank))
        body = (f"grant_type=client_credentials&client_assertion_type={JWT_BEARER}"
                f"&client_assertion={assertion}&client_assertion={assertion}")  # fmt: skip
        r = client.post(TOKEN, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_refused(client, bank, r, "invalid_request", 400)

    def test_a_client_secret_is_not_a_second_way_in(self, client, bank, signer):
        r = request_token(client, sign(signer, claims_for(client, bank)), client_secret=bank.token)
        assert_refused(client, bank, r, "invalid_request", 400)


class TestKeyAdministration:
    def test_private_keys_are_refused_and_not_stored(self, client, admin_headers, bank):
        key = Ed25519PrivateKey.generate()
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(key, as_dict=True)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
        for body in ({"jwk": jwk}, {"pem": pem}):
            r = client.post(f"/v1/institutions/{bank.id}/keys", json=body, headers=admin_headers)
            assert r.status_code == 422 and r.json()["code"] == "invalid_key" and "private" in r.json()["detail"]
        assert client.get(f"/v1/institutions/{bank.id}/keys", headers=admin_headers).json() == {"items": []}

    def test_only_ed25519_and_p256(self, client, admin_headers, bank):
        others = (rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP384R1()))
        for key in others:
            pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip
            r = client.post(f"/v1/institutions/{bank.id}/keys", json={"pem": pem}, headers=admin_headers)
            assert r.status_code == 422 and r.json()["code"] == "invalid_key"
        r = client.post(f"/v1/institutions/{bank.id}/keys", json={"jwk": {"kty": "oct", "k": "c2VjcmV0"}},
                        headers=admin_headers)  # fmt: skip
        assert r.status_code == 422 and r.json()["code"] == "invalid_key"
        for body in ({}, {"jwk": public_jwk(Ed25519PrivateKey.generate()), "pem": "x"}):
            assert client.post(f"/v1/institutions/{bank.id}/keys", json=body, headers=admin_headers).status_code == 422

    def test_the_default_kid_is_the_rfc7638_thumbprint(self, client, admin_headers, bank):
        key = Ed25519PrivateKey.generate()
        jwk = public_jwk(key)
        r = client.post(f"/v1/institutions/{bank.id}/keys", json={"jwk": jwk}, headers=admin_headers)
        members = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
        assert r.json()["kid"] == r.json()["thumbprint"] == b64url(hashlib.sha256(members.encode()).digest())

    def test_one_key_belongs_to_one_institution(self, client, admin_headers, bank, signer):
        other = make_institution(client, admin_headers, "lender")
        jwk = public_jwk(signer.key)
        for inst in (bank, other):
            r = client.post(f"/v1/institutions/{inst.id}/keys", json={"jwk": jwk}, headers=admin_headers)
            assert r.status_code == 409 and r.json()["code"] == "key_exists"

    def test_unknown_institution_or_key(self, client, admin_headers, bank):
        nobody = str(uuid.uuid4())
        jwk = public_jwk(Ed25519PrivateKey.generate())
        assert client.post(f"/v1/institutions/{nobody}/keys", json={"jwk": jwk}, headers=admin_headers).status_code == 404
        assert client.get(f"/v1/institutions/{nobody}/keys", headers=admin_headers).status_code == 404
        assert client.delete(f"/v1/institutions/{bank.id}/keys/nope", headers=admin_headers).status_code == 404
        assert client.delete(f"/v1/institutions/{nobody}/access-tokens", headers=admin_headers).status_code == 404
        assert client.post(f"/v1/institutions/{nobody}/token", headers=admin_headers).status_code == 404

    def test_operator_only(self, client, admin_headers, bank, signer, regulator):
        jwk = public_jwk(Ed25519PrivateKey.generate())
        for headers, status in ((bank.headers, 403), (regulator.headers, 403), ({}, 401)):
            assert client.post(f"/v1/institutions/{bank.id}/keys", json={"jwk": jwk}, headers=headers).status_code == status
            assert client.get(f"/v1/institutions/{bank.id}/keys", headers=headers).status_code == status
            assert client.delete(f"/v1/institutions/{bank.id}/keys/{signer.kid}", headers=headers).status_code == status
            assert client.delete(f"/v1/institutions/{bank.id}/access-tokens", headers=headers).status_code == status
            assert client.post(f"/v1/institutions/{bank.id}/token", headers=headers).status_code == status
        own = token_headers(request_token(client, sign(signer, claims_for(client, bank))))
        assert client.get(f"/v1/institutions/{bank.id}/keys", headers=own).status_code == 403


class TestAddKeyCommand:
    def test_register_institutions_add_key(self, client, bank, database_url, tmp_path, monkeypatch, capsys):
        from register.cli import main

        monkeypatch.setenv("REGISTER_DATABASE_URL", database_url)
        monkeypatch.setenv("REGISTER_DATA_DIR", str(tmp_path))
        key = ec.generate_private_key(ec.SECP256R1())
        path = tmp_path / "bank.pub.pem"
        path.write_bytes(Signer(key=key, algorithm="ES256", kid="").public_pem)
        assert main(["institutions", "add-key", "--institution", bank.id, "--public-key", str(path),
                     "--kid", "cli-key"]) == 0  # fmt: skip
        assert json.loads(capsys.readouterr().out)["kid"] == "cli-key"
        signer = Signer(key=key, algorithm="ES256", kid="cli-key")
        assert request_token(client, sign(signer, claims_for(client, bank))).status_code == 200
        assert main(["institutions", "add-key", "--institution", bank.id, "--public-key", str(path)]) == 1
        assert "already registered" in capsys.readouterr().err


class TestDemoBanner:
    def test_register_demo_prints_the_token_audience(self, database_url, tmp_path, monkeypatch):
        """A bank trying the demo must sign for an audience no URL shows: `register demo` prints it."""
        from register import cli

        monkeypatch.setenv("REGISTER_DATABASE_URL", database_url)
        monkeypatch.setenv("REGISTER_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("REGISTER_OAUTH_AUDIENCE", "https://register.example.se/v1/oauth/token")
        (tmp_path / "demo.json").write_text(json.dumps({"institutions": {"nordbank": {
            "id": "3f1c2a9e", "name": "Nordbank AB", "role": "lender", "token": "rgt_demo"}}, "persons": ["x"]}))
        banners: list[str] = []
        monkeypatch.setattr(cli, "_serve", lambda settings, host, port, banner=None, workers=1: banners.append(banner))
        cli.main(["demo", "--port", "8123"])
        [banner] = banners
        assert "http://127.0.0.1:8123/v1/oauth/token with aud = https://register.example.se/v1/oauth/token" in banner
