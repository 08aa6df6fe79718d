"""SQL of the regulator's per-institution figures (SPEC.md, "Institution activity"). Counts and sums
only, each statement bounded by the institution and the period (at most 92 days plus a 28-day baseline,
register.domain.activity); no row names a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from register.storage.lookups import plus_days
from register.storage.models import (
    AccessEvent, CreditBan, Dispute, Obligation, ObligationVersion, Person, Report, SubjectPseudonym,
)

LOOKUP = "exposure:query"
ROW_LIMIT = 100_000
_E, _P = AccessEvent, SubjectPseudonym


class utc_hour(FunctionElement[str]):  # noqa: N801  (a SQL function, named like one)
    """The UTC hour of a UTCDateTime column as text `YYYY-MM-DDTHH`, the same on both databases."""

    type = String()
    inherit_cache = True

    def __init__(self, timestamp: ColumnElement[Any]) -> None:
        super().__init__(timestamp)


@compiles(utc_hour, "postgresql")
def _utc_hour_pg(element: utc_hour, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"


@compiles(utc_hour, "sqlite")
def _utc_hour_sqlite(element: utc_hour, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%dT%H', {compiler.process(element.clauses, **kw)})"


def lookups_by_hour(session: Session, *, institution_id: str, since: datetime, until: datetime) -> list[Any]:
    """(hour `YYYY-MM-DDTHH` UTC, outcome, reason, n) of the institution's lookups in [since, until)."""
    hour = utc_hour(_E.occurred_at).label("hour")
    stmt = (select(hour, _E.outcome, _E.reason, func.count())
            .where(_E.actor_id == institution_id, _E.action == LOOKUP,
                   _E.occurred_at >= since, _E.occurred_at < until)
            .group_by(hour, _E.outcome, _E.reason).order_by(hour).limit(ROW_LIMIT))
    return list(session.execute(stmt).all())


def consents_of_granted(session: Session, *, institution_id: str, since: datetime, until: datetime) -> int:
    """How many distinct consents the institution's granted lookups in [since, until) named."""
    stmt = select(func.count(_E.consent_id.distinct())).where(
        _E.actor_id == institution_id, _E.action == LOOKUP, _E.outcome == "granted",
        _E.occurred_at >= since, _E.occurred_at < until)
    return int(session.scalar(stmt) or 0)


def lookups_of_banned(session: Session, *, institution_id: str, since: datetime, until: datetime) -> list[Any]:
    """(event id, occurred_at, ban since, until, lift_effective_at) of the institution's lookups in [since,
    until) of persons with a credit ban set before the lookup (in force then: domain.signals.ban_in_force)."""
    stmt = (select(_E.id, _E.occurred_at, CreditBan.since, CreditBan.until, CreditBan.lift_effective_at)
            .join(_P, _P.pseudonym == _E.subject)
            .join(Person, Person.blind_index == _P.blind_index)
            .join(CreditBan, and_(CreditBan.person_id == Person.id, CreditBan.since <= _E.occurred_at))
            .where(_E.actor_id == institution_id, _E.action == LOOKUP,
                   _E.occurred_at >= since, _E.occurred_at < until)
            .order_by(_E.occurred_at, _E.id).limit(ROW_LIMIT))
    return list(session.execute(stmt).all())


def dispute_counts(session: Session, *, institution_id: str, now: datetime) -> tuple[int, int]:
    """(open, overdue) disputes against the creditor now."""
    d = Dispute
    stmt = select(func.count(), func.coalesce(func.sum(case((d.deadline_at < now, 1), else_=0)), 0)).where(
        d.institution_id == institution_id, d.state == "open")
    row = session.execute(stmt).one()
    return int(row[0]), int(row[1])


def answered_disputes(session: Session, *, institution_id: str, since: datetime, until: datetime) -> list[Any]:
    """(opened_at, closed_at, deadline_at) of disputes the creditor answered (by its word or a report) in
    [since, until)."""
    d = Dispute
    stmt = (select(d.opened_at, d.closed_at, d.deadline_at)
            .where(d.institution_id == institution_id, d.closed_by.in_(("creditor", "report")),
                   d.closed_at >= since, d.closed_at < until)
            .order_by(d.closed_at).limit(ROW_LIMIT))
    return list(session.execute(stmt).all())


def line_counts(session: Session, *, institution_id: str, stale_before: datetime) -> tuple[int, int]:
    """(lines, stale lines) the institution holds now: not retracted; stale when `as_of` < stale_before."""
    o = Obligation
    stmt = select(func.count(), func.coalesce(func.sum(case((o.as_of < stale_before, 1), else_=0)), 0)).where(
        o.institution_id == institution_id, o.retracted_at.is_(None))
    row = session.execute(stmt).one()
    return int(row[0]), int(row[1])


def last_report(session: Session, *, institution_id: str) -> Any:
    """The institution's newest batch report (id, received_at, status, finished_at), or None."""
    r = Report
    stmt = (select(r.id, r.received_at, r.status, r.finished_at).where(r.institution_id == institution_id)
            .order_by(r.received_at.desc(), r.id.desc()).limit(1))
    return session.execute(stmt).first()


def report_counts(session: Session, *, institution_id: str, since: datetime, until: datetime) -> Any:
    """(files, failed files, lines read, lines rejected) of the reports received in [since, until)."""
    r = Report
    stmt = select(func.count(), func.coalesce(func.sum(case((r.status == "failed", 1), else_=0)), 0),
                  func.coalesce(func.sum(r.lines_read), 0), func.coalesce(func.sum(r.rejected), 0)).where(
        r.institution_id == institution_id, r.received_at >= since, r.received_at < until)
    return session.execute(stmt).one()


def change_counts(session: Session, *, institution_id: str, since: datetime, until: datetime, days: int) -> Any:
    """(changes, late changes) the institution recorded in [since, until): created, updated, reinstated;
    late when recorded more than `days` after its as_of (as storage.signals.late_versions)."""
    v = ObligationVersion
    late = v.recorded_at > plus_days(v.as_of, days)
    stmt = select(func.count(), func.coalesce(func.sum(case((late, 1), else_=0)), 0)).where(
        v.institution_id == institution_id, v.recorded_at >= since, v.recorded_at < until, v.change != "retracted")
    return session.execute(stmt).one()
