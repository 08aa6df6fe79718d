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
