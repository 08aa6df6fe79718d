"""Client assertions (RFC 7523 section 2.2, `private_key_jwt`): an institution proves who it is with a
short JWT signed by a key it registered.

Accepted only if: `alg` is EdDSA or ES256 (never `none`, never HMAC, so a public key can never serve as
an HMAC secret); the header's `kid` names one of the institution's active keys of that algorithm (no
`kid`: each active key of that algorithm is tried); the signature verifies; `iss` and `sub` are the
institution's id; `aud` is the register's token audience; `exp`, `iat` and `jti` are present; `exp` has
not passed (10 s skew); `iat` is at most 60 s ahead; `nbf`, if present, has come (10 s skew); the
assertion lives at most 5 minutes (`exp - iat`); `exp`, `iat` and `nbf` are finite numbers in range
(register.crypto.numeric_date: a NaN would pass every comparison). Whether the `jti` was seen before is
the caller's check, against durable storage. Refusals name the failed check and never echo a claim value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from register.crypto.numeric_date import numeric_date, required_numeric_date

ALLOWED_ALGS = frozenset({"EdDSA", "ES256"})
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW_SECONDS = 10
MAX_IAT_AHEAD_SECONDS = 60
MAX_LIFETIME_SECONDS = 300
MAX_JTI_LENGTH = 200


class AssertionRefused(Exception):
    """Why an assertion was refused: `check` is a short stable name (for the access log), the message
    is safe to show."""

    def __init__(self, check: str, message: str) -> None:
        self.check = check
        super().__init__(message)


@dataclass(frozen=True)
class VerifyingKey:
    kid: str
    algorithm: str
    key: Any  # a cryptography public key


@dataclass(frozen=True)
class Unverified:
    """What the assertion says before anything is verified: only used to find the keys to verify it with."""

    algorithm: str | None  # not yet checked: verify_assertion refuses all but EdDSA and ES256
    kid: str | None
    issuer: str


@dataclass(frozen=True)
class VerifiedAssertion:
    kid: str  # the key that verified it
    jti: str
    expires_at: float  # `exp`, seconds since the epoch


def read_unverified(assertion: str) -> Unverified:
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AssertionRefused("malformed", "the client assertion is not a well-formed JWT") from None
    alg = header.get("alg")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise AssertionRefused("malformed", "the assertion's kid must be a string")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise AssertionRefused("claims", "the assertion lacks iss (the client id)")
    return Unverified(algorithm=alg if isinstance(alg, str) else None, kid=kid, issuer=issuer)


def verify_assertion(
    assertion: str, *, keys: Sequence[VerifyingKey], client_id: str, audience: str, now: float
) -> VerifiedAssertion:
    """Verify `assertion` as `client_id`'s, with one of `keys` (that client's active keys)."""
    head = read_unverified(assertion)
    if head.algorithm not in ALLOWED_ALGS:
        raise AssertionRefused("algorithm", "assertion algorithm not accepted (EdDSA or ES256 only)")
    candidates = [k for k in keys if k.algorithm == head.algorithm and head.kid in (None, k.kid)]
    if not candidates:
        raise AssertionRefused("unknown_key", "no active key of this client matches the assertion's kid and alg")
    for candidate in candidates:
        try:
            claims = jwt.decode(
                assertion, candidate.key, algorithms=[candidate.algorithm], audience=audience, issuer=client_id,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"],
                         "verify_exp": False, "verify_iat": False, "verify_nbf": False},  # checked below, on our clock
            )  # fmt: skip
        except jwt.InvalidSignatureError:
            continue
        except jwt.MissingRequiredClaimError as exc:
            raise AssertionRefused("claims", f"the assertion lacks {exc.claim}") from None
        except jwt.InvalidAudienceError:
            raise AssertionRefused("audience", f'the assertion is for another audience: aud must be "{audience}"'
                                   ) from None  # the register's own setting, public; never the claim's value
        except jwt.InvalidIssuerError:
            raise AssertionRefused("issuer", "the assertion's iss is not the client id") from None
        except jwt.PyJWTError as exc:
            raise AssertionRefused("malformed", f"assertion refused: {type(exc).__name__}") from None
        _check_claims(claims, client_id=client_id, now=now)
        return VerifiedAssertion(kid=candidate.kid, jti=claims["jti"], expires_at=float(claims["exp"]))
    raise AssertionRefused("signature", "the assertion's signature does not verify")


def _check_claims(claims: dict[str, Any], *, client_id: str, now: float) -> None:
    if claims["sub"] != client_id:
        raise AssertionRefused("subject", "the assertion's sub is not the client id")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        raise AssertionRefused("claims", f"the assertion's jti must be a string of 1-{MAX_JTI_LENGTH} characters")
    try:
        exp, iat = required_numeric_date(claims, "exp"), required_numeric_date(claims, "iat")
        nbf = numeric_date(claims, "nbf")
    except ValueError as exc:
        raise AssertionRefused("claims", f"the assertion's {exc}") from None
    if exp + CLOCK_SKEW_SECONDS < now:
        raise AssertionRefused("expired", "the assertion has expired")
    if iat > now + MAX_IAT_AHEAD_SECONDS:
        raise AssertionRefused("issued_in_future", f"the assertion's iat is more than {MAX_IAT_AHEAD_SECONDS} s ahead")
    if nbf is not None and nbf > now + CLOCK_SKEW_SECONDS:
        raise AssertionRefused("not_yet_valid", "the assertion's nbf has not come")
    if exp - iat > MAX_LIFETIME_SECONDS:
        raise AssertionRefused("lifetime", f"the assertion may live at most {MAX_LIFETIME_SECONDS} s (exp - iat)")
    if exp <= iat:
        raise AssertionRefused("lifetime", "the assertion's exp is not after its iat")
