"""What each change writes to the outbox (storage.outbox), in the change's own transaction, and the
periodic detector of overdue disputes (a deadline passing is a change no request makes).

The services call one function here per change; each writes ids and states only, never an identity
number or an amount. The event types and their `data` (SPEC.md, "Events"):

- `consent.given`, `consent.revoked`: consent_id, purpose, source, expires_at (the consent's institution)
- `dispute.opened`, `dispute.answered` (outcome corrected|upheld, closed_by creditor|report),
  `dispute.withdrawn`, `dispute.overdue`: dispute_id, obligation_id, external_ref, reason, deadline (the
  creditor of the line)
- `credit_ban.set`, `credit_ban.lifted` (effective_at): ban_id, reason, until (the person only: a ban
  shows in every exposure answer an institution gets)
- `report.finished`: report_id, status done|failed and the counts (the reporting institution)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from register.storage import outbox
from register.storage.models import Consent, Dispute, Obligation

OVERDUE_CURSOR = "detector:dispute.overdue"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def consent(session: Session, type_: str, c: Consent, *, now: datetime) -> None:
    outbox.record(session, type_, institution_id=c.institution_id, subject=c.person_id, at=now,
                  data={"consent_id": c.id, "purpose": c.purpose, "source": c.source,
                        "expires_at": _iso(c.expires_at)})  # fmt: skip


def dispute(session: Session, type_: str, d: Dispute, *, now: datetime, **more: Any) -> None:
    ref = session.execute(select(Obligation.external_ref).where(Obligation.id == d.obligation_id)).scalar()
    outbox.record(session, type_, institution_id=d.institution_id, subject=d.person_id, at=now,
                  data={"dispute_id": d.id, "obligation_id": d.obligation_id, "external_ref": ref,
                        "reason": d.reason, "deadline": _iso(d.deadline_at), **more})  # fmt: skip


def credit_ban(session: Session, type_: str, ban: Any, *, now: datetime) -> None:
    outbox.record(session, type_, institution_id=None, subject=ban.person_id, at=now,
                  data={"ban_id": ban.id, "reason": ban.reason, "until": _iso(ban.until),
                        "effective_at": _iso(ban.lift_effective_at)})  # fmt: skip


def report_finished(session: Session, report: Any, *, now: datetime) -> None:
    outbox.record(session, "report.finished", institution_id=report.institution_id, subject=None, at=now,
                  data={"report_id": report.id, "status": report.status, "lines": report.lines_read,
                        "accepted": report.accepted, "unchanged": report.unchanged, "rejected": report.rejected,
                        "unreported": report.unreported})  # fmt: skip


def detect_overdue(sessions: sessionmaker[Session], *, now: datetime) -> int:
    """Record `dispute.overdue` once for each open dispute whose deadline passed since the last look (a
    cursor on the deadline: deadlines never move, and a dispute opens with its deadline ahead); the first
    look takes every open dispute already overdue. Several dispatchers may call it: the cursor is taken
    with SKIP LOCKED, one looks at a time. How many it recorded."""
    with sessions.begin() as s:
        cur = outbox.take_cursor(s, OVERDUE_CURSOR, now=now)
        if cur is None:
            return 0
        stmt = select(Dispute).where(Dispute.state == "open", Dispute.deadline_at <= now)
        if cur.position_at is not None:
            stmt = stmt.where(Dispute.deadline_at > cur.position_at)
        rows = list(s.scalars(stmt.order_by(Dispute.deadline_at, Dispute.id)))
        for d in rows:
            dispute(s, "dispute.overdue", d, now=d.deadline_at)
        outbox.move_cursor(s, OVERDUE_CURSOR, position_at=now, now=now)
        return len(rows)
