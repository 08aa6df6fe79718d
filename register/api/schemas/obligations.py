"""Obligations as answers: the line, its debtors, its versions, pages of them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from register.api import examples as ex
from register.domain.obligation import (
    CollectionLink,
    CollectsRef,
    HandedToRef,
)
from register.services.obligations import ObligationView, VersionView

LINK = ("For a line with `collects`: confirmed when the collected line's creditor names this claim back in "
        "`handed_to` (only then is that debt counted once, as the claim), else unconfirmed (both lines count). "
        "Null for a line that collects nothing")


class DebtorSubject(BaseModel):
    country: str
    national_id_masked: str = Field(examples=["19880320-****"])


class DebtorPublic(BaseModel):
    country: str
    role: str
    national_id_masked: str = Field(examples=["19880320-****"])


class ObligationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [ex.OBLIGATION]})

    id: str
    external_ref: str
    institution_id: str
    kind: str
    debtors: list[DebtorPublic]
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
    handed_to: HandedToRef | None = Field(description="The claim that now holds this debt, in its creditor's word")
    collection_link: CollectionLink | None = Field(description=LINK)
    registration_consent: dict[str, Any]
    as_of: datetime
    version: int
    created_at: datetime
    updated_at: datetime
    retracted_at: datetime | None = None
    retraction_reason: str | None = None

    @classmethod
    def of(cls, view: ObligationView) -> ObligationPublic:
        ob = view.obligation
        data = {f: getattr(ob, f) for f in cls.model_fields
                if f not in ("debtors", "collects", "handed_to", "collection_link")}
        data["debtors"] = [DebtorPublic(**vars(d)) for d in view.debtors]
        data["collects"] = (
            CollectsRef(institution_id=ob.collects_institution_id, external_ref=ob.collects_external_ref)
            if ob.collects_institution_id and ob.collects_external_ref
            else None
        )
        data["handed_to"] = (
            HandedToRef(institution_id=ob.handed_to_institution_id, external_ref=ob.handed_to_external_ref)
            if ob.handed_to_institution_id and ob.handed_to_external_ref
            else None
        )
        return cls(**data, collection_link=view.collection_link)


class ObligationVersionPublic(BaseModel):
    version: int
    change: str = Field(description="created, updated, reinstated or retracted")
    institution_id: str
    request_id: str | None
    recorded_at: datetime
    as_of: datetime
    state: dict[str, Any] = Field(description="The whole reported state after this change; debtors masked")

    @classmethod
    def of(cls, view: VersionView) -> ObligationVersionPublic:
        v = view.version
        state = {**v.state, "debtors": [vars(d) for d in view.debtors]}
        return cls(
            version=v.version, change=v.change, institution_id=v.institution_id, request_id=v.request_id,
            recorded_at=v.recorded_at, as_of=v.as_of, state=state,
        )


class ObligationHistory(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.OBLIGATION_HISTORY]})

    external_ref: str
    collection_link: CollectionLink | None = Field(description=LINK + " (its state now)")
    versions: list[ObligationVersionPublic]


class ObligationsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.OBLIGATIONS]})

    items: list[ObligationPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
