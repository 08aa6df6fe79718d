"""SQL of the regulator's signals (SPEC.md, "Signals"). Every statement is bounded: by the period (at most
90 days, register.domain.signals), and by a LIMIT on the rows it returns. A person is reached only through
the pseudonyms the events carry (storage.pseudonyms): rows carry the blind index to group by, which the
use case never returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from register.storage.lookups import plus_days
from register.storage.models import (
    AccessEvent, CreditBan, Dispute, ExposureRecord, ObligationDebtor, ObligationVersion, Person, SubjectPseudonym,
)

ROW_LIMIT = 100_000  # rows one statement returns at most: a request's memory stays bounded
LOOKUP = "exposure:query"
_E, _P = AccessEvent, SubjectPseudonym


def granted_lookups_of_many_lenders(session: Session, *, since: datetime, until: datetime, lenders: int) -> list[Any]:
    """(blind_index, subject, occurred_at, actor_id, event id) of granted lookups in [since, until) of
    persons whom at least `lenders` distinct institutions looked up in the period (the window is the
    use case's; this only leaves out persons who cannot be in one)."""
    in_period = (_E.action == LOOKUP, _E.outcome == "granted", _E.occurred_at >= since, _E.occurred_at < until)
    many = (select(_P.blind_index).join(_E, _E.subject == _P.pseudonym).where(*in_period)
            .group_by(_P.blind_index).having(func.count(_E.actor_id.distinct()) >= lenders))
    stmt = (select(_P.blind_index, _E.subject, _E.occurred_at, _E.actor_id, _E.id)
            .join(_P, _P.pseudonym == _E.subject)
            .where(*in_period, _P.blind_index.in_(many))
            .order_by(_E.occurred_at, _E.id).limit(ROW_LIMIT))
    return list(session.execute(stmt).all())


def lookups_of_banned(session: Session, *, since: datetime, until: datetime) -> list[Any]:
    """(subject, occurred_at, actor_id, event id, ban since, until, lift_effective_at) of lookups (granted
    or refused) in [since, until) of persons with a credit ban set before the lookup; whether the ban was
    still in force then is the use case's (domain.signals.ban_in_force)."""
    stmt = (select(_E.subject, _E.occurred_at, _E.actor_id, _E.id,
                   CreditBan.since, CreditBan.until, CreditBan.lift_effective_at)
            .join(_P, _P.pseudonym == _E.subject)
            .join(Person, Person.blind_index == _P.blind_index)
            .join(CreditBan, and_(CreditBan.person_id == Person.id, CreditBan.since <= _E.occurred_at))
            .where(_E.action == LOOKUP, _E.occurred_at >= since, _E.occurred_at < until)
            .order_by(_E.occurred_at, _E.id).limit(ROW_LIMIT))
    return list(session.execute(stmt).all())


def overdue_disputes(session: Session, *, now: datetime) -> list[Any]:
    """(institution_id, dispute id, deadline_at) of disputes open past their deadline."""
    stmt = (select(Dispute.institution_id, Dispute.id, Dispute.deadline_at)
            .where(Dispute.state == "open", Dispute.deadline_at < now)
            .order_by(Dispute.deadline_at, Dispute.id).limit(ROW_LIMIT))
    return list(session.execute(stmt).all())


def dispute_event_ids(session: Session, *, dispute_ids: Sequence[str], since: datetime, limit: int) -> list[str]:
    """Ids of `dispute:*` events (which carry `dispute_id` in their details) about these disputes, oldest
    first, from `since` on (a dispute's events start when it is opened)."""
    dispute_id = _E.details["dispute_id"].as_string()
    stmt = (select(_E.id).where(_E.action.like("dispute:%"), _E.occurred_at >= since,
                                dispute_id.in_(list(dispute_ids)))
            .order_by(_E.occurred_at, _E.id).limit(limit))
    return list(session.scalars(stmt))


def late_versions(session: Session, *, since: datetime, until: datetime, days: int) -> list[Any]:
    """(institution_id, late changes, first recorded_at) of changes (created, updated, reinstated) recorded
    in [since, until) more than `days` after their as_of."""
    v = ObligationVersion
    stmt = (select(v.institution_id, func.count(), func.min(v.recorded_at))
            .where(v.recorded_at >= since, v.recorded_at < until, v.change != "retracted",
                   v.recorded_at > plus_days(v.as_of, days))
            .group_by(v.institution_id).order_by(v.institution_id))
    return list(session.execute(stmt).all())


def late_version_event_ids(
    session: Session, *, institution_id: str, since: datetime, until: datetime, days: int, limit: int,
) -> list[str]:
    """Ids of the access events (`obligation:*`, `report:*`) of the requests that recorded the institution's
    late changes, oldest first."""
    v = ObligationVersion
    requests = (select(v.request_id).where(v.institution_id == institution_id, v.recorded_at >= since,
                                           v.recorded_at < until, v.change != "retracted",
                                           v.recorded_at > plus_days(v.as_of, days), v.request_id.is_not(None)))
    stmt = (select(_E.id).where(_E.actor_id == institution_id, _E.occurred_at >= since,
                                _E.request_id.in_(requests),
                                (_E.action.like("obligation:%")) | (_E.action.like("report:%")))
            .order_by(_E.occurred_at, _E.id).limit(limit))
    return list(session.scalars(stmt))


def _followed(e: Any, days: int) -> Any:
    return exists(
        select(ObligationVersion.version)
        .join(ObligationDebtor, ObligationDebtor.obligation_id == ObligationVersion.obligation_id)
        .where(ObligationDebtor.person_id == e.person_id, ObligationVersion.institution_id == e.institution_id,
               ObligationVersion.recorded_at >= e.created_at,
               ObligationVersion.recorded_at < plus_days(e.created_at, days))
    )


def follow_up_by_institution(session: Session, *, since: datetime, decided_before: datetime, days: int) -> list[Any]:
    """(institution_id, decided, without_follow_up) over granted lookups in [since, decided_before): their
    follow-up window has passed (SPEC.md, "Attested consents")."""
    e = ExposureRecord
    per_lookup = (select(e.institution_id.label("institution_id"), _followed(e, days).label("followed"))
                  .where(e.created_at >= since, e.created_at < decided_before).subquery())
    f = per_lookup.c.followed
    stmt = (select(per_lookup.c.institution_id, func.count(), func.coalesce(func.sum(case((~f, 1), else_=0)), 0))
            .group_by(per_lookup.c.institution_id).order_by(per_lookup.c.institution_id))
    return list(session.execute(stmt).all())


def without_follow_up_sample(
    session: Session, *, institution_id: str, since: datetime, decided_before: datetime, days: int, limit: int,
) -> list[tuple[str, datetime]]:
    """(event id, created_at) of the institution's first `limit` granted lookups without follow-up."""
    e = ExposureRecord
    stmt = (select(e.event_id, e.created_at)
            .where(e.institution_id == institution_id, e.created_at >= since, e.created_at < decided_before,
                   ~_followed(e, days))
            .order_by(e.created_at, e.event_id).limit(limit))
    return [(r[0], r[1]) for r in session.execute(stmt).all()]


def sequential_lookups(session: Session, *, since: datetime, until: datetime) -> list[Any]:
    """(actor_id, occurred_at, event id) of lookups in [since, until) flagged `details.sequential` when
    answered (services.sequential), oldest first."""
    flagged = _E.details["sequential"].as_boolean()
    stmt = (select(_E.actor_id, _E.occurred_at, _E.id)
            .where(_E.action == LOOKUP, _E.occurred_at >= since, _E.occurred_at < until, flagged.is_(True))
            .order_by(_E.occurred_at, _E.id).limit(ROW_LIMIT))
    return list(session.execute(stmt).all())


def events_by_ids(session: Session, event_ids: Sequence[str]) -> list[AccessEvent]:
    """The access events with these ids (a signal's evidence: at most a few hundred), in log order."""
    if not event_ids:
        return []
    return list(session.scalars(select(_E).where(_E.id.in_(list(event_ids))).order_by(_E.seq)))
