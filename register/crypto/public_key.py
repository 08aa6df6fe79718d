"""Institutions' public keys for signing client assertions: Ed25519 (EdDSA) or P-256 (ES256), nothing else.

A key arrives as a JWK or a PEM SubjectPublicKeyInfo. It is kept as PEM, with its RFC 7638 thumbprint
(base64url SHA-256 of the canonical JWK members), which is also its default `kid`: a bank can compute
it from its own key, and the same key cannot be registered twice. Private keys are refused, not stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey


class KeyRefused(ValueError):
    """Why a key was not accepted (safe to show)."""


@dataclass(frozen=True)
class ParsedKey:
    algorithm: str  # EdDSA | ES256
    key: PublicKey
    pem: str
    thumbprint: str
    jwk: dict[str, str]  # the public members only


def parse_public_key(*, jwk: dict[str, Any] | None = None, pem: str | None = None) -> ParsedKey:
    if (jwk is None) == (pem is None):
        raise KeyRefused("give the key as a JWK or as PEM, not both")
    return _from_jwk(jwk) if jwk is not None else _from_pem(pem or "")


def load_pem(pem: str) -> PublicKey:
    """A stored key (already checked when it was registered)."""
    return _from_pem(pem).key


def _from_jwk(jwk: dict[str, Any]) -> ParsedKey:
    if "d" in jwk:
        raise KeyRefused("that JWK holds a private key: send only the public key, and keep the private one")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not ((kty == "OKP" and crv == "Ed25519") or (kty == "EC" and crv == "P-256")):
        raise KeyRefused("only Ed25519 (kty OKP) and P-256 (kty EC) keys are accepted")
    try:
        key = jwt.PyJWK(dict(jwk)).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        raise KeyRefused("not a valid public JWK") from None
    return _parsed(key)


def _from_pem(pem: str) -> ParsedKey:
    if "PRIVATE KEY" in pem:
        raise KeyRefused("that PEM holds a private key: send only the public key, and keep the private one")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyRefused("not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    return _parsed(key)


def _parsed(key: Any) -> ParsedKey:
    if isinstance(key, Ed25519PublicKey):
        algorithm, jwk = "EdDSA", OKPAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm, jwk = "ES256", ECAlgorithm.to_jwk(key, as_dict=True)
    else:
        raise KeyRefused("only Ed25519 and P-256 public keys are accepted")
    members = {k: jwk[k] for k in (("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("crv", "kty", "x"))}
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return ParsedKey(algorithm=algorithm, key=key, pem=pem, thumbprint=thumbprint(members), jwk=members)


def thumbprint(members: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace; base64url without padding."""
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).decode().rstrip("=")
