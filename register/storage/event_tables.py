"""Tables of what the register tells: the transactional outbox (`outbox_events`), how far each consumer has
read it (`outbox_cursors`), institutions' webhooks and their deliveries. Re-exported by `storage.models`,
where the other tables are; the SQL that reads and writes them is in `storage.outbox` and `storage.webhooks`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from register.storage.types import utc_field as _utc

# A 64-bit sequence on PostgreSQL; on SQLite an INTEGER PRIMARY KEY (the rowid) with AUTOINCREMENT, so a
# number is never handed out twice even after the retention run deleted the newest rows.
SEQ = BigInteger().with_variant(Integer(), "sqlite")


class OutboxEvent(SQLModel, table=True):
    """One change worth telling, written in the transaction that made it (storage.outbox.record). `seq`
    orders them in commit order; `id` is what a receiver sees twice if a delivery is repeated. `data` never
    holds an identity number; `person_id` names the person it concerns (for notices to them), and
    `institution_id` the institution whose feed and webhooks carry it (None: the person's alone)."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_institution_seq", "institution_id", "seq"),
        Index("ix_outbox_events_person_id", "person_id"),
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(default=None, sa_column=Column(SEQ, primary_key=True, autoincrement=True))
    id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    type: str = Field(sa_column=Column(String(40), nullable=False))
    institution_id: str | None = Field(default=None, sa_column=Column(String(36)))
    person_id: str | None = Field(default=None, sa_column=Column(String(36)))
    occurred_at: datetime = _utc(index=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class OutboxCursor(SQLModel, table=True):
    """How far one consumer of the outbox has taken events (`last_seq`), or, for a periodic detector,
    up to which time it has looked (`position_at`)."""

    __tablename__ = "outbox_cursors"

    name: str = Field(sa_column=Column(String(40), primary_key=True))
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    position_at: datetime | None = _utc(nullable=True)
    updated_at: datetime = _utc()


class Webhook(SQLModel, table=True):
    """An institution's endpoint. The signing secret is kept encrypted like identity numbers; after a
    rotation the previous one signs too until `previous_until`."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_institution_id", "institution_id"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), nullable=False))
    url: str = Field(sa_column=Column(Text, nullable=False))
    events: list[str] = Field(sa_column=Column(JSON, nullable=False))
    secret_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    previous_secret_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    previous_until: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()


class WebhookDelivery(SQLModel, table=True):
    """One event to one webhook: `pending` (due at `next_attempt_at`), `delivered`, or `dead` (given up
    after the last attempt; shown to the institution and the operator)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    webhook_id: str = Field(sa_column=Column(String(36), nullable=False))
    institution_id: str = Field(sa_column=Column(String(36), nullable=False))
    event_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    event_id: str = Field(sa_column=Column(String(36), nullable=False))
    event_type: str = Field(sa_column=Column(String(40), nullable=False))
    state: str = Field(sa_column=Column(String(12), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = _utc()
    created_at: datetime = _utc()
    last_attempt_at: datetime | None = _utc(nullable=True)
    last_status: int | None = Field(default=None, sa_column=Column(Integer))
    last_error: str | None = Field(default=None, sa_column=Column(String(300)))
    delivered_at: datetime | None = _utc(nullable=True)
