"""SQL for the regulator's view of one institution's lookups: how many, with which kind of consent, with
what outcome, and whether each granted one was followed by a report naming the person.

Counts only: no row of this module's answers names a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from register.storage.models import AccessEvent, Consent, ExposureRecord, ObligationDebtor, ObligationVersion
from register.storage.types import UTCDateTime


class plus_days(FunctionElement[datetime]):  # noqa: N801  (a SQL function, named like one)
    """`timestamp + days` for a UTCDateTime column, `days` a whole number written into the statement:
    PostgreSQL adds an interval; SQLite, which keeps such a column as text, shifts it with strftime into
    the same text form (to the millisecond, enough for a window of days)."""

    type = UTCDateTime()
    inherit_cache = False  # `days` is not a bound parameter: a cached statement could carry another's

    def __init__(self, timestamp: ColumnElement[Any], days: int) -> None:
        self.days = int(days)
        super().__init__(timestamp)


@compiles(plus_days, "postgresql")
def _plus_days_pg(element: plus_days, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} + interval '{element.days} days')"


@compiles(plus_days, "sqlite")
def _plus_days_sqlite(element: plus_days, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(element.clauses, **kw)}, '+{element.days} days')"


def _in_period(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    return [c for c in (column >= start if start else None, column < end if end else None) if c is not None]


def outcome_counts(
    session: Session, *, institution_id: str, action: str, start: datetime | None, end: datetime | None,
) -> list[Any]:
    """(source, outcome, reason, n) for the institution's events of `action` in [start, end): `source` is
    that of the consent the event names (null when it names none that exists)."""
    stmt = (
        select(Consent.source, AccessEvent.outcome, AccessEvent.reason, func.count())
        .select_from(AccessEvent)
        .outerjoin(Consent, Consent.id == AccessEvent.consent_id)
        .where(AccessEvent.actor_id == institution_id, AccessEvent.action == action,
               *_in_period(AccessEvent.occurred_at, start, end))
        .group_by(Consent.source, AccessEvent.outcome, AccessEvent.reason)
    )
    return list(session.execute(stmt).all())


def follow_up_counts(
    session: Session, *, institution_id: str, start: datetime | None, end: datetime | None, days: int,
    decided_before: datetime,
) -> list[Any]:
    """(source, followed_up, without_follow_up, pending) of the institution's granted lookups in [start,
    end), by the source of their consent. Followed up: the institution recorded a change (a new version)
    of a line naming the person within `days` after the lookup. Without follow-up: none, and the lookup
    is older than `decided_before` (now - days). Pending: none yet, and still younger."""
    e = ExposureRecord
    followed = exists(
        select(ObligationVersion.version)
        .join(ObligationDebtor, ObligationDebtor.obligation_id == ObligationVersion.obligation_id)
        .where(ObligationDebtor.person_id == e.person_id, ObligationVersion.institution_id == e.institution_id,
               ObligationVersion.recorded_at >= e.created_at,
               ObligationVersion.recorded_at < plus_days(e.created_at, days))
    )

    per_lookup = (
        select(Consent.source.label("source"), followed.label("followed"),
               (e.created_at <= decided_before).label("decided"))
        .select_from(e)
        .join(Consent, Consent.id == e.consent_id)
        .where(e.institution_id == institution_id, *_in_period(e.created_at, start, end))
        .subquery()
    )

    def count(*conditions: Any) -> Any:
        return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

    f, d = per_lookup.c.followed, per_lookup.c.decided
    stmt = (select(per_lookup.c.source, count(f), count(~f, d), count(~f, ~d))
            .group_by(per_lookup.c.source))
    return list(session.execute(stmt).all())
