"""What institutions send, as strict models: an unknown field, a float amount or a time without an
offset fails here, before the request is made, as the register would refuse it anyway.

Datetimes must carry an offset (`AwareDatetime`); dates and times may be given as objects or as ISO
strings. The register still validates everything (identity numbers, cross-field rules): these models
catch what can be caught without it.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
)

Kind = Literal[
    "buy_now_pay_later", "collection_claim", "credit_card", "instalment_loan", "mortgage", "other", "overdraft",
    "revolving_credit", "student_loan", "vehicle_loan",
]
Status = Literal["closed", "current", "enforcement", "in_collection", "overdue", "payment_plan", "written_off"]
DebtorRole = Literal["co_debtor", "guarantor", "primary"]
Purpose = Literal["credit_application", "credit_limit_review", "debt_restructuring"]
ReviewPurpose = Literal["complaint", "supervision"]  # an answer as of a past moment
InstitutionRole = Literal["admin", "collector", "consumer", "lender", "regulator"]
DisputeState = Literal["open", "overdue", "corrected", "upheld", "withdrawn"]  # `open` includes overdue
DisputeOutcome = Literal["corrected", "upheld"]

Money = Annotated[StrictInt, Field(ge=0, le=10**15)]
Country = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Z]{2}$")]
NationalIdText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
ShortText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200)]
ExternalRef = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")]
Method = Annotated[StrictStr, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_]+$")]


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))  # the register takes the canonical lower-case form only
    except ValueError:
        raise ValueError("must be a UUID") from None  # pydantic's message: "Value error, must be a UUID"


UUIDText = Annotated[StrictStr, AfterValidator(_uuid)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON body: absent optional fields are left out rather than sent as null."""
        return self.model_dump(mode="json", exclude_none=True)


class Debtor(_Request):
    country: Country
    national_id: NationalIdText
    role: DebtorRole


class Collects(_Request):
    """The obligation a collection claim collects, as its original reporter knows it."""

    institution_id: StrictStr
    external_ref: ExternalRef


class HandedTo(_Request):
    """The collection claim that now holds this debt, as its collector knows it: the creditor's side of the
    link (a claim counts the debt once only when each names the other)."""

    institution_id: StrictStr
    external_ref: ExternalRef


class RegistrationConsent(_Request):
    reference: ShortText
    given_at: AwareDatetime
    method: Method


class ObligationReport(_Request):
    """The state of one debt at `as_of`: the body of `PUT /v1/obligations/{external_ref}`."""

    kind: Kind
    debtors: list[Debtor] = Field(min_length=1, max_length=10)
    currency: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Z]{3}$")]
    original_amount: Money | None = None
    balance: Money
    credit_limit: Money | None = None
    monthly_payment: Money | None = None
    interest_rate_bp: Annotated[StrictInt, Field(ge=0, le=100_000)] | None = None
    opened_on: date | None = None
    matures_on: date | None = None
    status: Status
    overdue_amount: Money = 0
    days_past_due: Annotated[StrictInt, Field(ge=0, le=100_000)] = 0
    original_creditor: ShortText | None = None
    collects: Collects | None = None  # collectors only (403 collector_only otherwise)
    handed_to: HandedTo | None = None
    registration_consent: RegistrationConsent
    as_of: AwareDatetime
    # An open dispute on this line that this report corrects: when the report changes the line, the
    # dispute closes as corrected. Not part of the line's state; a wrong id is refused (DisputeNotFound).
    corrects_dispute: UUIDText | None = None


class ReportLine(ObligationReport):
    """One line of an NDJSON batch report: a report plus the obligation's `external_ref`."""

    external_ref: ExternalRef


class ConsentGrant(_Request):
    """A person's consent, given in the register (`POST /v1/consents`, consumers only)."""

    institution_id: UUIDText
    purpose: Purpose
    expires_at: AwareDatetime


class ConsentEvidence(_Request):
    method: Method
    reference: ShortText
    signed_at: AwareDatetime
    document_sha256: Annotated[StrictStr, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AttestedConsent(_Request):
    """A consent the institution collected itself, with its evidence (`POST /v1/consents/attested`)."""

    country: Country
    national_id: NationalIdText
    purpose: Purpose
    expires_at: AwareDatetime
    evidence: ConsentEvidence


class ExposureQuery(_Request):
    """A lender's question (a purpose and its consent), or the regulator's or the person's about a past
    moment (`as_of`, purpose complaint or supervision, no consent)."""

    country: Country
    national_id: NationalIdText
    purpose: Purpose | ReviewPurpose
    consent_id: UUIDText | None = None
    as_of: AwareDatetime | None = None


class EventSearch(_Request):
    """A regulator's search of the access log for one person (`POST /v1/audit/events/search`)."""

    country: Country
    national_id: NationalIdText
    institution_id: UUIDText | None = None
    action: Annotated[StrictStr, StringConstraints(max_length=60)] | None = None
    outcome: Annotated[StrictStr, StringConstraints(max_length=20)] | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    cursor: Annotated[StrictStr, StringConstraints(max_length=512)] | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=1000)] = 100


EMAIL, PHONE = r"^[^@\s]+@[^@\s]+$", r"^\+?[0-9 ()-]+$"


class Contact(_Request):
    """How a person reaches an institution about a debt (shown on the person's pages)."""

    email: Annotated[StrictStr, StringConstraints(min_length=3, max_length=200, pattern=EMAIL)] | None = None
    phone: Annotated[StrictStr, StringConstraints(min_length=3, max_length=40, pattern=PHONE)] | None = None
    url: Annotated[StrictStr, StringConstraints(max_length=300, pattern=r"^https://\S+$")] | None = None


class InstitutionCreate(_Request):
    """A new lender, collector or regulator (`POST /v1/institutions`, the operator only)."""

    name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=200)]
    role: InstitutionRole
    org_number: Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)] | None = None
    country: Country | None = None
    contact: Contact | None = None


class DisputeAnswer(_Request):
    """A creditor's answer to a dispute (`POST /v1/disputes/{id}/answer`): `corrected` (and report the
    corrected line too) or `upheld`; the person reads `explanation`."""

    outcome: DisputeOutcome
    explanation: Annotated[StrictStr, StringConstraints(min_length=1, max_length=4000)]


NoticeEvent = Literal["lookup", "consent", "dispute", "credit_ban"]


class NotificationsSet(_Request):
    """How I want to be told (`PUT /v1/me/notifications`): a new address gets one mail, a link to confirm it,
    and nothing else until it is confirmed on the register's page."""

    email: Annotated[StrictStr, StringConstraints(min_length=3, max_length=254)]
    events: list[NoticeEvent] = Field(default_factory=lambda: ["lookup"], max_length=4)
    digest: Literal["none", "daily"] = "none"
    language: Literal["en", "sv", "fi", "nb", "pl"] | None = None
