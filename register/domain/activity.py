"""Rules of the regulator's per-institution figures (SPEC.md, "Institution activity"): the period, office
hours, what counts as a spike against the institution's own baseline. Pure: the counts come from
storage.activity, the use case is services.activity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from register.errors import InvalidInput

MAX_PERIOD = timedelta(days=92)  # one request looks at a quarter at most: every statement is bounded by it
DEFAULT_PERIOD = timedelta(days=30)
BASELINE_DAYS = 28  # a day's lookups are compared with the mean of the 28 days before it
SPIKE_FACTOR = 3  # a spike: at least 3 times the baseline...
SPIKE_MIN_EXCESS = 20  # ...and at least 20 lookups above it (a small lender's 1 -> 4 is no spike)
# Office hours: Monday to Friday, 08:00 to 18:00 in the institution's country's time (public holidays count
# as working days: the figure is a ratio to watch over time, not a breach).
OFFICE_START, OFFICE_END = time(8), time(18)
TIME_ZONES = {"SE": "Europe/Stockholm", "FI": "Europe/Helsinki", "NO": "Europe/Oslo", "DK": "Europe/Copenhagen",
              "PL": "Europe/Warsaw"}
DEFAULT_TIME_ZONE = "Europe/Stockholm"


def check_period(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end): `end` defaults to now, `start` to 30 days before `end`; start before end, at most 92 days."""
    end = end or now
    start = start or end - DEFAULT_PERIOD
    if start >= end:
        raise InvalidInput("`from` must be before `to`", code="invalid_range",
                           errors=[{"loc": ["query", "from"], "msg": "not before `to`"}])
    if end - start > MAX_PERIOD:
        raise InvalidInput("the period is at most 92 days", code="invalid_range",
                           errors=[{"loc": ["query", "from"], "msg": "more than 92 days before `to`"}])
    return start, end


def time_zone(country: str | None) -> str:
    return TIME_ZONES.get(country or "", DEFAULT_TIME_ZONE)


def in_office_hours(at: datetime, zone: str) -> bool:
    """Whether a moment (UTC) falls in office hours in `zone`."""
    local = at.astimezone(ZoneInfo(zone))
    return local.weekday() < 5 and OFFICE_START <= local.time() < OFFICE_END


def days_of(start: datetime, end: datetime) -> list[date]:
    """The UTC days that [start, end) touches."""
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Spike:
    day: date
    lookups: int
    baseline: float


def spikes(per_day: Mapping[date, int], days: list[date]) -> list[Spike]:
    """Days among `days` whose lookups reach SPIKE_FACTOR × the mean of the BASELINE_DAYS before them and
    exceed it by SPIKE_MIN_EXCESS; `per_day` holds the counts from BASELINE_DAYS before the first day on
    (a day without lookups is 0)."""
    out = []
    for day in days:
        baseline = sum(per_day.get(day - timedelta(days=i), 0) for i in range(1, BASELINE_DAYS + 1)) / BASELINE_DAYS
        n = per_day.get(day, 0)
        if n >= SPIKE_FACTOR * baseline and n >= baseline + SPIKE_MIN_EXCESS:
            out.append(Spike(day=day, lookups=n, baseline=round(baseline, 2)))
    return out


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
