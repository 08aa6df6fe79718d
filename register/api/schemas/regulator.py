"""Response models of the regulator's desk API (`/v1/regulator/...`). A person appears only as a subject
the access events carry (a monthly pseudonym, hex), never as an identity number."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SignalPublic(BaseModel):
    id: str = Field(description="Stable: the same finding has the same id on every request")
    kind: str = Field(description="many_lenders_24h, lookup_during_ban, overdue_disputes, lookups_without_follow_up")
    institution_id: str | None = Field(default=None, description="The institution the signal is about")
    subject: str | None = Field(default=None, description="The person, as the subject (hex) of the signal's first "
                                                          "event: a pseudonym, never an identity number")
    first_seen: datetime = Field(description="When the condition first held")
    evidence: list[str] = Field(description="Ids of the access events that show it, oldest first (at most 50)")
    evidence_total: int | None = Field(default=None, description="How many such events there are (null: more "
                                                                 "than 50 and not counted)")


class SignalsPublic(BaseModel):
    since: datetime = Field(description="Start of the period looked at (default 30 days back, at most 90)")
    as_of: datetime
    items: list[SignalPublic]
