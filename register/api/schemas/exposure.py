"""The exposure query and its answer: totals, lines, collections, the credit ban, the receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.api.schemas.obligations import LINK, DebtorSubject
from register.domain.consent import Purpose
from register.domain.obligation import (
    CollectionLink,
    StrictModel,
)
from register.domain.types import CountryCode, UUIDStr


class ExposureRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPOSURE_REQUEST]})

    country: CountryCode
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
    purpose: Purpose
    consent_id: UUIDStr


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
