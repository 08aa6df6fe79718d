"""Signing in to the register with a key pair instead of a token (needs the `keys` extra:
`pip install 'register-client[keys]'`, which adds `cryptography`).

```python
from register_client import RegisterClient
from register_client.keys import PrivateKeyJWT

auth = PrivateKeyJWT(institution_id="3f1c2a9e-...", key="/etc/nordbank/register.key")
with RegisterClient("https://register.example", auth=auth) as register:
    register.list_consents()
```

The operator registers the public half of the key for the institution (Ed25519 or P-256). Each sign-in
signs a fresh client assertion (RFC 7523: `iss` = `sub` = the institution's id, `aud` the register's
token audience, `iat`, `exp` a minute later, a new `jti`) and exchanges it for an access token, which the
client refreshes before it expires (`register_client._auth`). Without `kid`, the assertion names no key
and the register tries each of the institution's active keys of that algorithm. Without `audience`, the
register's metadata says which one it expects.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError as exc:  # the plain SDK installs without it
    raise ImportError(
        "register_client.keys signs with the cryptography package: pip install 'register-client[keys]'"
    ) from exc

from register_client._auth import ClientAssertionAuth
from register_client._exceptions import InvalidRequest

__all__ = ["PrivateKeyJWT"]

ASSERTION_SECONDS = 60  # exp - iat: the register accepts at most 300

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
KeySource = str | os.PathLike[str] | bytes | PrivateKey


class PrivateKeyJWT(ClientAssertionAuth):
    """Sign in as `institution_id` with its private key (`private_key_jwt`), for `RegisterClient(url,
    auth=...)` and `AsyncRegisterClient`.

    `key` is a path to a PEM file (PKCS#8, as `openssl genpkey` writes it, or a traditional EC key), the
    PEM text itself (str or bytes), or a `cryptography` private key; `password` if the PEM is encrypted.
    Ed25519 keys sign with EdDSA, P-256 keys with ES256. `kid` names the registered key (default: none,
    and the register tries each active key of the institution). `audience` is the `aud` to sign for
    (default: the one the register's metadata names). Refusals of the key or its file are `InvalidRequest`
    and never quote the key.
    """

    def __init__(
        self,
        institution_id: str,
        key: KeySource,
        *,
        kid: str | None = None,
        audience: str | None = None,
        password: str | bytes | None = None,
    ) -> None:
        institution_id = institution_id.strip() if isinstance(institution_id, str) else ""
        if not institution_id:
            raise InvalidRequest("institution_id is the institution's id in the register, e.g. 3f1c2a9e-...")
        super().__init__(self._assertion, audience=audience)
        self.institution_id = institution_id
        self.kid = kid
        self._key = _load(key, password)
        self.algorithm = "EdDSA" if isinstance(self._key, ed25519.Ed25519PrivateKey) else "ES256"

    def __repr__(self) -> str:
        return f"PrivateKeyJWT(institution_id={self.institution_id!r}, algorithm={self.algorithm!r}, kid={self.kid!r})"

    def _assertion(self, audience: str, now: float) -> str:
        iat = int(now)
        header: dict[str, Any] = {"alg": self.algorithm, "typ": "JWT"}
        if self.kid:
            header["kid"] = self.kid
        claims = {"iss": self.institution_id, "sub": self.institution_id, "aud": audience, "iat": iat,
                  "exp": iat + ASSERTION_SECONDS, "jti": str(uuid.uuid4())}  # fmt: skip
        signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}".encode("ascii")
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            signature = self._key.sign(signing_input)
        else:  # JWS (RFC 7518 section 3.4) wants r and s as two 32-byte integers, not DER
            r, s = decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input.decode('ascii')}.{_b64(signature)}"


def _load(key: KeySource, password: str | bytes | None) -> PrivateKey:
    if hasattr(key, "private_bytes"):  # a cryptography private key of any kind
        return _supported(key)
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        pem, where = key.encode("ascii", "replace"), "the key"
    elif isinstance(key, bytes):
        pem, where = key, "the key"
    elif isinstance(key, str | os.PathLike):
        path = Path(key).expanduser()
        try:
            pem, where = path.read_bytes(), f"the key file {path}"
        except OSError as exc:
            raise InvalidRequest(f"cannot read the key file {path}: {exc.strerror or type(exc).__name__}") from None
    else:
        raise InvalidRequest("key is a path to a PEM file, PEM text or a cryptography private key")
    secret = password.encode() if isinstance(password, str) else password
    try:
        loaded = serialization.load_pem_private_key(pem, password=secret)
    except TypeError:  # encrypted without a password, or a password for a key that has none
        raise InvalidRequest(f"{where} is {'not ' if secret else ''}encrypted: "
                             f"{'drop' if secret else 'pass'} password=") from None  # fmt: skip
    except ValueError:  # cryptography's messages may quote the input; this one does not
        hint = ("; it is a public key, the half the operator registers: sign with the private one"
                if b"PUBLIC KEY-----" in pem else "")
        raise InvalidRequest(f"{where} is not a PEM private key (or the password is wrong){hint}") from None
    return _supported(loaded)


def _supported(key: Any) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    kind = f"an EC key on {key.curve.name}" if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
    raise InvalidRequest(f"the register accepts Ed25519 and P-256 keys; this is {kind}")


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
