"""What the register answers, as typed models.

Response models ignore fields they do not know: the register's contract changes only by extension, so
an SDK released before a new field keeps working. Amounts are integers in minor units, as on the wire.
Enumerated values (`kind`, `status`, ...) are plain strings here, so that a value added later is still
read; the request models are where the SDK checks them. A test holds every model to the component
schema of the same name in the register's OpenAPI document.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- institutions --------------------------------------------------------------------------------


class Institution(_Response):
    id: str
    name: str
    role: str
    org_number: str | None = None
    country: str | None = None
    created_at: datetime


class InstitutionCreated(_Response):
    id: str
    name: str
    role: str
    token: str  # shown once: the register keeps only its hash


class InstitutionList(_Response):
    items: list[Institution]


# --- obligations ---------------------------------------------------------------------------------


class MaskedDebtor(_Response):
    country: str
    role: str
    national_id_masked: str


class Subject(_Response):
    country: str
    national_id_masked: str


class CollectsRef(_Response):
    institution_id: str
    external_ref: str


class HandedToRef(_Response):
    """The collection claim that now holds a line, in the word of the line's own creditor."""

    institution_id: str
    external_ref: str


class Obligation(_Response):
    id: str
    external_ref: str
    institution_id: str
    kind: str
    debtors: list[MaskedDebtor]
    currency: str
    original_amount: int | None
    balance: int
    credit_limit: int | None
    monthly_payment: int | None
    interest_rate_bp: int | None
    opened_on: date | None
    matures_on: date | None
    status: str
    overdue_amount: int
    days_past_due: int
    original_creditor: str | None
    collects: CollectsRef | None
    handed_to: HandedToRef | None
    # For a line with `collects`: "confirmed" when the collected line's creditor names it back in `handed_to`
    # (only then is that debt counted once, as this claim), else "unconfirmed"; None when it collects nothing.
    collection_link: str | None
    registration_consent: dict[str, Any]
    as_of: datetime
    version: int
    created_at: datetime
    updated_at: datetime
    retracted_at: datetime | None = None
    retraction_reason: str | None = None
    _etag: str | None = PrivateAttr(default=None)

    @property
    def etag(self) -> str | None:
        """The answer's ETag: pass it as `if_match` to update only if nobody changed it since."""
        return self._etag


class ObligationPage(_Response):
    items: list[Obligation]
    next_cursor: str | None


class ObligationVersion(_Response):
    version: int
    change: str
    institution_id: str
    request_id: str | None
    recorded_at: datetime
    as_of: datetime
    state: dict[str, Any]


class ObligationHistory(_Response):
    external_ref: str
    collection_link: str | None  # the link's state now (see Obligation.collection_link)
    versions: list[ObligationVersion]


# --- batch reports -------------------------------------------------------------------------------


class Report(_Response):
    id: str
    status: str  # receiving, received, processing, done, failed
    mode: str
    format: str
    received_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    bytes: int
    lines_read: int
    accepted: int
    unchanged: int
    rejected: int
    unreported: int
    progress: float  # 0..1, by bytes processed
    lines_per_second: float | None
    elapsed_seconds: float | None
    error: str | None
    _repeated: bool = PrivateAttr(default=False)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def repeated(self) -> bool:
        """True when `upload_report` got the first report back for a repeat of its Idempotency-Key and
        body (HTTP 200): this upload was not applied again. False for a new report, and for `get_report`."""
        return self._repeated


class ReportLineError(_Response):
    """One rejected line of a report (from the NDJSON stream `GET /v1/reports/{id}/errors`)."""

    line: int
    code: str
    detail: str


# --- consents ------------------------------------------------------------------------------------


class Consent(_Response):
    id: str
    institution_id: str
    institution_name: str | None = None
    purpose: str
    source: str  # consumer or attested
    attested: bool
    evidence: dict[str, Any] | None = None
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool
    subject: Subject | None = None


class ConsentList(_Response):
    items: list[Consent]


# --- exposure ------------------------------------------------------------------------------------


class Totals(_Response):
    balance: int
    credit_limit: int
    unused_credit: int
    monthly_payments: int
    overdue_amount: int
    obligations: int
    creditors: int


class Creditor(_Response):
    id: str
    name: str


class ExposureLine(_Response):
    id: str
    creditor: Creditor
    kind: str
    role: str
    joint: bool
    currency: str
    balance: int
    credit_limit: int | None
    monthly_payment: int | None
    overdue_amount: int
    status: str
    days_past_due: int
    as_of: datetime
    stale: bool
    disputed: bool  # a dispute on this line is open (or overdue): the person says it is wrong
    counted: bool
    collects: str | None
    collected_by: str | None
    collection_link: str | None  # "confirmed", "unconfirmed" (both lines count), or None: collects nothing
    statement: str | None = None  # the person's own words on the line, after its creditor upheld their dispute


class Collections(_Response):
    count: int
    amount: dict[str, int]


class Receipt(_Response):
    """The signed promise that the access event will be in the log within `max_merge_delay_seconds`."""

    event_id: str
    leaf_hash: str
    occurred_at: str
    max_merge_delay_seconds: int
    note: str


class CreditBan(_Response):
    """The person's own ban on credit in their name, at the top of every exposure answer. Advisory: the
    data comes all the same, and a lookup made while it is on is logged as such (the regulator sees it)."""

    active: bool
    since: datetime | None = None
    reason: str | None = None  # identity_theft, self_control, other


class StoredAnswer(_Response):
    """An exposure answer as its lender was told it (the receipt aside)."""

    exposure_id: str
    subject: Subject
    as_of: datetime
    purpose: str
    consent_id: str
    consent_source: str
    credit_ban: CreditBan
    totals: dict[str, Totals]  # own debt, per currency
    by_kind: dict[str, dict[str, Totals]]
    contingent: dict[str, Totals]  # guarantees, counted apart
    collections: Collections
    obligations: list[ExposureLine]


class Exposure(StoredAnswer):
    """A lender's answer: what is stored of it, and the receipt for its access event."""

    receipt: Receipt


class ExposureAsOf(_Response):
    """What the register would have answered at `state_as_of`, computed from the versions kept then (no
    consent: the regulator and the person ask so). `as_of` is when this answer was given."""

    subject: Subject
    as_of: datetime
    state_as_of: datetime
    purpose: str
    credit_ban: CreditBan
    totals: dict[str, Totals]
    by_kind: dict[str, dict[str, Totals]]
    contingent: dict[str, Totals]
    collections: Collections
    obligations: list[ExposureLine]
    receipt: Receipt


class MyCreditor(Creditor):
    """A creditor as the person sees it: with how to reach it about the debt."""

    email: str | None = None
    phone: str | None = None
    url: str | None = None


class MyDisputeRef(_Response):
    id: str
    state: str
    deadline: datetime


class MyLine(ExposureLine):
    """One of the person's own lines; its `id` is the one to dispute."""

    creditor: MyCreditor
    dispute: MyDisputeRef | None = None  # the person's latest dispute on it


class MyObligations(_Response):
    subject: Subject
    as_of: datetime
    credit_ban: CreditBan
    totals: dict[str, Totals]
    by_kind: dict[str, dict[str, Totals]]
    contingent: dict[str, Totals]
    collections: Collections
    obligations: list[MyLine]


class KeptCreditor(_Response):
    id: str
    name: str
    country: str | None


class KeptLine(_Response):
    """A line naming me and when it goes: `kept_until` is None while it is live (kept while reported)."""

    id: str
    reference: str
    kind: str
    status: str
    creditor: KeptCreditor
    retracted: bool
    rule: str | None
    period_started_at: datetime | None
    kept_until: datetime | None


class RulePeriod(_Response):
    rule: str
    days: int
    by_country: dict[str, int]


class KeptNotices(_Response):
    """My address for notices as the register keeps it: `kept_until` is set while it is unconfirmed."""

    email: str
    confirmed: bool
    kept_until: datetime | None


class MyRetention(_Response):
    """What the register keeps about me and until when (GET /v1/me/retention)."""

    subject: Subject
    as_of: datetime
    obligations: list[KeptLine]
    rules: list[RulePeriod]
    run_interval_seconds: int
    notifications: KeptNotices | None = None


class Notifications(_Response):
    """How I am told of lookups and changes (GET/PUT/DELETE /v1/me/notifications)."""

    enabled: bool
    email: str | None
    events: list[str]
    digest: str
    language: str | None
    confirmed: bool
    confirmed_at: datetime | None
    waiting: int


# --- disputes ------------------------------------------------------------------------------------


class DisputeCreditor(_Response):
    id: str
    name: str | None


class Dispute(_Response):
    """A person's dispute of one line, as its creditor reads it: their reason and words, and the deadline
    to answer by (`answer_dispute`, or a report naming it in `corrects_dispute`)."""

    id: str
    obligation: str  # the disputed line's id
    creditor: DisputeCreditor
    external_ref: str | None = None  # the creditor's own reference for the line
    reason: str  # not_mine, repaid, wrong_amount, wrong_status, identity_fraud, other
    text: str  # the person's words
    state: str  # open, overdue, corrected, upheld, withdrawn
    opened_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: str | None  # creditor (an answer), report (a corrected report) or person
    explanation: str | None
    statement: str | None
    statement_at: datetime | None

    @property
    def awaiting_answer(self) -> bool:
        """Open or overdue: the creditor still has to answer it."""
        return self.state in ("open", "overdue")


class DisputeList(_Response):
    items: list[Dispute]


class Problem(_Response):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    receipt: Receipt | None = None


# --- the access log ------------------------------------------------------------------------------


class AccessEvent(_Response):
    id: str
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str | None = None
    actor_role: str
    action: str
    purpose: str | None
    consent_id: str | None
    outcome: str
    reason: str | None
    request_id: str | None
    details: dict[str, Any] | None = None
    leaf_index: int | None = None


class AccessEventPage(_Response):
    items: list[AccessEvent]
    next_cursor: str | None = None


class LogKey(_Response):
    origin: str
    vkey: str
    algorithm: str
    public_key: str
    max_merge_delay_seconds: int


class Checkpoint(_Response):
    size: int
    root_hash: str
    timestamp: int
    note: str  # the signed note: trust this (after checking it), not the other fields


class CheckpointList(_Response):
    items: list[Checkpoint]


class InclusionProof(_Response):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyProof(_Response):
    first: int
    second: int
    proof: list[str]


class Leaves(_Response):
    start: int
    end: int
    leaves: list[str]


class EventProof(_Response):
    event_id: str
    leaf_index: int
    leaf: str
    inclusion: InclusionProof
    checkpoint: Checkpoint


# --- regulators: one institution's lookups --------------------------------------------------------


class LookupCounts(_Response):
    granted: int
    refused: int
    refused_by_reason: dict[str, int]  # the refusals' codes
    followed_up: int  # granted, and a change of a line naming the person was reported within follow_up_days
    without_follow_up: int  # granted more than follow_up_days ago, and none came
    pending: int  # granted less than follow_up_days ago, none yet


class LookupsByKind(_Response):
    consumer: LookupCounts  # with a consent the person gave in the register
    attested: LookupCounts  # with a consent the institution recorded itself
    no_consent: LookupCounts  # naming no consent that exists (all refused)


class AttestationCounts(_Response):
    recorded: int
    refused: int
    refused_by_reason: dict[str, int]


class InstitutionRef(_Response):
    id: str
    name: str
    role: str


class InstitutionLookups(_Response):
    institution: InstitutionRef
    first_day: date | None
    last_day: date | None
    follow_up_days: int
    as_of: datetime
    lookups: LookupsByKind
    attestations: AttestationCounts


# --- regulators: signals ----------------------------------------------------------------------


class EvidenceProof(_Response):
    """One evidence event as the log holds it: its leaf (base64 of the event's canonical JSON) and its
    inclusion proof against the answer's checkpoint (check both with `register_verifier.verify_evidence`)."""

    event_id: str
    leaf_index: int
    leaf: str
    inclusion: InclusionProof


class Signal(_Response):
    """Where to look: `kind` (many_lenders_24h, lookup_during_ban, overdue_disputes,
    lookups_without_follow_up, late_reporting, sequential_lookups), the institution or the person (a
    pseudonymous subject, hex) it is about, and the access events that show it (at most 50;
    `evidence_total` counts them, null when not counted); with `proofs=True`, `evidence_proofs`."""

    id: str
    kind: str
    institution_id: str | None = None
    subject: str | None = None
    first_seen: datetime
    evidence: list[str]
    evidence_total: int | None = None
    evidence_proofs: list[EvidenceProof] | None = None


class Signals(_Response):
    since: datetime
    as_of: datetime
    items: list[Signal]
    checkpoint: Checkpoint | None = None  # with proofs=True: the signed checkpoint the proofs lead to


# --- regulators: one institution's activity ---------------------------------------------------------


class ActivityInstitution(_Response):
    id: str
    name: str
    role: str
    country: str | None = None


class OfficeHours(_Response):
    time_zone: str
    weekdays: str
    start: str
    end: str


class LookupDay(_Response):
    day: date  # a UTC day
    granted: int
    refused: int
    refused_by_reason: dict[str, int]


class Spike(_Response):
    day: date
    lookups: int
    baseline: float  # mean lookups per day over the 28 days before


class FollowUp(_Response):
    days: int
    followed_up: int
    without_follow_up: int
    pending: int


class ActivityLookups(_Response):
    total: int
    granted: int
    refused: int
    refused_by_reason: dict[str, int]
    per_day: list[LookupDay]
    consents: int
    per_consent: float | None
    outside_office_hours: int
    outside_office_hours_share: float | None
    spikes: list[Spike]
    during_ban: int
    follow_up: FollowUp


class ActivityDisputes(_Response):
    open: int
    overdue: int
    answered: int
    answered_late: int
    median_answer_hours: float | None


class LastFile(_Response):
    id: str
    received_at: datetime
    status: str
    finished_at: datetime | None = None


class ActivityReporting(_Response):
    lines: int
    stale_lines: int
    stale_share: float | None
    stale_after_days: int
    last_file: LastFile | None
    files: int
    files_failed: int
    file_error_rate: float | None
    lines_read: int
    lines_rejected: int
    line_error_rate: float | None
    changes: int
    late_changes: int
    deadline_days: int


class InstitutionActivity(_Response):
    """One institution's figures for [`from`, `to`) (SPEC.md, "Institution activity"); counts only."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, serialize_by_alias=True)

    institution: ActivityInstitution
    from_: datetime = Field(alias="from")
    to: datetime
    as_of: datetime
    office_hours: OfficeHours
    lookups: ActivityLookups
    disputes: ActivityDisputes
    reporting: ActivityReporting


class StoredExposure(_Response):
    """A stored answer and its proof: `verified` when it hashes to `response_sha256` and its access event
    (`event_id`, leaf `leaf_index`) is in the signed `checkpoint`, as `inclusion` proves."""

    answer: StoredAnswer
    response_sha256: str
    verified: bool
    hash_matches: bool
    event_id: str
    leaf_index: int | None
    checkpoint: Checkpoint | None
    inclusion: InclusionProof | None


# --- public statistics ---------------------------------------------------------------------------


class Cell(_Response):
    """A figure; `value` is None when `suppressed` (it rests on fewer than `min_persons` persons)."""

    value: int | None
    suppressed: bool = False


class LinesRow(_Response):
    country: str | None
    kind: str
    currency: str
    persons: Cell
    lines: Cell
    balance: Cell


class ArrearsRow(_Response):
    country: str | None
    bucket: str
    persons: Cell


class CollectionRow(_Response):
    country: str | None
    persons: Cell
    claims: Cell


class LookupsRow(_Response):
    month: str
    persons: Cell
    granted: Cell
    refused: Cell


class DisputesRow(_Response):
    state: str
    persons: Cell
    disputes: Cell


class Statistics(_Response):
    """The public statistics (GET /v1/statistics)."""

    as_of: datetime
    min_persons: int
    obligations: list[LinesRow]
    arrears: list[ArrearsRow]
    collection: list[CollectionRow]
    lookups: list[LookupsRow]
    disputes: list[DisputesRow]
