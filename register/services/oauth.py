"""Institution sign-in with OAuth2 client credentials and a signed JWT assertion (RFC 6749 section 4.4,
RFC 7523 section 2.2, `private_key_jwt`).

An institution signs a short assertion with a key it registered; the register checks it
(`register.crypto.client_assertion`), records its `jti` so it cannot be used twice, and answers with an
opaque access token: `rat_` and 32 random bytes, kept only as its SHA-256 with its expiry, the key it was
issued with and its revocation. Opaque, so it can never be taken for a consumer ID token (a JWT) and can
be revoked at once. Every issuance and every refusal of a known institution is an access event (the
assertion itself is never logged).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from register.crypto.client_assertion import (
    CLOCK_SKEW_SECONDS,
    AssertionRefused,
    VerifyingKey,
    read_unverified,
    verify_assertion,
)
from register.crypto.public_key import load_pem
from register.domain.permission import Principal, Role
from register.errors import InvalidClient
from register.services.events import record_event
from register.services.institutions import TokenCache, hash_token
from register.storage import credentials as store
from register.storage.institutions import get_institution
from register.storage.models import Institution, OAuthAccessToken

ACCESS_TOKEN_PREFIX = "rat_"  # register access token; recognisable by secret scanners like `rgt_`
ACTION = "oauth:token:issue"


@dataclass(frozen=True)
class IssuedToken:
    institution_id: str
    access_token: str
    expires_in: int  # seconds


def issue_access_token(
    session: Session,
    *,
    assertion: str,
    client_id: str | None,
    audience: str,
    ttl: int,
    now: datetime,
    request_id: str | None = None,
) -> IssuedToken:
    try:
        head = read_unverified(assertion)
    except AssertionRefused as exc:
        raise InvalidClient(str(exc)) from None
    if client_id is not None and client_id != head.issuer:
        raise InvalidClient("client_id is not the assertion's iss")
    inst = get_institution(session, head.issuer)
    if inst is None:  # nobody to attribute an event to; the request log has the refusal
        raise InvalidClient("the assertion's iss is not a registered institution")
    principal = _principal(inst)
    rows = {k.kid: k for k in store.list_keys(session, inst.id, active_only=True)}
    keys = [VerifyingKey(kid=k.kid, algorithm=k.algorithm, key=load_pem(k.public_key)) for k in rows.values()]
    try:
        verified = verify_assertion(assertion, keys=keys, client_id=inst.id, audience=audience,
                                    now=now.timestamp())  # fmt: skip
    except AssertionRefused as exc:
        raise _refused(session, principal, now, request_id, exc.check, str(exc)) from None
    # Held until the assertion could no longer be accepted anyway: its exp plus the clock skew.
    held_until = datetime.fromtimestamp(verified.expires_at + CLOCK_SKEW_SECONDS, UTC)
    if not store.use_jti(session, institution_id=inst.id, jti=verified.jti, expires_at=held_until):
        raise _refused(session, principal, now, request_id, "replayed_jti", "this assertion's jti was used before")
    store.prune_expired(session, now=now)
    token = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_access_token(session, OAuthAccessToken(
        token_hash=hash_token(token), institution_id=inst.id, key_id=rows[verified.kid].id, issued_at=now,
        expires_at=now + timedelta(seconds=ttl),
    ))  # fmt: skip
    record_event(session, principal=principal, action=ACTION, now=now, request_id=request_id,
                 details={"kid": verified.kid, "expires_in": ttl})  # fmt: skip
    return IssuedToken(institution_id=inst.id, access_token=token, expires_in=ttl)


def _refused(
    session: Session, principal: Principal, now: datetime, request_id: str | None, check: str, message: str
) -> InvalidClient:
    """The refusal, with its access event kept: the error commits what was flushed."""
    record_event(session, principal=principal, action=ACTION, now=now, outcome="refused", reason="invalid_client",
                 request_id=request_id, details={"check": check})  # fmt: skip
    error = InvalidClient(message)
    error.commit = True
    return error


def authenticate_access_token(session: Session, token: str, *, now: datetime, cache: TokenCache | None = None
                              ) -> Principal | None:  # fmt: skip
    token_hash = hash_token(token)
    if cache is not None and (hit := cache.get(token_hash)) is not None:
        return hit
    seen = cache.seen() if cache is not None else 0
    found = store.get_access_token_holder(session, token_hash, now=now)
    if found is None:
        return None
    inst, expires_at = found
    principal = _principal(inst)
    if cache is not None:  # never cached past its expiry
        cache.put(token_hash, principal, ttl=(expires_at - now).total_seconds(), generation=seen)
    return principal


def _principal(inst: Institution) -> Principal:
    return Principal(role=Role(inst.role), name=inst.name, institution_id=inst.id)
