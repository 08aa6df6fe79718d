"""Institutions and their bearer tokens. A token is 32 random bytes shown once; only its SHA-256 is kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
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
    )
    session.add(inst)
    session.flush()
    return inst, token


def authenticate_token(session: Session, token: str, *, admin_token: str) -> Principal | None:
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(role=Role.admin, name="operator")
    inst = store.get_institution_by_token_hash(session, hash_token(token))
    if inst is None:
        return None
    return Principal(role=Role(inst.role), name=inst.name, institution_id=inst.id)
