"""Tables of who may come in and with which keys: institutions' signing keys, OAuth access tokens and used
assertion ids, the person's web sessions, and the versions of the register's own keys. Re-exported by
`storage.models`, where the other tables are (see its docstring); split from it by what they hold."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from register.storage.types import utc_field as _utc


class InstitutionKey(SQLModel, table=True):
    """A public key an institution signs its OAuth client assertions with (Ed25519 or P-256), as PEM.
    `kid` is what assertions name in their header; `thumbprint` (RFC 7638) keeps one key to one
    institution. A revoked key stays, for the record, and verifies nothing."""

    __tablename__ = "institution_keys"
    __table_args__ = (UniqueConstraint("institution_id", "kid", name="uq_institution_keys_kid"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), nullable=False))
    kid: str = Field(sa_column=Column(String(100), nullable=False))
    thumbprint: str = Field(sa_column=Column(String(43), nullable=False, unique=True))
    algorithm: str = Field(sa_column=Column(String(10), nullable=False))  # EdDSA | ES256
    public_key: str = Field(sa_column=Column(Text, nullable=False))  # PEM SubjectPublicKeyInfo
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc(nullable=True)


class OAuthAccessToken(SQLModel, table=True):
    """A short-lived access token from POST /v1/oauth/token: only its SHA-256 is kept. Rows past their
    expiry are deleted lazily."""

    __tablename__ = "oauth_access_tokens"
    __table_args__ = (Index("ix_oauth_access_tokens_institution", "institution_id", "expires_at"),)

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), nullable=False))
    key_id: str = Field(sa_column=Column(String(36), ForeignKey("institution_keys.id"), nullable=False, index=True))
    issued_at: datetime = _utc()
    expires_at: datetime = _utc(index=True)
    revoked_at: datetime | None = _utc(nullable=True)


class OAuthJti(SQLModel, table=True):
    """Client assertion ids already used, until their assertion expires: a replay fails on the primary
    key, in any process. Rows past `expires_at` are deleted lazily."""

    __tablename__ = "oauth_jtis"

    institution_id: str = Field(sa_column=Column(String(36), primary_key=True))
    jti: str = Field(sa_column=Column(String(200), primary_key=True))
    expires_at: datetime = _utc(index=True)


class WebSession(SQLModel, table=True):
    """A person signed in to the pages under /app/. The cookie holds a random token and only its SHA-256
    is kept, so a copy of the table opens no session. The identity is AES-GCM ciphertext bound to this row
    (as in `persons`), found again by its blind index; the CSRF secret keys the forms' tokens. A row idle
    longer than the setting is refused and deleted."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_last_seen", "last_seen_at"),)

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    subject: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, index=True))
    country: str = Field(sa_column=Column(String(2), nullable=False))
    national_id_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    csrf_secret: str = Field(sa_column=Column(String(64), nullable=False))
    method: str = Field(sa_column=Column(String(10), nullable=False))  # dev | oidc
    created_at: datetime = _utc()
    last_seen_at: datetime = _utc()


class StaffSession(SQLModel, table=True):
    """A regulator's staff member signed in to the desk under /regulator/. As in `web_sessions`, the cookie
    holds a random token and only its SHA-256 is kept. The session speaks for `institution_id` (a regulator
    when it began; checked again on every request); `staff` is a SHA-256 of the provider's issuer and the
    staff member's `sub`, so the register can tell staff members apart without keeping who they are."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_last_seen", "last_seen_at"),)

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), nullable=False))
    staff: str = Field(sa_column=Column(String(64), nullable=False))
    csrf_secret: str = Field(sa_column=Column(String(64), nullable=False))
    method: str = Field(sa_column=Column(String(10), nullable=False))  # dev | oidc
    created_at: datetime = _utc()
    last_seen_at: datetime = _utc()


class KeyVersion(SQLModel, table=True):
    """One version of a field-encryption or blind-index key: its state and its fingerprint (HMAC-SHA256 of a
    fixed label under the key, never the key). Recorded on first start; a process whose keys do not match
    refuses to start, and every process rereads this table to follow a rotation (services.keys)."""

    __tablename__ = "key_versions"

    kind: str = Field(sa_column=Column(String(16), primary_key=True))  # fields | blind-index
    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))  # pending | active | retiring | destroyed
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = _utc()
    changed_at: datetime = _utc()
