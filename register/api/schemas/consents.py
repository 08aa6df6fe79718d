"""Consents: given by a person, attested by an institution, and as answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.api.schemas.obligations import DebtorSubject
from register.domain.consent import Purpose
from register.domain.obligation import (
    StrictModel,
)
from register.domain.types import CountryCode, ShortText, Timestamp, UUIDStr


class ConsentCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSENT_CREATE]})

    institution_id: UUIDStr
    purpose: Purpose
    expires_at: Timestamp = Field(description="At most 90 days ahead")


class ConsentEvidence(StrictModel):
    method: Annotated[StrictStr, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_]+$")] = Field(
        examples=["signed_application"]
    )
    reference: ShortText
    signed_at: Timestamp
    document_sha256: Annotated[StrictStr, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AttestedConsentCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ATTESTED_CONSENT_CREATE]})

    country: CountryCode
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
    purpose: Purpose
    expires_at: Timestamp
    evidence: ConsentEvidence


class ConsentPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSENT]})

    id: str
    institution_id: str
    institution_name: str | None = None
    purpose: str
    source: str = Field(description="consumer (given in the register) or attested (recorded by the institution)")
    attested: bool
    evidence: dict[str, Any] | None = None
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool
    subject: DebtorSubject | None = Field(default=None, description="Shown to institutions, masked")


class ConsentsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSENTS]})

    items: list[ConsentPublic]
