"""Response models of the regulator's view of one institution's lookups (GET /v1/audit/institutions/{id}/lookups).

Counts only: nothing here names a person.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from register.api import examples as ex


class LookupCountsPublic(BaseModel):
    granted: int
    refused: int
    refused_by_reason: dict[str, int] = Field(description="Refused lookups by the refusal's code")
    followed_up: int = Field(description="Granted, and the institution recorded a change of a line naming the "
                                         "person within follow_up_days after the lookup")
    without_follow_up: int = Field(description="Granted more than follow_up_days ago, and no such change came")
    pending: int = Field(description="Granted less than follow_up_days ago, and no such change yet")


class LookupsByKindPublic(BaseModel):
    consumer: LookupCountsPublic = Field(description="With a consent the person gave in the register")
    attested: LookupCountsPublic = Field(description="With a consent the institution recorded itself")
    no_consent: LookupCountsPublic = Field(description="Naming no consent that exists (all refused)")


class AttestationCountsPublic(BaseModel):
    recorded: int = Field(description="Attested consents recorded (a repeat of a reference records none)")
    refused: int
    refused_by_reason: dict[str, int] = Field(description="e.g. reference_reused")


class InstitutionRefPublic(BaseModel):
    id: str
    name: str
    role: str


class InstitutionLookupsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_LOOKUPS]})

    institution: InstitutionRefPublic
    first_day: date | None = Field(description="`from`: the first UTC day counted; null: from the start")
    last_day: date | None = Field(description="`to`: the last UTC day counted; null: up to now")
    follow_up_days: int = Field(description="REGISTER_FOLLOW_UP_DAYS")
    as_of: datetime
    lookups: LookupsByKindPublic = Field(description="Exposure queries by the kind of consent they named")
    attestations: AttestationCountsPublic
