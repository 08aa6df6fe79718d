"""SQL for institutions' OAuth credentials: public keys, access tokens, used assertion ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from register.storage.models import Institution, InstitutionKey, OAuthAccessToken, OAuthJti


def add_key(session: Session, key: InstitutionKey) -> InstitutionKey:
    session.add(key)
    session.flush()
    return key


def key_taken(session: Session, *, institution_id: str, kid: str, thumbprint: str) -> bool:
    """True if this institution already has a key named `kid`, or any institution has this key."""
    found = session.execute(
        select(InstitutionKey.id).where(
            ((InstitutionKey.institution_id == institution_id) & (InstitutionKey.kid == kid))
            | (InstitutionKey.thumbprint == thumbprint)
        ).limit(1)
    ).first()
    return found is not None


def list_keys(session: Session, institution_id: str, *, active_only: bool = False) -> list[InstitutionKey]:
    query = select(InstitutionKey).where(InstitutionKey.institution_id == institution_id)
    if active_only:
        query = query.where(InstitutionKey.revoked_at.is_(None))
    return list(session.execute(query.order_by(InstitutionKey.created_at, InstitutionKey.id)).scalars())


def get_key(session: Session, *, institution_id: str, kid: str) -> InstitutionKey | None:
    return session.execute(
        select(InstitutionKey).where(InstitutionKey.institution_id == institution_id, InstitutionKey.kid == kid)
    ).scalar_one_or_none()


def add_access_token(session: Session, token: OAuthAccessToken) -> None:
    session.add(token)
    session.flush()


def get_access_token_holder(session: Session, token_hash: str, *, now: datetime) -> tuple[Institution, datetime] | None:
    """The institution an unexpired, unrevoked access token belongs to, and the token's expiry (one query)."""
    row = session.execute(
        select(Institution, OAuthAccessToken.expires_at)
        .join(OAuthAccessToken, OAuthAccessToken.institution_id == Institution.id)
        .where(
            OAuthAccessToken.token_hash == token_hash,
            OAuthAccessToken.expires_at > now,
            OAuthAccessToken.revoked_at.is_(None),
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


def revoke_access_tokens(session: Session, *, institution_id: str, now: datetime, key_id: str | None = None) -> int:
    """Revoke an institution's live access tokens (only those issued with `key_id`, if given)."""
    query = update(OAuthAccessToken).where(
        OAuthAccessToken.institution_id == institution_id,
        OAuthAccessToken.revoked_at.is_(None),
        OAuthAccessToken.expires_at > now,
    )
    if key_id is not None:
        query = query.where(OAuthAccessToken.key_id == key_id)
    return session.execute(query.values(revoked_at=now), execution_options={"synchronize_session": False}).rowcount


def use_jti(session: Session, *, institution_id: str, jti: str, expires_at: datetime) -> bool:
    """Record an assertion id; False if it was recorded before (a replay). A savepoint keeps the
    request's transaction usable after the unique violation. Two concurrent uses of one jti: the second
    insert waits for the first transaction and then fails, so exactly one wins."""
    try:
        with session.begin_nested():
            session.execute(insert(OAuthJti).values(institution_id=institution_id, jti=jti, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def prune_expired(session: Session, *, now: datetime) -> None:
    """Forget used assertion ids whose assertions have expired (they would be refused as expired anyway)
    and access tokens past their expiry."""
    session.execute(delete(OAuthJti).where(OAuthJti.expires_at < now), execution_options={"synchronize_session": False})
    session.execute(delete(OAuthAccessToken).where(OAuthAccessToken.expires_at < now),
                    execution_options={"synchronize_session": False})
