"""The regulator's signals (SPEC.md, "Signals"): where to look, each with the access events that show it.

Computed on request from the database (bounded: at most 90 days back, and a LIMIT on every statement),
through the request's session, so the read and its own access event (`regulator:signals:read`) share one
transaction. A person appears only as a subject the events carry (a monthly pseudonym), never as an
identity number or a blind index.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from register.domain import signals as rules
from register.domain.permission import Principal
from register.domain.signals import EVIDENCE_LIMIT, Lookup, SignalKind
from register.services.events import record_event
from register.services.evidence import evidence_proofs
from register.storage import signals as store


def _signal(kind: SignalKind, key: str, first_seen: datetime, evidence: list[str], *,
            institution_id: str | None = None, subject: bytes | None = None) -> dict[str, Any]:
    return {"id": rules.signal_id(kind.value, key, first_seen), "kind": kind.value, "institution_id": institution_id,
            "subject": subject.hex() if subject is not None else None, "first_seen": first_seen,
            "evidence": evidence[:EVIDENCE_LIMIT], "evidence_total": len(evidence)}


def _many_lenders(session: Session, since: datetime, now: datetime, **_: Any) -> list[dict[str, Any]]:
    by_person: dict[bytes, list[tuple[bytes, Lookup]]] = defaultdict(list)
    for blind, subject, at, asker, event_id in store.granted_lookups_of_many_lenders(
            session, since=since, until=now, lenders=rules.MANY_LENDERS_MIN):
        by_person[bytes(blind)].append((bytes(subject), Lookup(at=at, asker=asker or "", event_id=event_id)))
    out = []
    for rows in by_person.values():
        found = rules.many_lenders([lookup for _, lookup in rows])
        if found is not None:
            first_seen, evidence = found
            subject = min(rows, key=lambda r: (r[1].at, r[1].event_id))[0]  # the first event's: opaque, no index
            out.append(_signal(SignalKind.many_lenders_24h, subject.hex(), first_seen, evidence, subject=subject))
    return out


def _during_ban(session: Session, since: datetime, now: datetime, **_: Any) -> list[dict[str, Any]]:
    found: dict[tuple[str, bytes], dict[str, datetime]] = defaultdict(dict)
    for subject, at, asker, event_id, ban_since, until, lift in store.lookups_of_banned(session, since=since, until=now):
        if rules.ban_in_force(at, ban_since, until, lift):
            found[(asker or "", bytes(subject))][event_id] = at
    out = []
    for (asker, subject), events in found.items():
        ordered = sorted(events, key=lambda e: (events[e], e))
        out.append(_signal(SignalKind.lookup_during_ban, f"{asker}|{subject.hex()}", events[ordered[0]], ordered,
                           institution_id=asker or None, subject=subject))
    return out


def _overdue_disputes(session: Session, since: datetime, now: datetime, **_: Any) -> list[dict[str, Any]]:
    by_creditor: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for creditor, dispute_id, deadline in store.overdue_disputes(session, now=now):
        by_creditor[creditor].append((dispute_id, deadline))
    out = []
    for creditor, disputes in by_creditor.items():
        first_deadline = min(d for _, d in disputes)
        # A dispute's events start when it is opened, at most the longest dispute period before its deadline.
        evidence = store.dispute_event_ids(session, dispute_ids=[i for i, _ in disputes],
                                           since=first_deadline - timedelta(days=366), limit=EVIDENCE_LIMIT + 1)
        sig = _signal(SignalKind.overdue_disputes, creditor, first_deadline, evidence, institution_id=creditor)
        sig["evidence_total"] = len(evidence) if len(evidence) <= EVIDENCE_LIMIT else None
        out.append(sig)
    return out


def _without_follow_up(session: Session, since: datetime, now: datetime, *, follow_up_days: int,
                       **_: Any) -> list[dict[str, Any]]:
    decided_before = now - timedelta(days=follow_up_days)
    out = []
    for institution_id, decided, without in store.follow_up_by_institution(
            session, since=since, decided_before=decided_before, days=follow_up_days):
        if not rules.harvesting(int(without), int(decided)):
            continue
        sample = store.without_follow_up_sample(session, institution_id=institution_id, since=since,
                                                decided_before=decided_before, days=follow_up_days,
                                                limit=EVIDENCE_LIMIT)
        # First seen: when the oldest such lookup's window passed (it was then first without follow-up).
        sig = _signal(SignalKind.lookups_without_follow_up, institution_id,
                      sample[0][1] + timedelta(days=follow_up_days), [e for e, _ in sample],
                      institution_id=institution_id)
        sig["evidence_total"] = int(without)
        out.append(sig)
    return out


def _late_reporting(session: Session, since: datetime, now: datetime, *, report_deadline_days: int,
                    **_: Any) -> list[dict[str, Any]]:
    out = []
    for institution_id, late, first in store.late_versions(session, since=since, until=now, days=report_deadline_days):
        evidence = store.late_version_event_ids(session, institution_id=institution_id, since=since, until=now,
                                                days=report_deadline_days, limit=EVIDENCE_LIMIT + 1)
        sig = _signal(SignalKind.late_reporting, institution_id, first, evidence, institution_id=institution_id)
        sig["evidence_total"] = len(evidence) if len(evidence) <= EVIDENCE_LIMIT else None
        out.append(sig)
    return out


def _sequential(session: Session, since: datetime, now: datetime, **_: Any) -> list[dict[str, Any]]:
    by_institution: dict[str, list[Lookup]] = defaultdict(list)
    for asker, at, event_id in store.sequential_lookups(session, since=since, until=now):
        by_institution[asker or ""].append(Lookup(at=at, asker=asker or "", event_id=event_id))
    out = []
    for institution_id, flagged in by_institution.items():
        found = rules.sequential_scan(flagged)
        if found is not None:
            first_seen, evidence = found
            out.append(_signal(SignalKind.sequential_lookups, institution_id, first_seen, evidence,
                               institution_id=institution_id or None))
    return out


_COMPUTE = {
    SignalKind.late_reporting: _late_reporting,
    SignalKind.lookup_during_ban: _during_ban,
    SignalKind.lookups_without_follow_up: _without_follow_up,
    SignalKind.many_lenders_24h: _many_lenders,
    SignalKind.overdue_disputes: _overdue_disputes,
    SignalKind.sequential_lookups: _sequential,
}


def list_signals(
    session: Session, *, principal: Principal, kind: SignalKind | None, since: datetime | None, now: datetime,
    follow_up_days: int, report_deadline_days: int = 2, request_id: str | None, proofs: bool = False,
    reads: Session | None = None,
) -> dict[str, Any]:
    """Signals of one kind (or all), oldest first; `since` at most 90 days back (default 30). With
    `proofs`, the latest signed checkpoint and each signal's `evidence_proofs` (services.evidence). Read in
    `reads` (a standby's session, a moment old) when given; the read's access event goes to `session`."""
    reads = reads or session
    start = rules.check_since(since, now)
    kinds = [kind] if kind is not None else list(SignalKind)
    items = [s for k in kinds for s in _COMPUTE[k](reads, start, now, follow_up_days=follow_up_days,
                                                    report_deadline_days=report_deadline_days)]
    items.sort(key=lambda s: (s["first_seen"], s["kind"], s["id"]))
    record_event(session, principal=principal, action="regulator:signals:read", now=now, request_id=request_id,
                 details={"kind": kind.value if kind else None, "since": start.isoformat(), "count": len(items)})
    out: dict[str, Any] = {"since": start, "as_of": now, "items": items}
    if proofs:
        checkpoint, by_event = evidence_proofs(reads, (e for s in items for e in s["evidence"]))
        out["checkpoint"] = checkpoint
        for s in items:
            s["evidence_proofs"] = [by_event[e] for e in s["evidence"] if e in by_event]
    return out
