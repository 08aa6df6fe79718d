"""The development identity provider: an Ed25519 key in the data dir that signs consumer ID tokens.

Trusted only when REGISTER_ENV=dev. It stands in for BankID / ID-porten / the Finnish e-ID so that a
fresh checkout can walk through consent and exposure without a real provider.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from register.config import write_private_file
from register.crypto.idtoken import TrustedKey

DEV_ISSUER = "urn:register:dev-idp"
TTL_SECONDS = 600  # the least REGISTER_ID_TOKEN_MAX_SECONDS may be, so its tokens are always accepted


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class DevIdentityProvider:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "use": "sig", "alg": "EdDSA"}
        self.kid = "dev-" + hashlib.sha256(raw).hexdigest()[:16]
        self.public_jwk |= {"kid": self.kid, "iss": DEV_ISSUER}

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DevIdentityProvider:
        path = Path(data_dir) / "dev-idp-key.pem"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            write_private_file(path, pem.decode())
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return cls(key)

    def trusted_key(self) -> TrustedKey:
        return TrustedKey.from_jwk(self.public_jwk)

    def issue(
        self, *, country: str, national_id: str, audience: str, ttl: int = TTL_SECONDS, now: float | None = None
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims = {"iss": DEV_ISSUER, "sub": national_id, "country": country.upper(), "aud": audience,
                  "iat": issued, "exp": issued + ttl}  # fmt: skip
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})
