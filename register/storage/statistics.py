"""SQL for the public statistics: aggregates over live lines, disputes and lookups, grouped in the
database (nothing per person leaves it). Portable SQL only: the month of a lookup is a range per month,
not a date function each database spells its own way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from register.domain.statistics import BUCKETS
from register.storage.models import AccessEvent, Dispute, Institution, Obligation, ObligationDebtor

_live = (Obligation.status != "closed", Obligation.retracted_at.is_(None))
_country = func.coalesce(Institution.country, "")


def lines_by_kind(session: Session) -> list[Any]:
    """(country, kind, currency, lines, balance) of live lines, by the reporting institution's country."""
    stmt = (
        select(_country.label("country"), Obligation.kind, Obligation.currency,
               func.count().label("lines"), func.coalesce(func.sum(Obligation.balance), 0).label("balance"))
        .join(Institution, Institution.id == Obligation.institution_id)
        .where(*_live)
        .group_by(_country, Obligation.kind, Obligation.currency)
    )  # fmt: skip
    return list(session.execute(stmt).all())


def persons_by_kind(session: Session) -> list[Any]:
    """(country, kind, currency, persons): distinct persons named on those lines."""
    stmt = (
        select(_country.label("country"), Obligation.kind, Obligation.currency,
               func.count(distinct(ObligationDebtor.person_id)).label("persons"))
        .join(Institution, Institution.id == Obligation.institution_id)
        .join(ObligationDebtor, ObligationDebtor.obligation_id == Obligation.id)
        .where(*_live)
        .group_by(_country, Obligation.kind, Obligation.currency)
    )  # fmt: skip
    return list(session.execute(stmt).all())


def arrears_buckets(session: Session) -> list[Any]:
    """(country, bucket, persons): persons by their worst days past due over their live lines there."""
    worst = (
        select(_country.label("country"), ObligationDebtor.person_id,
               func.max(Obligation.days_past_due).label("worst"))
        .join(Institution, Institution.id == Obligation.institution_id)
        .join(ObligationDebtor, ObligationDebtor.obligation_id == Obligation.id)
        .where(*_live)
        .group_by(_country, ObligationDebtor.person_id)
        .subquery()
    )  # fmt: skip
    bucket = case(*[((worst.c.worst <= high) if high is not None else (worst.c.worst >= low), name)
                    for name, low, high in BUCKETS], else_="181+")
    stmt = select(worst.c.country, bucket.label("bucket"), func.count().label("persons")).group_by(
        worst.c.country, bucket)
    return list(session.execute(stmt).all())


def collection_persons(session: Session) -> list[Any]:
    """(country, persons, claims): persons with a live collection claim, by the collector's country."""
    stmt = (
        select(_country.label("country"), func.count(distinct(ObligationDebtor.person_id)).label("persons"),
               func.count(distinct(Obligation.id)).label("claims"))
        .join(Institution, Institution.id == Obligation.institution_id)
        .join(ObligationDebtor, ObligationDebtor.obligation_id == Obligation.id)
        .where(*_live, Obligation.kind == "collection_claim")
        .group_by(_country)
    )  # fmt: skip
    return list(session.execute(stmt).all())


def disputes_by_state(session: Session, now: datetime) -> list[Any]:
    """(state, disputes, persons): an open dispute past its deadline counts as overdue."""
    state = case(((Dispute.state == "open") & (Dispute.deadline_at <= now), "overdue"), else_=Dispute.state)
    stmt = select(state.label("state"), func.count().label("disputes"),
                  func.count(distinct(Dispute.person_id)).label("persons")).group_by(state)
    return list(session.execute(stmt).all())


def lookups_between(session: Session, start: datetime, end: datetime) -> Any:
    """(granted, refused, persons) of lenders' and collectors' exposure queries in [start, end); persons:
    distinct subjects (the keyed index or pseudonym the events carry)."""
    query = (AccessEvent.action == "exposure:query", AccessEvent.occurred_at >= start, AccessEvent.occurred_at < end)
    stmt = select(
        func.count(case((AccessEvent.outcome == "granted", 1))).label("granted"),
        func.count(case((AccessEvent.outcome == "refused", 1))).label("refused"),
        func.count(distinct(AccessEvent.subject)).label("persons"),
    ).where(*query)
    return session.execute(stmt).one()
