"""The access log: events, searches, checkpoints, proofs and leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.domain.obligation import (
    StrictModel,
)
from register.domain.types import CountryCode, Timestamp, UUIDStr


class AccessEventPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_EVENT]})

    id: str
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str | None = None
    actor_role: str
    action: str
    purpose: str | None
    consent_id: str | None
    outcome: str = Field(description="granted or refused for queries, ok for other actions")
    reason: str | None = Field(description="The refusal's code")
    request_id: str | None
    details: dict[str, Any] | None = None
    leaf_index: int | None = Field(default=None, description="Its place in the verifiable log, once integrated")


class AccessEventsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_EVENTS]})

    items: list[AccessEventPublic]
    next_cursor: str | None = None


class EventSearch(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EVENT_SEARCH]})

    country: CountryCode
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
    institution_id: UUIDStr | None = None
    action: Annotated[StrictStr, StringConstraints(max_length=60)] | None = None
    outcome: Annotated[StrictStr, StringConstraints(max_length=20)] | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None
    cursor: Annotated[StrictStr, StringConstraints(max_length=512)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000, strict=True)] = 100


# --- the transparency log ------------------------------------------------------------------------


class LogKeyPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.LOG_KEY]})

    origin: str
    vkey: str = Field(description="C2SP verifier key: <origin>+<key id hex>+<base64(0x01 || public key)>")
    algorithm: str
    public_key: str = Field(description="base64 Ed25519 public key")
    max_merge_delay_seconds: int


class LogKeyVersionPublic(BaseModel):
    vkey: str = Field(description="C2SP verifier key of this key")
    state: Literal["active", "retired"] = Field(description="active signs now; retired signed before its successor")
    from_size: int = Field(description="The tree size from which this key signs checkpoints")
    handover: str | None = Field(description="The signed note by which the previous key handed over to this one "
                                             "(SPEC.md section 4, Log-key handover); null for the log's first key")


class LogKeysPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.LOG_KEYS]})

    origin: str
    active: str = Field(description="The verifier key that signs now")
    keys: list[LogKeyVersionPublic] = Field(description="Every key the log has signed with, first to active")


class CheckpointPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CHECKPOINT]})

    size: int
    root_hash: str = Field(description="base64")
    timestamp: int = Field(description="Unix seconds")
    note: str = Field(description="The signed checkpoint (C2SP signed note); trust this, not the other fields")


class CheckpointsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CHECKPOINTS]})

    items: list[CheckpointPublic]


class InclusionProofPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INCLUSION_PROOF]})

    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyProofPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSISTENCY_PROOF]})

    first: int
    second: int
    proof: list[str]


class LeavesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.LEAVES]})

    start: int
    end: int = Field(description="Exclusive; may be less than asked")
    leaves: list[str] = Field(description="base64 of each leaf's canonical bytes")


class EventProofPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EVENT_PROOF]})

    event_id: str
    leaf_index: int
    leaf: str = Field(description="base64 of the leaf bytes: the canonical JSON of the event")
    inclusion: InclusionProofPublic
    checkpoint: CheckpointPublic
