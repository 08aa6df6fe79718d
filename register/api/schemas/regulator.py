"""Response models of the regulator's desk API (`/v1/regulator/...`). A person appears only as a subject
the access events carry (a monthly pseudonym, hex), never as an identity number."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from register.api import examples as ex
from register.api.schemas.audit import CheckpointPublic, InclusionProofPublic


class EvidenceProofPublic(BaseModel):
    event_id: str
    leaf_index: int
    leaf: str = Field(description="base64 of the leaf bytes: the canonical JSON of the event")
    inclusion: InclusionProofPublic = Field(description="Against the answer's `checkpoint`")


class SignalPublic(BaseModel):
    id: str = Field(description="Stable: the same finding has the same id on every request")
    kind: str = Field(description="many_lenders_24h, lookup_during_ban, overdue_disputes, "
                                  "lookups_without_follow_up, late_reporting, sequential_lookups")
    institution_id: str | None = Field(default=None, description="The institution the signal is about")
    subject: str | None = Field(default=None, description="The person, as the subject (hex) of the signal's first "
                                                          "event: a pseudonym, never an identity number")
    first_seen: datetime = Field(description="When the condition first held")
    evidence: list[str] = Field(description="Ids of the access events that show it, oldest first (at most 50)")
    evidence_total: int | None = Field(default=None, description="How many such events there are (null: more "
                                                                 "than 50 and not counted)")
    evidence_proofs: list[EvidenceProofPublic] | None = Field(
        default=None, description="With `?proofs=true`: each evidence event in the log's `checkpoint`, as its "
                                  "leaf and inclusion proof (an event not yet integrated has none)")


_SIGNALS = {"since": "2026-11-04T09:00:00Z", "as_of": "2026-12-04T09:00:00Z", "items": [
    {"id": "2b0f6c1e-8d4a-5e3b-9c7f-1a2d3e4f5a6b", "kind": "many_lenders_24h", "institution_id": None,
     "subject": "9f3a" + "0" * 60, "first_seen": "2026-12-01T14:02:11Z",
     "evidence": [ex.EVENT_ID, "f2e3d4c5-b6a7-4890-9bcd-ef0123456789", "a3b4c5d6-e7f8-4901-8abc-0123456789ab"],
     "evidence_total": 3},
    {"id": "6c5d4e3f-2a1b-5c0d-8e9f-0a1b2c3d4e5f", "kind": "overdue_disputes", "institution_id": ex.NORDBANK,
     "subject": None, "first_seen": "2026-11-30T10:00:00Z", "evidence": [ex.EVENT_ID], "evidence_total": 1},
]}


class SignalsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SIGNALS]})

    since: datetime = Field(description="Start of the period looked at (default 30 days back, at most 90)")
    as_of: datetime
    items: list[SignalPublic]
    checkpoint: CheckpointPublic | None = Field(
        default=None, description="With `?proofs=true`: the latest signed checkpoint the evidence is proved against "
                                  "(null before the first)")
