"""Tables of notices to persons (SPEC.md, "Notices"): who asked to be told and how, the notices waiting
to be sent, and how far the notifier has read the access log. Re-exported by `storage.models`.

The e-mail address is personal data: only its AES-GCM ciphertext bound to its row is kept
(`email_enc`, like `persons.national_id_enc`), and the subscription names its person by blind index.
A waiting notice keeps what it will say (institution, purpose, time) encrypted too (`body_enc`), and is
deleted once sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from register.storage.types import utc_field as _utc


class NotificationSubscription(SQLModel, table=True):
    """A person's choice to be told: the address (encrypted), which events, one mail each or a daily
    digest, and whether the address was confirmed (only the SHA-256 of the confirmation token is kept)."""

    __tablename__ = "notification_subscriptions"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    blind_index: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    country: str = Field(sa_column=Column(String(2), nullable=False))
    email_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    language: str = Field(sa_column=Column(String(5), nullable=False))
    events: str = Field(sa_column=Column(String(100), nullable=False))  # comma-separated kinds
    digest: str = Field(sa_column=Column(String(10), nullable=False))  # none | daily
    token_hash: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    token_expires_at: datetime | None = _utc(nullable=True)
    confirmed_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class Notice(SQLModel, table=True):
    """One mail to send (or one item of a digest): a confirmation or a notice of an event. Deleted when
    sent; a failed attempt moves `next_attempt_at` on (backoff), so nothing is lost while SMTP is down."""

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_notices_subscription_event"),
        Index("ix_notices_due", "next_attempt_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    subscription_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    kind: str = Field(sa_column=Column(String(20), nullable=False))  # confirm | lookup | consent | ...
    event_id: str | None = Field(default=None, sa_column=Column(String(64)))
    body_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = _utc()
    last_error: str | None = Field(default=None, sa_column=Column(String(200)))
    created_at: datetime = _utc()


class NotifierCursor(SQLModel, table=True):
    """How far a notifier has read a source: for access events, the last leaf index of the transparency
    log handled (leaves are numbered without gaps in commit order, event sequence numbers are not)."""

    __tablename__ = "notifier_cursors"

    name: str = Field(sa_column=Column(String(40), primary_key=True))
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
