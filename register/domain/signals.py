"""Rules of the regulator's signals (SPEC.md, "Signals"): the windows, thresholds and bounds that turn
access events into a place to look. Pure: the rows come from storage.signals, the use case is
services.signals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from register.errors import InvalidInput


class SignalKind(StrEnum):
    lookup_during_ban = "lookup_during_ban"
    late_reporting = "late_reporting"
    lookups_without_follow_up = "lookups_without_follow_up"
    many_lenders_24h = "many_lenders_24h"
    overdue_disputes = "overdue_disputes"
    sequential_lookups = "sequential_lookups"


MAX_SINCE = timedelta(days=90)  # how far back one request may look: every query below is bounded by it
DEFAULT_SINCE = timedelta(days=30)
MANY_LENDERS_WINDOW = timedelta(hours=24)
MANY_LENDERS_MIN = 3  # distinct lenders granted a lookup of one person within the window
WITHOUT_FOLLOW_UP_MIN = 20  # granted lookups without follow-up, at least...
WITHOUT_FOLLOW_UP_SHARE = 0.5  # ...and at least this share of the institution's decided granted lookups
SEQUENTIAL_WINDOW = timedelta(hours=24)
SEQUENTIAL_MIN = 5  # lookups flagged sequential (services.sequential) by one institution within the window
EVIDENCE_LIMIT = 50  # event ids one signal lists; `evidence_total` says how many there were
_NAMESPACE = uuid.UUID("6f0b1c9e-5d2a-4c4e-9a57-0d8f3c2b7e11")


def check_since(since: datetime | None, now: datetime) -> datetime:
    """The start of the period: 30 days back when unset; not before 90 days back, not in the future."""
    if since is None:
        return now - DEFAULT_SINCE
    if since < now - MAX_SINCE or since > now:
        raise InvalidInput("`since` must be within the last 90 days", code="invalid_range",
                           errors=[{"loc": ["query", "since"], "msg": "older than 90 days or in the future"}])
    return since


def signal_id(kind: str, key: str, first_seen: datetime) -> str:
    """Stable across requests: the same finding has the same id each time it is computed."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}|{key}|{first_seen.isoformat()}"))


@dataclass(frozen=True, slots=True)
class Lookup:
    at: datetime
    asker: str
    event_id: str


def many_lenders(lookups: Sequence[Lookup]) -> tuple[datetime, list[str]] | None:
    """For one person's granted lookups: when `MANY_LENDERS_MIN` distinct lenders had first looked within
    one `MANY_LENDERS_WINDOW`, and the events of every such window; None when that never happened."""
    ordered = sorted(lookups, key=lambda x: (x.at, x.event_id))
    left, first_seen, evidence = 0, None, {}
    for right, cur in enumerate(ordered):
        while cur.at - ordered[left].at >= MANY_LENDERS_WINDOW:
            left += 1
        window = ordered[left : right + 1]
        if len({x.asker for x in window}) >= MANY_LENDERS_MIN:
            first_seen = first_seen or cur.at
            evidence.update((x.event_id, x.at) for x in window)
    if first_seen is None:
        return None
    return first_seen, [e for e, _ in sorted(evidence.items(), key=lambda kv: (kv[1], kv[0]))]


def ban_in_force(at: datetime, since: datetime, until: datetime | None, lift_effective_at: datetime | None) -> bool:
    """Whether a credit ban was on at `at` (SPEC.md, "Credit ban": a lift takes effect at lift_effective_at)."""
    return since <= at and (until is None or at < until) and (lift_effective_at is None or at < lift_effective_at)


def harvesting(without_follow_up: int, decided: int) -> bool:
    """An institution's granted lookups whose follow-up window has passed (`decided`): too many had none."""
    return without_follow_up >= WITHOUT_FOLLOW_UP_MIN and without_follow_up >= WITHOUT_FOLLOW_UP_SHARE * decided


def sequential_scan(flagged: Sequence[Lookup]) -> tuple[datetime, list[str]] | None:
    """For one institution's lookups flagged sequential: when `SEQUENTIAL_MIN` of them first fell within
    one `SEQUENTIAL_WINDOW`, and the events of every such window; None when that never happened."""
    ordered = sorted(flagged, key=lambda x: (x.at, x.event_id))
    left, first_seen, evidence = 0, None, {}
    for right, cur in enumerate(ordered):
        while cur.at - ordered[left].at >= SEQUENTIAL_WINDOW:
            left += 1
        if right - left + 1 >= SEQUENTIAL_MIN:
            first_seen = first_seen or cur.at
            evidence.update((x.event_id, x.at) for x in ordered[left : right + 1])
    if first_seen is None:
        return None
    return first_seen, [e for e, _ in sorted(evidence.items(), key=lambda kv: (kv[1], kv[0]))]
