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


class MyRetentionPublic(BaseModel):
    """What the register keeps about me and until when (SPEC.md, "Retention")."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.MY_RETENTION]})

    subject: DebtorSubject
    as_of: datetime
    obligations: list[KeptLine]
    rules: list[RulePeriod]
    run_interval_seconds: int = Field(description="How often the retention job runs")
