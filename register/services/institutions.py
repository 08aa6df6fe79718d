"""Institutions and their bearer tokens. A token is 32 random bytes shown once; only its SHA-256 is kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from register.domain.permission import Principal, Role
from register.storage import institutions as store
from register.storage.models import Institution


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_PREFIX = "rgt_"  # recognisable by secret scanners, and never starts with "-" on a command line


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)  # 32 random bytes


def create_institution(
    session: Session,
    *,
    name: str,
    role: Role,
    org_number: str | None,
    country: str | None,
    now: datetime,
    token: str | None = None,
    contact: dict[str, str | None] | None = None,
) -> tuple[Institution, str]:
    """Register an institution; returns it with its bearer token, which is not kept and not shown again."""
    token = token or new_token()
    inst = Institution(
        id=str(uuid.uuid4()),
        name=name,
        role=role.value,
        org_number=org_number,
        country=country,
        token_hash=hash_token(token),
        created_at=now,
        contact_phone=(contact or {}).get("phone"),
        contact_email=(contact or {}).get("email"),
        contact_url=(contact or {}).get("url"),
    )
    session.add(inst)
    session.flush()
    return inst, token


def list_institutions(session: Session) -> list[Institution]:
    """Every institution, oldest first."""
    return store.list_institutions(session)


def institution_name(session: Session, institution_id: str) -> str | None:
    return store.names_by_id(session, {institution_id}).get(institution_id)


def rotate_institution_token(session: Session, institution: Institution) -> str:
    """Replace an institution's bearer token with a new one, returned once; the old one stops working
    (in other server processes after at most the token cache's ttl)."""
    token = new_token()
    institution.token_hash = hash_token(token)
    session.flush()
    return token


class TokenCache:
    """Recently verified institution tokens, by hash, for `ttl` seconds: saves a query on every request.
    A revoked token keeps working for at most `ttl` seconds in another server process (this process
    forgets it at once through `forget`)."""

    def __init__(self, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, token_hash: str) -> Principal | None:
        hit = self._entries.get(token_hash)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, token_hash: str, principal: Principal, *, ttl: float | None = None) -> None:
        """Remember for `ttl` seconds, or less if given less (a token that expires sooner)."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + min(self.ttl, ttl if ttl is not None else self.ttl), principal)

    def forget(self, institution_id: str | None = None) -> None:
        if institution_id is None:
            self._entries.clear()
        else:
            self._entries = {k: v for k, v in self._entries.items() if v[1].institution_id != institution_id}


def authenticate_token(
    session: Session, token: str, *, admin_token: str, cache: TokenCache | None = None
) -> Principal | None:
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(role=Role.admin, name="operator")
    token_hash = hash_token(token)
    if cache is not None and (hit := cache.get(token_hash)) is not None:
        return hit
    inst = store.get_institution_by_token_hash(session, token_hash)
    if inst is None:
        return None
    principal = Principal(role=Role(inst.role), name=inst.name, institution_id=inst.id)
    if cache is not None:
        cache.put(token_hash, principal)
    return principal
