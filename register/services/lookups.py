"""The regulator's view of one institution's lookups (exposure queries): by kind of consent, granted and
refused, and how many granted ones were never followed by a report naming the person.

A lender that looks at people it never lends to (or reports nothing about) is what harvesting looks like
from outside: with attested consents, which the institution records itself, it alone chooses whose debts
it reads, so the share of its attested lookups without follow-up is the figure to watch.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from register.domain.consent import ConsentSource
from register.domain.permission import Principal
from register.errors import InvalidInput, NotFound
from register.services.events import record_event
from register.storage import lookups as store
from register.storage.institutions import get_institution

NO_CONSENT = "no_consent"  # refused lookups naming no consent that exists
KINDS = (ConsentSource.consumer.value, ConsentSource.attested.value, NO_CONSENT)


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day is not None else None


def institution_lookups(
    session: Session, *, reads: Session | None = None, principal: Principal, institution_id: str,
    first_day: date | None, last_day: date | None,
    follow_up_days: int, now: datetime, request_id: str | None,
) -> dict[str, Any]:
    """Counts for lookups made on [first_day, last_day] (UTC days, both inclusive; open when unset), read in
    `reads` (a standby's session, a moment old) when given; the read's access event goes to `session`."""
    reads = reads or session
    if first_day is not None and last_day is not None and first_day > last_day:
        raise InvalidInput("`from` must not be after `to`", code="invalid_range",
                           errors=[{"loc": ["query", "from"], "msg": "after `to`"}])
    inst = get_institution(reads, institution_id)
    if inst is None:
        raise NotFound("no institution with that id")
    start = _start_of(first_day)
    end = _start_of(last_day + timedelta(days=1)) if last_day is not None and last_day < date.max else None
    kinds: dict[str, dict[str, Any]] = {
        k: {"granted": 0, "refused": 0, "refused_by_reason": defaultdict(int), "followed_up": 0,
            "without_follow_up": 0, "pending": 0} for k in KINDS
    }  # fmt: skip
    for source, outcome, reason, n in store.outcome_counts(reads, institution_id=inst.id, action="exposure:query",
                                                           start=start, end=end):
        counts = kinds[source or NO_CONSENT]
        if outcome == "granted":
            counts["granted"] += n
        else:
            counts["refused"] += n
            counts["refused_by_reason"][reason or "unknown"] += n
    for source, followed, without, pending in store.follow_up_counts(
        reads, institution_id=inst.id, start=start, end=end, days=follow_up_days,
        decided_before=now - timedelta(days=follow_up_days),
    ):
        kinds[source].update(followed_up=followed, without_follow_up=without, pending=pending)
    attestations = {"recorded": 0, "refused": 0, "refused_by_reason": defaultdict(int)}
    for _, outcome, reason, n in store.outcome_counts(reads, institution_id=inst.id, action="consent:attest",
                                                      start=start, end=end):
        if outcome == "refused":
            attestations["refused"] += n
            attestations["refused_by_reason"][reason or "unknown"] += n
        else:
            attestations["recorded"] += n
    record_event(session, principal=principal, action="regulator:lookups:read", now=now, request_id=request_id,
                 details={"institution_id": inst.id, "from": first_day.isoformat() if first_day else None,
                          "to": last_day.isoformat() if last_day else None})
    return {
        "institution": {"id": inst.id, "name": inst.name, "role": inst.role},
        "first_day": first_day, "last_day": last_day, "follow_up_days": follow_up_days, "as_of": now,
        "lookups": {k: {**v, "refused_by_reason": dict(v["refused_by_reason"])} for k, v in kinds.items()},
        "attestations": {**attestations, "refused_by_reason": dict(attestations["refused_by_reason"])},
    }
