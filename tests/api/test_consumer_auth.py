"""Consumer sign-in with ID tokens: only a trusted provider's valid, unexpired token for this register."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from register.crypto.dev_idp import DEV_ISSUER, DevIdentityProvider
from register.main import create_app
from tests.conftest import make_settings
from tests.factories import consumer_headers, national_id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestDevIdentityProvider:
    def test_valid_token_signs_in(self, client, data_dir):
        r = client.get("/v1/me/obligations", headers=consumer_headers(data_dir, "SE", national_id()))
        assert r.status_code == 200, r.text
        assert r.json()["obligations"] == []  # a person with no debt gets an empty list, not 404

    def test_expired_token_is_401(self, client, data_dir):
        idp = DevIdentityProvider.load_or_create(data_dir)
        token = idp.issue(country="SE", national_id=national_id(), audience="register", ttl=60,
                          now=time.time() - 3600)
        r = client.get("/v1/me/obligations", headers=bearer(token))
        assert r.status_code == 401 and r.json()["code"] == "invalid_id_token"
        assert "expired" in r.json()["detail"]

    def test_wrong_audience_is_401(self, client, data_dir):
        r = client.get("/v1/me/obligations", headers=consumer_headers(data_dir, "SE", national_id(),
                                                                         audience="another-register"))
        assert r.status_code == 401 and "audience" in r.json()["detail"]

    def test_token_signed_by_another_key_is_401(self, client, data_dir):
        genuine = DevIdentityProvider.load_or_create(data_dir)
        forged = jwt.encode(
            {"iss": DEV_ISSUER, "sub": national_id(), "country": "SE", "aud": "register", "exp": time.time() + 600},
            Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": genuine.kid},
        )
        r = client.get("/v1/me/obligations", headers=bearer(forged))
        assert r.status_code == 401 and "signature" in r.json()["detail"]

    def test_unknown_issuer_is_401(self, client):
        token = jwt.encode(
            {"iss": "https://evil.example", "sub": national_id(), "country": "SE", "aud": "register",
             "exp": time.time() + 600},
            Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "evil-key"},
        )
        assert client.get("/v1/me/obligations", headers=bearer(token)).status_code == 401

    def test_alg_none_and_hmac_are_401(self, client, data_dir):
        kid = DevIdentityProvider.load_or_create(data_dir).kid
        claims = {"iss": DEV_ISSUER, "sub": national_id(), "country": "SE", "aud": "register", "exp": time.time() + 600}
        none_token = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
        hmac_token = jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": kid})
        for token in (none_token, hmac_token):
            r = client.get("/v1/me/obligations", headers=bearer(token))
            assert r.status_code == 401 and "algorithm" in r.json()["detail"]

    def test_invalid_subject_is_401(self, client, data_dir):
        r = client.get("/v1/me/obligations", headers=consumer_headers(data_dir, "SE", "19880320-0017"))
        assert r.status_code == 401

    def test_prod_does_not_trust_the_dev_provider(self, database_url, tmp_path, keys):
        nid = national_id()
        dev_token = DevIdentityProvider.load_or_create(tmp_path).issue(country="SE", national_id=nid,
                                                                      audience="register")
        app = create_app(make_settings(database_url, tmp_path, env="prod"), keys=keys)
        with TestClient(app, raise_server_exceptions=False) as c:
            assert c.get("/v1/me/obligations", headers=bearer(dev_token)).status_code == 401
        app.state.register.engine.dispose()


class TestConfiguredProvider:
    @pytest.fixture
    def es256_app(self, database_url, tmp_path, keys):
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        jwk |= {"kid": "bankid-2026", "iss": "https://idp.bank.example"}
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps({"keys": [jwk]}))
        app = create_app(make_settings(database_url, tmp_path, env="prod", idp_keys=path), keys=keys)
        yield app, key
        app.state.register.engine.dispose()

    def _token(self, key, **overrides) -> str:
        claims = {"iss": "https://idp.bank.example", "sub": national_id(), "country": "SE", "aud": "register",
                  "iat": time.time(), "exp": time.time() + 600, **overrides}
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "bankid-2026"})

    def test_es256_token_from_jwks_signs_in(self, es256_app):
        app, key = es256_app
        with TestClient(app, raise_server_exceptions=False) as c:
            assert c.get("/v1/me/obligations", headers=bearer(self._token(key))).status_code == 200

    def test_wrong_issuer_for_the_key_is_401(self, es256_app):
        app, key = es256_app
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/v1/me/obligations", headers=bearer(self._token(key, iss="https://other.example")))
            assert r.status_code == 401
