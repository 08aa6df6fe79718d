"""Snapshot reports: what a snapshot file did not name is no longer reported (services.reports calls this when
the file is done)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from register.domain.permission import Principal
from register.services import disputes
from register.storage.models import Obligation, ObligationVersion, Report, ReportRef


def unreport_missing(sessions: sessionmaker[Session], report: Report, now: datetime, principal: Principal) -> int:
    """Snapshot mode: the institution's live obligations the file did not name are no longer reported
    (retracted, with a version saying why). In pages, each page committed on its own."""
    reason = f"not in snapshot report {report.id}"
    total = 0
    while True:
        with sessions.begin() as s:
            named = select(ReportRef.external_ref).where(ReportRef.report_id == report.id)
            rows = s.execute(select(Obligation).where(
                Obligation.institution_id == report.institution_id, Obligation.retracted_at.is_(None),
                Obligation.external_ref.not_in(named)).limit(2000).with_for_update()).scalars().all()  # fmt: skip
            if not rows:
                s.execute(ReportRef.__table__.delete().where(ReportRef.report_id == report.id))
                return total
            last = {v.obligation_id: v.state for v in s.execute(select(ObligationVersion).where(
                ObligationVersion.obligation_id.in_([o.id for o in rows]))
                .order_by(ObligationVersion.obligation_id, ObligationVersion.version)).scalars()}  # newest last
            for ob in rows:
                ob.retracted_at, ob.retraction_reason = now, reason
                ob.version += 1
                ob.updated_at = now
                s.add(ObligationVersion(obligation_id=ob.id, version=ob.version, change="unreported",
                                        institution_id=ob.institution_id, request_id=f"report:{report.id}",
                                        recorded_at=now, as_of=ob.as_of,
                                        state={**last.get(ob.id, {}), "as_of": ob.as_of.isoformat(),  # a refresh moves as_of
                                               "retraction_reason": reason}))
            for ob_id in disputes.open_on(s, [o.id for o in rows]):  # the line is gone: its disputes are answered
                disputes.close_by_report(s, principal=principal, obligation_id=ob_id, now=now,
                                         request_id=f"report:{report.id}", cause="retracted")
            total += len(rows)
