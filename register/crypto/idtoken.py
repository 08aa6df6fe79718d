"""Consumer sign-in: verify ID tokens (JWT, EdDSA or ES256) from trusted national e-ID providers.

Trust is a JWKS: each key carries its `kid` and, as an extra member, the `iss` of the provider that signs
with it. A token must name a known `kid`, be signed by that key with that key's algorithm, carry that
key's `iss`, the register's `aud`, an unexpired `exp`, an `iat` not in the future, a lifetime `exp - iat`
of at most REGISTER_ID_TOKEN_MAX_SECONDS, a `sub` (the national identity number) and a `country`; `exp`,
`iat` and `nbf` must be finite numbers in range (register.crypto.numeric_date). Without `iat`, or with an
unbounded `exp`, a token taken once would sign its holder in for as long as it says. Anything else is
refused; the reason is said but no claim value is echoed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from register.crypto.numeric_date import numeric_date, required_numeric_date

ALLOWED_ALGS = {"EdDSA", "ES256"}
LEEWAY_SECONDS = 10


class IdTokenError(Exception):
    """Why a token was refused (safe to show: contains no claim values)."""


@dataclass(frozen=True)
class TrustedKey:
    kid: str
    issuer: str
    algorithm: str
    key: Any  # a cryptography public key

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> TrustedKey:
        if "kid" not in jwk or "iss" not in jwk:
            raise ValueError("every trusted JWK needs a kid and the iss of its provider")
        parsed = jwt.PyJWK(jwk)
        alg = parsed.algorithm_name
        if alg not in ALLOWED_ALGS:
            raise ValueError(f"unsupported key algorithm {alg}: use Ed25519 (EdDSA) or P-256 (ES256)")
        return cls(kid=jwk["kid"], issuer=jwk["iss"], algorithm=alg, key=parsed.key)


@dataclass(frozen=True)
class IdClaims:
    issuer: str
    subject: str  # the national identity number: never log it
    country: str

    def __repr__(self) -> str:
        return f"IdClaims(issuer={self.issuer!r}, country={self.country!r}, subject=<redacted>)"


def load_jwks(path: Path) -> list[TrustedKey]:
    doc = json.loads(Path(path).read_text())
    return [TrustedKey.from_jwk(k) for k in doc.get("keys", [])]


def check_lifetime(claims: dict[str, Any], *, max_seconds: int) -> None:
    """After the signature and the clock checks: the times are numbers in range, and the token lives at
    most `max_seconds`. IdTokenError otherwise."""
    try:
        exp, iat = required_numeric_date(claims, "exp"), required_numeric_date(claims, "iat")
        numeric_date(claims, "nbf")
    except ValueError as exc:
        raise IdTokenError(f"token's {exc}") from None
    if exp <= iat:
        raise IdTokenError("token's exp is not after its iat")
    if exp - iat > max_seconds:
        raise IdTokenError(f"token lives longer than {max_seconds} s (exp - iat)")


class IdTokenVerifier:
    def __init__(self, keys: list[TrustedKey], *, audience: str, max_lifetime: int) -> None:
        self._keys = {k.kid: k for k in keys}
        self._audience = audience
        self._max_lifetime = max_lifetime

    def verify(self, token: str) -> IdClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise IdTokenError("not a well-formed token") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise IdTokenError("token algorithm not accepted (EdDSA or ES256 only)")
        trusted = self._keys.get(str(header.get("kid")))
        if trusted is None:
            raise IdTokenError("token from an unknown issuer or key")
        if alg != trusted.algorithm:
            raise IdTokenError("token algorithm does not match the issuer's key")
        try:
            claims = jwt.decode(
                token,
                trusted.key,
                algorithms=[trusted.algorithm],
                audience=self._audience,
                issuer=trusted.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise IdTokenError(f"token lacks {exc.claim}") from None
        except jwt.ExpiredSignatureError:
            raise IdTokenError("token expired") from None
        except jwt.InvalidAudienceError:
            raise IdTokenError("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise IdTokenError("token from an unknown issuer or key") from None
        except jwt.InvalidSignatureError:
            raise IdTokenError("token signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise IdTokenError(f"token refused: {type(exc).__name__}") from None
        check_lifetime(claims, max_seconds=self._max_lifetime)
        country = claims.get("country")
        if not isinstance(country, str) or len(country) != 2 or not isinstance(claims["sub"], str):
            raise IdTokenError("token lacks a country or subject")
        return IdClaims(issuer=trusted.issuer, subject=claims["sub"], country=country.upper())
