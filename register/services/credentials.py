"""The operator's control of institutions' credentials: assertion keys (add, list, revoke), OAuth access
tokens (revoke all) and the `rgt_` bearer token (rotate). Each change is an access event.

Rotating a key is adding the new one, moving the institution's signer to it, then revoking the old one.
Revoking a key also revokes the access tokens issued with it. Revocations take effect at once in the
process that makes them and within the token cache's ttl (10 s) in the others: callers `forget` the
institution in their cache.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.crypto.public_key import KeyRefused, parse_public_key
from register.domain.permission import Principal
from register.errors import Conflict, InvalidInput, NotFound
from register.services.events import record_event
from register.services.institutions import rotate_institution_token
from register.storage import credentials as store
from register.storage.institutions import get_institution
from register.storage.models import Institution, InstitutionKey

KID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def _institution(session: Session, institution_id: str) -> Institution:
    inst = get_institution(session, institution_id)
    if inst is None:
        raise NotFound("no institution with that id")
    return inst


def add_institution_key(
    session: Session,
    *,
    principal: Principal,
    institution_id: str,
    jwk: dict[str, Any] | None,
    pem: str | None,
    kid: str | None,
    now: datetime,
) -> InstitutionKey:
    """Register a public key; its `kid` defaults to its RFC 7638 thumbprint."""
    inst = _institution(session, institution_id)
    try:
        parsed = parse_public_key(jwk=jwk, pem=pem)
    except KeyRefused as exc:
        raise InvalidInput(str(exc), code="invalid_key") from None
    kid = kid or (jwk or {}).get("kid") or parsed.thumbprint
    if not isinstance(kid, str) or not KID.match(kid):
        raise InvalidInput("kid must be 1-100 characters of A-Z a-z 0-9 . _ : -", code="invalid_key")
    if store.key_taken(session, institution_id=inst.id, kid=kid, thumbprint=parsed.thumbprint):
        raise Conflict("this key, or this kid for this institution, is already registered", code="key_exists")
    key = store.add_key(session, InstitutionKey(
        id=str(uuid.uuid4()), institution_id=inst.id, kid=kid, thumbprint=parsed.thumbprint,
        algorithm=parsed.algorithm, public_key=parsed.pem, created_at=now,
    ))  # fmt: skip
    record_event(session, principal=principal, action="admin:institution_key:add", now=now,
                 details={"institution_id": inst.id, "kid": kid})  # fmt: skip
    return key


def list_institution_keys(session: Session, *, institution_id: str) -> list[InstitutionKey]:
    return store.list_keys(session, _institution(session, institution_id).id)


def revoke_institution_key(
    session: Session, *, principal: Principal, institution_id: str, kid: str, now: datetime
) -> tuple[InstitutionKey, int]:
    """Revoke a key and the live access tokens issued with it; returns the key and how many tokens.
    Revoking a revoked key changes nothing."""
    inst = _institution(session, institution_id)
    key = store.get_key(session, institution_id=inst.id, kid=kid)
    if key is None:
        raise NotFound("no key with that kid for this institution")
    if key.revoked_at is not None:
        return key, 0
    key.revoked_at = now
    session.flush()
    revoked = store.revoke_access_tokens(session, institution_id=inst.id, key_id=key.id, now=now)
    record_event(session, principal=principal, action="admin:institution_key:revoke", now=now,
                 details={"institution_id": inst.id, "kid": kid, "access_tokens_revoked": revoked})  # fmt: skip
    return key, revoked


def revoke_institution_access_tokens(session: Session, *, principal: Principal, institution_id: str,
                                     now: datetime) -> int:  # fmt: skip
    inst = _institution(session, institution_id)
    revoked = store.revoke_access_tokens(session, institution_id=inst.id, now=now)
    record_event(session, principal=principal, action="admin:access_tokens:revoke", now=now,
                 details={"institution_id": inst.id, "access_tokens_revoked": revoked})  # fmt: skip
    return revoked


def rotate_bearer_token(session: Session, *, principal: Principal, institution_id: str,
                        now: datetime) -> tuple[Institution, str]:  # fmt: skip
    inst = _institution(session, institution_id)
    token = rotate_institution_token(session, inst)
    record_event(session, principal=principal, action="admin:institution_token:rotate", now=now,
                 details={"institution_id": inst.id})  # fmt: skip
    return inst, token
