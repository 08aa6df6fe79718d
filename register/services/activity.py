"""The regulator's figures for one institution (SPEC.md, "Institution activity"): its lookups per day
(granted, refused by reason), per consent, outside office hours and their spikes against its own 28-day
baseline; its disputes; how fresh its reporting is; its lookups while the person's credit ban was on; and
its lookups without follow-up. Counts only: no figure names a person.

`institution_activity` only reads (the desk's pages call it and record their own page view);
`read_activity` is the API's use case, which records the read (`regulator:activity:read`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from register.domain import activity as rules
from register.domain.exposure import STALE_AFTER
from register.domain.permission import Principal
from register.domain.signals import ban_in_force
from register.errors import NotFound
from register.services.events import record_event
from register.storage import activity as store
from register.storage import lookups as lookups_store
from register.storage.institutions import get_institution

DEFAULT_FOLLOW_UP_DAYS = 30  # as REGISTER_FOLLOW_UP_DAYS' default
DEFAULT_REPORT_DEADLINE_DAYS = 2  # as REGISTER_REPORT_DEADLINE_DAYS' default


def _lookups(session: Session, inst_id: str, start: datetime, end: datetime, zone: str) -> dict[str, Any]:
    days = rules.days_of(start, end)
    per_day: dict[date, dict[str, Any]] = {
        d: {"day": d, "granted": 0, "refused": 0, "refused_by_reason": defaultdict(int)} for d in days}
    all_per_day: dict[date, int] = defaultdict(int)  # baseline included, granted and refused
    outside = total = granted = refused = 0
    by_reason: dict[str, int] = defaultdict(int)
    baseline_start = datetime.combine(days[0] - timedelta(days=rules.BASELINE_DAYS), datetime.min.time(), tzinfo=UTC)
    for hour_text, outcome, reason, n in store.lookups_by_hour(session, institution_id=inst_id,
                                                               since=baseline_start, until=end):
        hour = datetime.strptime(hour_text, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        all_per_day[hour.date()] += n
        if hour < start:
            continue
        total += n
        if not rules.in_office_hours(hour, zone):  # all these zones are whole hours off UTC
            outside += n
        day = per_day[hour.date()]
        if outcome == "granted":
            granted += n
            day["granted"] += n
        else:
            refused += n
            day["refused"] += n
            day["refused_by_reason"][reason or "unknown"] += n
            by_reason[reason or "unknown"] += n
    consents = store.consents_of_granted(session, institution_id=inst_id, since=start, until=end)
    # A partial first day is compared as it is: the spike rule looks at whole days only.
    whole = [d for d in days if datetime.combine(d, datetime.min.time(), tzinfo=UTC) >= start
             and datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=UTC) <= end]
    return {
        "total": total, "granted": granted, "refused": refused, "refused_by_reason": dict(by_reason),
        "per_day": [{**v, "refused_by_reason": dict(v["refused_by_reason"])} for v in per_day.values()],
        "consents": consents, "per_consent": round(granted / consents, 2) if consents else None,
        "outside_office_hours": outside, "outside_office_hours_share": rules.share(outside, total),
        "spikes": [{"day": s.day, "lookups": s.lookups, "baseline": s.baseline}
                   for s in rules.spikes(all_per_day, whole)],
    }


def institution_activity(
    session: Session, institution_id: str, start: datetime | None, end: datetime | None, *,
    now: datetime | None = None, follow_up_days: int = DEFAULT_FOLLOW_UP_DAYS,
    report_deadline_days: int = DEFAULT_REPORT_DEADLINE_DAYS,
) -> dict[str, Any]:
    """The figures of one institution for [start, end) (default: the 30 days before now; at most 92 days;
    `InvalidInput` `invalid_range` otherwise; `NotFound` for an unknown institution). Present facts (open
    disputes, stale lines, the last file) are as of `now`. Reads only."""
    now = now or datetime.now(UTC)
    start, end = rules.check_period(start, end, now)
    inst = get_institution(session, institution_id)
    if inst is None:
        raise NotFound("no institution with that id")
    zone = rules.time_zone(inst.country)
    lookups = _lookups(session, inst.id, start, end, zone)
    during_ban = [(event_id, at) for event_id, at, since, until, lift in store.lookups_of_banned(
        session, institution_id=inst.id, since=start, until=end) if ban_in_force(at, since, until, lift)]
    followed = without = pending = 0
    for _, f, w, p in lookups_store.follow_up_counts(session, institution_id=inst.id, start=start, end=end,
                                                     days=follow_up_days,
                                                     decided_before=now - timedelta(days=follow_up_days)):
        followed, without, pending = followed + f, without + w, pending + p
    lookups["during_ban"] = len({e for e, _ in during_ban})
    lookups["follow_up"] = {"days": follow_up_days, "followed_up": int(followed),
                            "without_follow_up": int(without), "pending": int(pending)}
    open_, overdue = store.dispute_counts(session, institution_id=inst.id, now=now)
    answered = store.answered_disputes(session, institution_id=inst.id, since=start, until=end)
    hours = [(closed - opened).total_seconds() / 3600 for opened, closed, _ in answered]
    lines, stale = store.line_counts(session, institution_id=inst.id, stale_before=now - STALE_AFTER)
    last = store.last_report(session, institution_id=inst.id)
    files, failed, lines_read, rejected = store.report_counts(session, institution_id=inst.id, since=start, until=end)
    changes, late = store.change_counts(session, institution_id=inst.id, since=start, until=end,
                                        days=report_deadline_days)
    median = rules.median(hours)
    return {
        "institution": {"id": inst.id, "name": inst.name, "role": inst.role, "country": inst.country},
        "from": start, "to": end, "as_of": now,
        "office_hours": {"time_zone": zone, "weekdays": "Monday-Friday",
                         "start": rules.OFFICE_START.isoformat("minutes"), "end": rules.OFFICE_END.isoformat("minutes")},
        "lookups": lookups,
        "disputes": {"open": open_, "overdue": overdue, "answered": len(answered),
                     "answered_late": sum(1 for _, closed, deadline in answered if closed > deadline),
                     "median_answer_hours": round(median, 2) if median is not None else None},
        "reporting": {
            "lines": lines, "stale_lines": stale, "stale_share": rules.share(stale, lines),
            "stale_after_days": STALE_AFTER.days,
            "last_file": ({"id": last.id, "received_at": last.received_at, "status": last.status,
                           "finished_at": last.finished_at} if last is not None else None),
            "files": int(files), "files_failed": int(failed), "file_error_rate": rules.share(int(failed), int(files)),
            "lines_read": int(lines_read), "lines_rejected": int(rejected),
            "line_error_rate": rules.share(int(rejected), int(lines_read)),
            "changes": int(changes), "late_changes": int(late), "deadline_days": report_deadline_days,
        },
    }


def read_activity(
    session: Session, *, reads: Session | None = None, principal: Principal, institution_id: str,
    start: datetime | None, end: datetime | None, now: datetime, follow_up_days: int, report_deadline_days: int,
    request_id: str | None,
) -> dict[str, Any]:
    """`institution_activity` read in `reads` (a standby's session) when given; the read's access event
    (`regulator:activity:read`) goes to `session`."""
    result = institution_activity(reads or session, institution_id, start, end, now=now,
                                  follow_up_days=follow_up_days, report_deadline_days=report_deadline_days)
    record_event(session, principal=principal, action="regulator:activity:read", now=now, request_id=request_id,
                 details={"institution_id": institution_id, "from": result["from"].isoformat(),
                          "to": result["to"].isoformat()})
    return result
