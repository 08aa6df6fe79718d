"""Tables. Every table is created by an Alembic migration; `alembic check` keeps these in step.

No column holds a national identity in plain text: `persons` keeps it as AES-GCM ciphertext bound to
its row and a keyed blind index for lookups; every other table refers to `persons.id`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from register.storage.access_tables import (  # noqa: F401  (named here too, with every other table)
    InstitutionKey, KeyVersion, OAuthAccessToken, OAuthJti, StaffSession, WebSession,
)  # fmt: skip
from register.storage.event_tables import (  # noqa: F401  (named here too, with every other table)
    OutboxCursor, OutboxEvent, Webhook, WebhookDelivery,
)  # fmt: skip
from register.storage.notice_tables import Notice, NotificationSubscription, NotifierCursor  # noqa: F401
from register.storage.types import WrittenJson
from register.storage.types import utc_field as _utc

metadata: MetaData = SQLModel.metadata


def _money(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(BigInteger, nullable=nullable))


class Institution(SQLModel, table=True):
    __tablename__ = "institutions"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    role: str = Field(sa_column=Column(String(20), nullable=False))
    org_number: str | None = Field(default=None, sa_column=Column(String(40)))
    country: str | None = Field(default=None, sa_column=Column(String(2)))
    # How a person reaches the creditor about a debt (shown on the person's pages and in /v1/me).
    contact_phone: str | None = Field(default=None, sa_column=Column(String(40)))
    contact_email: str | None = Field(default=None, sa_column=Column(String(200)))
    contact_url: str | None = Field(default=None, sa_column=Column(String(300)))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = _utc()


class Person(SQLModel, table=True):
    """A natural person, known to the register only by ciphertext and blind index."""

    __tablename__ = "persons"
    # A unique index rather than a constraint: adding it needs no rebuild of persons on SQLite. Partial: the
    # column is NULL but while a rotation runs, and a NULL entry per person cost every new person an index
    # insertion for nothing (migration 2c7e9b4f1a83; lookups by it name a value, so they still use it).
    __table_args__ = (Index("ix_persons_blind_index_next", "blind_index_next", unique=True,
                            postgresql_where=text("blind_index_next IS NOT NULL"),
                            sqlite_where=text("blind_index_next IS NOT NULL")),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    country: str = Field(sa_column=Column(String(2), nullable=False))
    blind_index: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    # The index under the other live blind-index key while a rotation runs (NULL otherwise): lookups match
    # either column, so processes on the old key and on the new one both find the person (services.keys).
    blind_index_next: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32)))
    national_id_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _utc()


class Obligation(SQLModel, table=True):
    """The current state of one debt as one institution knows it."""

    __tablename__ = "obligations"
    __table_args__ = (
        UniqueConstraint("institution_id", "external_ref", name="uq_obligations_institution_ref"),
        Index("ix_obligations_institution_updated", "institution_id", "updated_at", "id"),
        # No index on collects_*: no query looks a line up by the claim it collects (migration 3b8e61d0f4a2).
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    # No foreign keys on the rows a report writes (migration 8f3c2a7d1e45): see `ObligationDebtor`.
    institution_id: str = Field(sa_column=Column(String(36), nullable=False))
    external_ref: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(sa_column=Column(String(30), nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    original_amount: int | None = _money()
    balance: int = _money(nullable=False)
    credit_limit: int | None = _money()
    monthly_payment: int | None = _money()
    interest_rate_bp: int | None = Field(default=None, sa_column=Column(Integer))
    opened_on: date | None = Field(default=None, sa_column=Column(Date))
    matures_on: date | None = Field(default=None, sa_column=Column(Date))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    overdue_amount: int = _money(nullable=False)
    days_past_due: int = Field(sa_column=Column(Integer, nullable=False))
    original_creditor: str | None = Field(default=None, sa_column=Column(String(200)))
    collects_institution_id: str | None = Field(default=None, sa_column=Column(String(36)))
    collects_external_ref: str | None = Field(default=None, sa_column=Column(String(200)))
    # The creditor's word that a collector holds this debt now: the claim (institution, ref) that collects it.
    handed_to_institution_id: str | None = Field(default=None, sa_column=Column(String(36)))
    handed_to_external_ref: str | None = Field(default=None, sa_column=Column(String(200)))
    registration_consent: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    as_of: datetime = _utc()
    version: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    retracted_at: datetime | None = _utc(nullable=True)
    retraction_reason: str | None = Field(default=None, sa_column=Column(Text))
    # SHA-256 of the canonical reported state (debtors by person id): tells an identical repeat from a
    # change without loading the stored state. Null for rows written before it existed.
    state_hash: str | None = Field(default=None, sa_column=Column(String(64)))


class ObligationDebtor(SQLModel, table=True):
    __tablename__ = "obligation_debtors"
    __table_args__ = (Index("ix_obligation_debtors_person", "person_id"),)

    # No foreign keys here, on `obligations.institution_id` or on `obligation_versions.obligation_id`
    # (migration 8f3c2a7d1e45): PostgreSQL checked each row a report wrote with a query of its own, 16 us of
    # its CPU a line, about an eighth of a daily file's cost (BENCHMARKS.md, ninth round). What they guarded
    # the register guards itself (SPEC §2): these rows are written only with their obligation, in its
    # transaction; deleted only children first (storage.retention.delete_obligations); a person a report
    # names is locked FOR KEY SHARE until it commits, and is forgotten only if unlocked and unnamed
    # (storage.retention.forget_persons); institutions are never deleted. `storage.integrity` counts what
    # would dangle, and the tests run it after every workflow that deletes.
    obligation_id: str = Field(sa_column=Column(String(36), primary_key=True))
    person_id: str = Field(sa_column=Column(String(36), primary_key=True))
    role: str = Field(sa_column=Column(String(20), nullable=False))


class ObligationVersion(SQLModel, table=True):
    """Every accepted change, kept: who changed what, when, and the whole state it produced."""

    __tablename__ = "obligation_versions"

    # Keyed by what names a version, (obligation, number): no surrogate id, whose sequence and second index
    # cost every line of a daily file 0.9 us of PostgreSQL's CPU (migration 6e2d9f0b7c14).
    obligation_id: str = Field(sa_column=Column(String(36), primary_key=True))  # no foreign key: see `ObligationDebtor`
    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    change: str = Field(sa_column=Column(String(20), nullable=False))  # created | updated | retracted
    institution_id: str = Field(sa_column=Column(String(36), nullable=False))
    request_id: str | None = Field(default=None, sa_column=Column(String(64)))
    recorded_at: datetime = _utc()
    as_of: datetime = _utc()
    state: dict[str, Any] = Field(sa_column=Column(WrittenJson, nullable=False))  # text on PostgreSQL: `WrittenJson`


class Consent(SQLModel, table=True):
    """A person's permission for one institution to look, for one purpose, until a time."""

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_person", "person_id", "granted_at"),
        Index("ix_consents_institution", "institution_id", "granted_at"),
        # An attested consent's evidence reference names one consent of its institution (null for consents
        # given in the register): reusing a reference for another person is refused.
        Index("uq_consents_institution_reference", "institution_id", "evidence_reference", unique=True),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    person_id: str = Field(sa_column=Column(String(36), ForeignKey("persons.id"), nullable=False))
    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), nullable=False))
    purpose: str = Field(sa_column=Column(String(40), nullable=False))
    source: str = Field(sa_column=Column(String(20), nullable=False))  # consumer | attested
    evidence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    evidence_reference: str | None = Field(default=None, sa_column=Column(String(200)))  # = evidence.reference
    granted_at: datetime = _utc()
    expires_at: datetime = _utc()
    revoked_at: datetime | None = _utc(nullable=True)


class AccessEvent(SQLModel, table=True):
    """One look or one change: who, what, about whom (blind index only), why, and the outcome.

    Rows are never updated or deleted: triggers refuse it on both databases.
    """

    __tablename__ = "access_events"
    __table_args__ = (
        Index("ix_access_events_subject", "subject", "occurred_at"),
        Index("ix_access_events_actor", "actor_id", "occurred_at"),
        Index("ix_access_events_time", "occurred_at", "id"),
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    occurred_at: datetime = _utc()
    actor_type: str = Field(sa_column=Column(String(20), nullable=False))  # institution | consumer | admin
    actor_id: str | None = Field(default=None, sa_column=Column(String(36)))
    actor_role: str = Field(sa_column=Column(String(20), nullable=False))
    action: str = Field(sa_column=Column(String(60), nullable=False))
    subject: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32)))
    purpose: str | None = Field(default=None, sa_column=Column(String(40)))
    consent_id: str | None = Field(default=None, sa_column=Column(String(36)))
    outcome: str = Field(sa_column=Column(String(20), nullable=False))  # granted | refused | ok
    reason: str | None = Field(default=None, sa_column=Column(String(60)))
    request_id: str | None = Field(default=None, sa_column=Column(String(64)))
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # The leaf version the row encodes to (register.audit.leaf): NULL for rows written before versions
    # were stored (version 1, `subject` the blind index); 2: `subject` is a pseudonym (SubjectPseudonym).
    leaf_version: int | None = Field(default=None, sa_column=Column(SmallInteger))


class SubjectPseudonym(SQLModel, table=True):
    """The one link from a person (by blind index) to the access events about them written in one epoch
    (a calendar month, UTC): `pseudonym` is random (not derived from the identity number) and is what
    those events carry as their subject. Deleting the row makes the epoch's events unlinkable: the
    retention run does it when the person is forgotten and when the epoch's events pass their period.
    Epoch `v1` (one per subject, from the migration): the blind index itself, for events written before
    pseudonyms (leaf version 1); `epoch_end` is then the first month after its newest event."""

    __tablename__ = "subject_pseudonyms"
    __table_args__ = (
        UniqueConstraint("blind_index", "epoch", name="uq_subject_pseudonyms_blind_index_epoch"),
        Index("ix_subject_pseudonyms_epoch_end", "epoch_end"),
    )

    pseudonym: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    blind_index: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    epoch: str = Field(sa_column=Column(String(7), nullable=False))  # "2026-12", or "v1"
    epoch_end: datetime = _utc()  # exclusive: the epoch's events all happened before it


class ExposureRecord(SQLModel, table=True):
    """Exactly what an exposure answer said, so it can be reproduced for a complaint. `response` is NULL
    once shredded at the end of its retention period; its hash stays."""

    __tablename__ = "exposures"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    event_id: str = Field(sa_column=Column(String(36), nullable=False))
    institution_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    person_id: str = Field(sa_column=Column(String(36), nullable=False))
    consent_id: str = Field(sa_column=Column(String(36), nullable=False))
    created_at: datetime = _utc()
    response_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Dispute(SQLModel, table=True):
    """A person's objection to one line of debt, and how the creditor answered it.

    `state` is stored as open, corrected, upheld or withdrawn; an open dispute past `deadline_at` is shown
    as overdue (derived, never stored, so no job has to flip it). The person's text and statement are
    free text and may hold anything, so both are AES-GCM ciphertext bound to the row, like identities.
    """

    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_obligation_state", "obligation_id", "state"),
        Index("ix_disputes_institution_state", "institution_id", "state", "deadline_at"),
        Index("ix_disputes_person", "person_id", "opened_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    obligation_id: str = Field(sa_column=Column(String(36), ForeignKey("obligations.id"), nullable=False))
    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), nullable=False))
    person_id: str = Field(sa_column=Column(String(36), ForeignKey("persons.id"), nullable=False))
    reason: str = Field(sa_column=Column(String(20), nullable=False))
    text_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(sa_column=Column(String(20), nullable=False))
    opened_at: datetime = _utc()
    deadline_at: datetime = _utc()
    closed_at: datetime | None = _utc(nullable=True)
    closed_by: str | None = Field(default=None, sa_column=Column(String(20)))  # creditor | report | person
    explanation: str | None = Field(default=None, sa_column=Column(Text))  # the creditor's, shown to the person
    statement_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    statement_at: datetime | None = _utc(nullable=True)
    version: int = Field(sa_column=Column(Integer, nullable=False))


class CreditBan(SQLModel, table=True):
    """A credit ban the person set on themselves: one row per ban, kept after it ends.

    Active while `since` <= now, `until` is unset or later, and no lift has taken effect (a lift takes
    effect `lift_effective_at`, an hour after it was asked for, and can be taken back until then).
    """

    __tablename__ = "credit_bans"
    __table_args__ = (Index("ix_credit_bans_person", "person_id", "since"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    person_id: str = Field(sa_column=Column(String(36), ForeignKey("persons.id"), nullable=False))
    reason: str = Field(sa_column=Column(String(20), nullable=False))
    since: datetime = _utc()
    until: datetime | None = _utc(nullable=True)
    lift_requested_at: datetime | None = _utc(nullable=True)
    lift_effective_at: datetime | None = _utc(nullable=True)


class QuotaUsage(SQLModel, table=True):
    """Exposure answers given to one institution on one UTC day: its daily quota's counters, shared by
    every server process. The day's quota is split over shards (storage.quota), one row each, counted up in
    the answer's own transaction; `attested` counts the answers among them given with an attested consent
    (their own, lower quota). The day's count is the sum over its shards."""

    __tablename__ = "quota_usage"

    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    shard: int = Field(default=0, sa_column=Column(SmallInteger, primary_key=True, server_default="0"))
    used: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    attested: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class LogPending(SQLModel, table=True):
    """Events written but not yet integrated into the tree: a small queue, filled in the event's own
    transaction and drained by the integrator."""

    __tablename__ = "log_pending"

    event_seq: int = Field(sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False))


class LogLeaf(SQLModel, table=True):
    """Leaf `leaf_index` of the tree is the access event `event_seq`. Append-only."""

    __tablename__ = "log_leaves"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    integrated_at: datetime = _utc()


class LogNode(SQLModel, table=True):
    """A complete subtree: level L, index i covers leaves [i*2^L, (i+1)*2^L). Append-only."""

    __tablename__ = "log_nodes"

    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class LogCheckpoint(SQLModel, table=True):
    """A signed tree head, as published. Append-only."""

    __tablename__ = "log_checkpoints"
    __table_args__ = (Index("ix_log_checkpoints_size", "size"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))


class LogKey(SQLModel, table=True):
    """The log's signing keys after the first rotation (none before it: the store's first key signs). Public
    halves only: the private halves stay in the key store. One row is `active`; the others are `retired`, each
    with the handover note its successor's row carries. Append-only but for `state`."""

    __tablename__ = "log_keys"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    vkey: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    public_key: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    state: str = Field(sa_column=Column(String(10), nullable=False))  # active | retired
    from_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    handover_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _utc()


class Report(SQLModel, table=True):
    """A batch report: a file of obligation lines, stored durably (encrypted) before it is accepted,
    then processed in the background in committed batches, resumable after a crash."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("institution_id", "idempotency_key", name="uq_reports_idempotency"),
        Index("ix_reports_status", "status", "received_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    institution_id: str = Field(sa_column=Column(String(36), ForeignKey("institutions.id"), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))  # received | processing | done | failed
    mode: str = Field(sa_column=Column(String(10), nullable=False))  # delta | snapshot
    format: str = Field(sa_column=Column(String(10), nullable=False))  # ndjson | csv
    idempotency_key: str | None = Field(default=None, sa_column=Column(String(200)))
    body_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    body_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    chunks: int = Field(sa_column=Column(Integer, nullable=False))
    lines_read: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    bytes_read: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    accepted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    unchanged: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    rejected: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    unreported: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))
    received_at: datetime = _utc()
    started_at: datetime | None = _utc(nullable=True)
    finished_at: datetime | None = _utc(nullable=True)
    heartbeat_at: datetime | None = _utc(nullable=True)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))


class ReportChunk(SQLModel, table=True):
    """Up to 1 MiB of a report's body, zstd-compressed (zlib before) then AES-GCM encrypted bound to (report, index):
    the body holds identity numbers in plain text, so it is never stored as it came."""

    __tablename__ = "report_chunks"

    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), primary_key=True))
    idx: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ReportError(SQLModel, table=True):
    __tablename__ = "report_errors"

    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), primary_key=True))
    line: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    code: str = Field(sa_column=Column(String(40), nullable=False))
    detail: str = Field(sa_column=Column(Text, nullable=False))


class ReportRef(SQLModel, table=True):
    """The external_refs a snapshot report named, to find what it left out."""

    __tablename__ = "report_refs"

    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), primary_key=True))
    external_ref: str = Field(sa_column=Column(String(200), primary_key=True))
