"""Disputes and the credit ban: what a person can say about their data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.domain.obligation import (
    StrictModel,
)
from register.domain.types import Timestamp, UUIDStr

DisputeReason = Literal["not_mine", "repaid", "wrong_amount", "wrong_status", "identity_fraud", "other"]
FreeText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]


class DisputeCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.DISPUTE_CREATE]})

    obligation: UUIDStr = Field(description="The line's `id` from GET /v1/me/obligations")
    reason: DisputeReason
    text: FreeText = Field(description="What is wrong, in the person's words; the creditor reads it")


class DisputeAnswer(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.DISPUTE_ANSWER]})

    outcome: Literal["corrected", "upheld"]
    explanation: FreeText = Field(description="Shown to the person: what was corrected, or why the line is right")


class DisputeStatement(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"statement": "I paid this in full in March; "
                                                                            "my bank statement shows it."}]})

    statement: FreeText = Field(description="At most 200 words, shown with the line in later exposure answers")


class DisputeCreditor(BaseModel):
    id: str
    name: str | None


class DisputePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.DISPUTE]})

    id: str
    obligation: str = Field(description="The disputed line's id")
    external_ref: str | None = Field(default=None, description="The creditor's own reference (creditor's view)")
    creditor: DisputeCreditor
    reason: str
    text: str
    state: Literal["open", "overdue", "corrected", "upheld", "withdrawn"]
    opened_at: datetime
    deadline: datetime = Field(description="The creditor must answer by then; an open dispute after it is overdue")
    closed_at: datetime | None
    closed_by: str | None = Field(description="creditor (an answer), report (a corrected report) or person")
    explanation: str | None
    statement: str | None
    statement_at: datetime | None


class DisputesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [ex.DISPUTE]}]})

    items: list[DisputePublic]


class RegulatorDisputePublic(BaseModel):
    id: str
    institution_id: str
    institution_name: str | None
    obligation: str
    reason: str
    state: str
    opened_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: str | None
    late: bool = Field(description="Answered after its deadline, or still open past it")


class DisputeCountsPublic(BaseModel):
    institution_id: str
    name: str | None
    open: int
    overdue: int
    answered: int
    answered_late: int


class RegulatorDisputesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.REGULATOR_DISPUTES]})

    items: list[RegulatorDisputePublic]
    by_institution: list[DisputeCountsPublic] = Field(description="Every creditor's counts, most overdue first")


class CreditBanSet(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "identity_theft"}]})

    reason: Literal["identity_theft", "self_control", "other"]
    until: Timestamp | None = Field(default=None, description="Ends by itself then; unset: until lifted")


class CreditBanPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CREDIT_BAN]})

    active: bool
    since: datetime | None
    reason: str | None
    until: datetime | None
    lift_requested_at: datetime | None
    lift_effective_at: datetime | None = Field(description="When a requested lift takes effect; until then "
                                               "setting the ban again takes the lift back")
