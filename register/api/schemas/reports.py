"""Batch reports as answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from register.api import examples as ex


class ReportPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.REPORT]})

    id: str
    status: str = Field(description="receiving, received, processing, done, failed or expired")
    mode: str
    format: str
    received_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    bytes: int
    lines_read: int
    accepted: int = Field(description="Lines that created or changed an obligation")
    unchanged: int = Field(description="Lines identical to what was stored (idempotent repeats)")
    rejected: int = Field(description="Lines refused; see /errors")
    unreported: int = Field(description="Snapshot mode: obligations missing from the file, now no longer reported")
    progress: float = Field(description="0..1, by bytes processed")
    lines_per_second: float | None
    elapsed_seconds: float | None
    error: str | None
