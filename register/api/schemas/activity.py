"""Response model of the regulator's figures for one institution
(GET /v1/regulator/institutions/{id}/activity, SPEC.md "Institution activity"). Counts only: nothing here
names a person."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from register.api import examples as ex


class ActivityInstitutionPublic(BaseModel):
    id: str
    name: str
    role: str
    country: str | None = None


class OfficeHoursPublic(BaseModel):
    time_zone: str = Field(description="The institution's country's time zone")
    weekdays: str = Field(description="Monday-Friday")
    start: str = Field(description="Local time, inclusive (08:00)")
    end: str = Field(description="Local time, exclusive (18:00)")


class LookupDayPublic(BaseModel):
    day: date = Field(description="A UTC day")
    granted: int
    refused: int
    refused_by_reason: dict[str, int]


class SpikePublic(BaseModel):
    day: date
    lookups: int = Field(description="Lookups that day, granted and refused")
    baseline: float = Field(description="Mean lookups per day over the 28 days before it")


class FollowUpPublic(BaseModel):
    days: int = Field(description="REGISTER_FOLLOW_UP_DAYS")
    followed_up: int
    without_follow_up: int
    pending: int


class ActivityLookupsPublic(BaseModel):
    total: int
    granted: int
    refused: int
    refused_by_reason: dict[str, int]
    per_day: list[LookupDayPublic] = Field(description="Every UTC day the period touches, oldest first")
    consents: int = Field(description="Distinct consents the granted lookups named")
    per_consent: float | None = Field(description="Granted lookups per consent (null: none)")
    outside_office_hours: int
    outside_office_hours_share: float | None = Field(description="Of all lookups (null: none)")
    spikes: list[SpikePublic] = Field(description="Whole days with at least 3 times the 28-day baseline and "
                                                  "at least 20 more")
    during_ban: int = Field(description="Lookups of persons whose credit ban was on at that moment")
    follow_up: FollowUpPublic


class ActivityDisputesPublic(BaseModel):
    open: int = Field(description="Open now")
    overdue: int = Field(description="Open now and past their deadline")
    answered: int = Field(description="Answered by the creditor (its word or a report) in the period")
    answered_late: int = Field(description="Of those, answered after their deadline")
    median_answer_hours: float | None = Field(description="Median hours from opening to answer (null: none)")


class LastFilePublic(BaseModel):
    id: str
    received_at: datetime
    status: str
    finished_at: datetime | None = None


class ActivityReportingPublic(BaseModel):
    lines: int = Field(description="Lines the institution holds now (not retracted)")
    stale_lines: int = Field(description="Of those, with an as_of more than stale_after_days old")
    stale_share: float | None
    stale_after_days: int
    last_file: LastFilePublic | None = Field(description="The newest batch report, whenever it came")
    files: int = Field(description="Batch reports received in the period")
    files_failed: int
    file_error_rate: float | None = Field(description="files_failed / files (null: none)")
    lines_read: int
    lines_rejected: int
    line_error_rate: float | None = Field(description="lines_rejected / lines_read (null: none)")
    changes: int = Field(description="Changes recorded in the period (created, updated, reinstated)")
    late_changes: int = Field(description="Of those, recorded more than deadline_days after their as_of")
    deadline_days: int = Field(description="REGISTER_REPORT_DEADLINE_DAYS")


_ACTIVITY = {
    "institution": {"id": ex.NORDBANK, "name": "Nordbank Oyj", "role": "lender", "country": "FI"},
    "from": "2026-11-04T00:00:00Z", "to": "2026-11-06T00:00:00Z", "as_of": "2026-12-04T09:00:00Z",
    "office_hours": {"time_zone": "Europe/Helsinki", "weekdays": "Monday-Friday", "start": "08:00", "end": "18:00"},
    "lookups": {
        "total": 412, "granted": 398, "refused": 14, "refused_by_reason": {"consent_missing": 12, "quota_exceeded": 2},
        "per_day": [
            {"day": "2026-11-04", "granted": 120, "refused": 4, "refused_by_reason": {"consent_missing": 4}},
            {"day": "2026-11-05", "granted": 278, "refused": 10,
             "refused_by_reason": {"consent_missing": 8, "quota_exceeded": 2}},
        ],
        "consents": 390, "per_consent": 1.02, "outside_office_hours": 37, "outside_office_hours_share": 0.0898,
        "spikes": [{"day": "2026-11-05", "lookups": 288, "baseline": 61.5}], "during_ban": 1,
        "follow_up": {"days": 30, "followed_up": 0, "without_follow_up": 0, "pending": 398},
    },
    "disputes": {"open": 3, "overdue": 1, "answered": 5, "answered_late": 0, "median_answer_hours": 52.5},
    "reporting": {
        "lines": 18204, "stale_lines": 35, "stale_share": 0.0019, "stale_after_days": 35,
        "last_file": {"id": "0b6c2f4e-9a1d-4c3b-8e7f-5a6b7c8d9e0f", "received_at": "2026-12-04T02:00:03Z",
                      "status": "done", "finished_at": "2026-12-04T02:03:41Z"},
        "files": 2, "files_failed": 0, "file_error_rate": 0.0, "lines_read": 36380, "lines_rejected": 4,
        "line_error_rate": 0.0001, "changes": 2210, "late_changes": 12, "deadline_days": 2,
    },
}  # fmt: skip


class InstitutionActivityPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ACTIVITY]}, populate_by_name=True,
                              serialize_by_alias=True)

    institution: ActivityInstitutionPublic
    from_: datetime = Field(alias="from", description="Start of the period, inclusive")
    to: datetime = Field(description="End of the period, exclusive")
    as_of: datetime = Field(description="Open disputes, stale lines and the last file are as of this moment")
    office_hours: OfficeHoursPublic
    lookups: ActivityLookupsPublic
    disputes: ActivityDisputesPublic
    reporting: ActivityReportingPublic
