"""The exposure query and its answer: totals, lines, collections, the credit ban, the receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.api.schemas.audit import CheckpointPublic, InclusionProofPublic
from register.api.schemas.obligations import LINK, DebtorSubject
from register.domain.as_of import ReviewPurpose
from register.domain.consent import Purpose
from register.domain.obligation import (
    CollectionLink,
    StrictModel,
)
from register.domain.types import CountryCode, Timestamp, UUIDStr


class ExposureRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPOSURE_REQUEST, ex.EXPOSURE_AS_OF_REQUEST]})

    country: CountryCode
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
    # left_to_right: a lender's purpose is found by the first member, as fast as with Purpose alone (the
    # default smart mode tried both: the body's parse took about twice as long). Which purpose goes with
    # which question is checked by the route, not here: a validator would run on every lender's request.
    purpose: Purpose | ReviewPurpose = Field(union_mode="left_to_right", description="A lender's purpose, which "
                                             "its consent names; or, with `as_of`, complaint or supervision")
    consent_id: UUIDStr | None = Field(default=None, description="Required, except with `as_of` (then absent)")
    as_of: Timestamp | None = Field(default=None, description="The regulator and the person only: answer as the "
                                    "register stood at this moment (the answer's `state_as_of`), from the versions "
                                    "still kept. Never for a lender or a collector (403 as_of_not_allowed)")


class TotalsPublic(BaseModel):
    balance: int
    credit_limit: int
    unused_credit: int
    monthly_payments: int
    overdue_amount: int
    obligations: int
    creditors: int


class CreditorPublic(BaseModel):
    id: str
    name: str


class ExposureLinePublic(BaseModel):
    id: str = Field(description="Opaque id of the obligation line")
    creditor: CreditorPublic
    kind: str
    role: str = Field(description="This person's role: primary, co_debtor or guarantor")
    joint: bool = Field(description="More than one person owes it")
    currency: str
    balance: int
    credit_limit: int | None
    monthly_payment: int | None
    overdue_amount: int
    status: str
    days_past_due: int
    as_of: datetime
    stale: bool = Field(description="Not updated for more than 35 days")
    disputed: bool = Field(description="A dispute on this line is open: the person says it is wrong")
    statement: str | None = Field(default=None, description="The person's own statement (at most 200 words) "
                                  "on this line, after its creditor upheld their dispute")
    counted: bool = Field(description="False when a collection claim with a confirmed link counts this debt, "
                                      "or it is closed")
    collects: str | None = Field(description="For a collection claim: the id of the line it names in `collects`, "
                                             "when that line is in this answer")
    collected_by: str | None = Field(description="The id of the collection claim that counts this debt")
    collection_link: CollectionLink | None = Field(description=LINK)


class CollectionsPublic(BaseModel):
    count: int
    amount: dict[str, int]


class CreditBanInAnswer(BaseModel):
    active: bool
    since: datetime | None = None
    reason: str | None = None


class ExposurePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPOSURE]})

    exposure_id: str = Field(description="Identifies exactly this answer, kept for complaints")
    subject: DebtorSubject
    as_of: datetime
    purpose: str
    consent_id: str
    consent_source: str
    credit_ban: CreditBanInAnswer = Field(description="The person's own credit ban. Advisory: the data is given "
                                          "all the same, and a lookup made while it is on is logged as such")
    totals: dict[str, TotalsPublic] = Field(description="Own debt per currency (primary and co-debtor)")
    by_kind: dict[str, dict[str, TotalsPublic]]
    contingent: dict[str, TotalsPublic] = Field(description="Guarantees, counted apart from own debt")
    collections: CollectionsPublic
    obligations: list[ExposureLinePublic]
    receipt: ReceiptPublic


class ExposureAsOfPublic(BaseModel):
    """What the register would have answered at `state_as_of`, computed now from the versions kept then.
    Not a stored answer (no `exposure_id`, no consent): the question is an access event, like any."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPOSURE_AS_OF]})

    subject: DebtorSubject
    as_of: datetime = Field(description="When this answer was given")
    state_as_of: datetime = Field(description="The moment asked about: the register as it stood then")
    purpose: str = Field(description="complaint or supervision")
    credit_ban: CreditBanInAnswer = Field(description="The person's credit ban as it stood at `state_as_of`")
    totals: dict[str, TotalsPublic]
    by_kind: dict[str, dict[str, TotalsPublic]]
    contingent: dict[str, TotalsPublic]
    collections: CollectionsPublic
    obligations: list[ExposureLinePublic]
    receipt: ReceiptPublic


class StoredAnswerPublic(BaseModel):
    """An ExposurePublic as stored: without its receipt, which was added after the answer's hash was taken."""

    exposure_id: str
    subject: DebtorSubject
    as_of: datetime
    purpose: str
    consent_id: str
    consent_source: str
    credit_ban: CreditBanInAnswer
    totals: dict[str, TotalsPublic]
    by_kind: dict[str, dict[str, TotalsPublic]]
    contingent: dict[str, TotalsPublic]
    collections: CollectionsPublic
    obligations: list[ExposureLinePublic]


class StoredExposurePublic(BaseModel):
    """A stored answer, exactly as its lender was told it (the receipt aside), and its proof."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.STORED_EXPOSURE]})

    answer: StoredAnswerPublic = Field(description="The answer as stored (canonical JSON), without the receipt, "
                                       "which was added after its hash was taken")
    response_sha256: str = Field(description="SHA-256 (hex) of the answer's canonical JSON, kept when it was given")
    verified: bool = Field(description="True when the stored answer hashes to `response_sha256` and its access "
                           "event is a leaf of the signed checkpoint below (then `inclusion` proves it)")
    hash_matches: bool = Field(description="The stored answer hashes to `response_sha256`")
    event_id: str = Field(description="The access event of the answer (`exposure:query`)")
    leaf_index: int | None = Field(description="That event's leaf in the log; null until integrated")
    checkpoint: CheckpointPublic | None = Field(description="The latest signed checkpoint, which includes the leaf")
    inclusion: InclusionProofPublic | None = Field(description="The leaf's inclusion proof against `checkpoint`")


class ReceiptPublic(BaseModel):
    """A signed promise, like a certificate transparency SCT, that the access event will be in the log
    within `max_merge_delay_seconds`. Whoever holds it can ask for its inclusion proof by leaf hash."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.RECEIPT]})

    event_id: str
    leaf_hash: str = Field(description="base64 SHA-256 leaf hash of the event")
    occurred_at: str
    max_merge_delay_seconds: int
    note: str = Field(description="Signed note (log key) over the lines: origin/receipt, event_id, leaf_hash, "
                                  "Timestamp: <unix s>, Max-Merge-Delay: <s>")
