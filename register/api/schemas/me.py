"""A signed-in person's own view of their debts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.api.schemas.exposure import (
    CollectionsPublic,
    CreditBanInAnswer,
    CreditorPublic,
    ExposureLinePublic,
    TotalsPublic,
)
from register.api.schemas.obligations import DebtorSubject


class MyCreditorPublic(CreditorPublic):
    phone: str | None = None
    email: str | None = None
    url: str | None = None


class MyDisputeRef(BaseModel):
    id: str
    state: str
    deadline: datetime


class MyLinePublic(ExposureLinePublic):
    creditor: MyCreditorPublic
    dispute: MyDisputeRef | None = Field(default=None, description="My latest dispute on this line, if any")


class MyObligationsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.MY_OBLIGATIONS]})

    subject: DebtorSubject
    as_of: datetime
    credit_ban: CreditBanInAnswer
    totals: dict[str, TotalsPublic]
    by_kind: dict[str, dict[str, TotalsPublic]]
    contingent: dict[str, TotalsPublic]
    collections: CollectionsPublic
    obligations: list[MyLinePublic] = Field(description="Each line's `id` is the one to dispute")


class KeptCreditor(BaseModel):
    id: str
    name: str
    country: str | None = Field(description="The reporting institution's country, whose periods apply")


class KeptLine(BaseModel):
    id: str
    reference: str = Field(description="The creditor's own reference, on their letters")
    kind: str
    status: str
    creditor: KeptCreditor
    retracted: bool
    rule: str | None = Field(description="The retention rule that will delete the line; null while it is live "
                                         "(kept while it is reported)")
    period_started_at: datetime | None = Field(description="When the line ended or was retracted")
    kept_until: datetime | None = Field(description="When its period ends: the next retention run after this "
                                                    "moment deletes it, with every version")


class RulePeriod(BaseModel):
    rule: str
    days: int = Field(description="The period, by default")
    by_country: dict[str, int] = Field(description="Other periods, for the countries of my creditors that have one")


class KeptNotices(BaseModel):
    email: str
    confirmed: bool
    kept_until: datetime | None = Field(description="Set while unconfirmed: the confirmation link's expiry")


class MyRetentionPublic(BaseModel):
    """What the register keeps about me and until when (SPEC.md, "Retention")."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.MY_RETENTION]})

    subject: DebtorSubject
    as_of: datetime
    obligations: list[KeptLine]
    rules: list[RulePeriod]
    run_interval_seconds: int = Field(description="How often the retention job runs")
    notifications: KeptNotices | None = Field(
        default=None, description="My address for notices, if I gave one: kept while notices are on and the "
        "register knows me (deleted when I turn them off or am forgotten); unconfirmed, until `kept_until`")


NoticeEvent = Literal["lookup", "consent", "dispute", "credit_ban"]
EMAIL_PATTERN = (r"^[^@\s<>\"',;()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                 r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


class NotificationsSet(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"email": "anna@example.org", "events": ["lookup"], "digest": "none"}]})

    email: Annotated[StrictStr, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)] = Field(
        description="Where notices go; a new address gets one mail, a link to confirm it, and nothing else until then")
    events: list[NoticeEvent] = Field(default=["lookup"], max_length=4,
                                      description="What to be told of (`lookup` is sent now; the others are kept "
                                      "and sent once the register tells of them)")
    digest: Literal["none", "daily"] = Field(default="none", description="`none`: a mail each; `daily`: one a day")
    language: Literal["en", "sv", "fi", "nb", "pl"] | None = Field(
        default=None, description="The notices' language; unset: the language of the identity number's country")


class NotificationsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"enabled": True, "email": "anna@example.org", "events": ["lookup"], "digest": "none", "language": "sv",
         "confirmed": True, "confirmed_at": "2026-12-04T10:00:00Z", "waiting": 0}]})

    enabled: bool = Field(description="Notices are sent: the address is confirmed")
    email: str | None
    events: list[str]
    digest: str
    language: str | None
    confirmed: bool
    confirmed_at: datetime | None
    waiting: int = Field(description="Notices (and a confirmation) waiting to be sent")
