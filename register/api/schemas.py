"""Response (and non-domain request) models. Request models forbid unknown fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.domain.obligation import CollectsRef, StrictModel
from register.domain.permission import Role
from register.domain.types import CountryCode
from register.services.obligations import ObligationView, VersionView


class InstitutionCreate(StrictModel):
    name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    role: Annotated[Role, Field(description="lender, collector or regulator")]
    org_number: Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)] | None = None
    country: CountryCode | None = None


class InstitutionPublic(BaseModel):
    id: str
    name: str
    role: str
    org_number: str | None = None
    country: str | None = None
    created_at: datetime


class InstitutionCreated(BaseModel):
    id: str
    name: str
    role: str
    token: str = Field(description="Bearer token. Shown once: the register keeps only its hash.")


class InstitutionsPublic(BaseModel):
    items: list[InstitutionPublic]


class DebtorPublic(BaseModel):
    country: str
    role: str
    national_id_masked: str = Field(examples=["19880320-****"])


class ObligationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
        data = {f: getattr(ob, f) for f in cls.model_fields if f not in ("debtors", "collects")}
        data["debtors"] = [DebtorPublic(**vars(d)) for d in view.debtors]
        data["collects"] = (
            CollectsRef(institution_id=ob.collects_institution_id, external_ref=ob.collects_external_ref)
            if ob.collects_institution_id and ob.collects_external_ref
            else None
        )
        return cls(**data)


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
    external_ref: str
    versions: list[ObligationVersionPublic]


class ObligationsPublic(BaseModel):
    items: list[ObligationPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
