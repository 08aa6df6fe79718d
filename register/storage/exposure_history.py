"""SQL for answers as of a past moment: the state of each obligation as the register stood then, read
from its versions (every accepted change is kept, `obligation_versions`), and the disputes open then.

Plain Core SQL, the same on both databases: this is the regulator's and the person's path, not the
lender's, so none of it is a prepared statement of `storage.dialect`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from register.storage.events import subjects_of
from register.storage.models import (
    AccessEvent, Dispute, Institution, Obligation, ObligationDebtor, ObligationVersion,
)  # fmt: skip

_CHANGE_EVENTS = ("obligation:created", "obligation:updated", "obligation:reinstated", "obligation:retracted")
_BATCH = 500


def obligations_ever_naming(session: Session, *, person_id: str, subject: bytes, until: datetime) -> set[str]:
    """The obligations that may have named the person at or before `until`: those naming them now, and
    those a reported change named them in (a single report logs one event per person a line names,
    before or after the change, so a debtor removed since is found by their events)."""
    ids = set(session.scalars(select(ObligationDebtor.obligation_id).where(ObligationDebtor.person_id == person_id)))
    for details in session.scalars(select(AccessEvent.details).where(
            AccessEvent.subject.in_(subjects_of(session, subject)), AccessEvent.action.in_(_CHANGE_EVENTS), AccessEvent.occurred_at <= until)):
        oid = (details or {}).get("obligation_id")
        if isinstance(oid, str):
            ids.add(oid)
    return ids


def versions_at(session: Session, obligation_ids: set[str], at: datetime) -> list[Any]:
    """For each obligation, its latest version recorded at or before `at` (none if it did not exist yet),
    with the obligation's institution, reference and the creditor's name: rows of (obligation_id,
    institution_id, external_ref, creditor, change, as_of, state)."""
    out: list[Any] = []
    ordered = sorted(obligation_ids)
    for i in range(0, len(ordered), _BATCH):
        chunk = ordered[i : i + _BATCH]
        latest = (
            select(ObligationVersion.obligation_id, func.max(ObligationVersion.version).label("version"))
            .where(ObligationVersion.obligation_id.in_(chunk), ObligationVersion.recorded_at <= at)
            .group_by(ObligationVersion.obligation_id)
            .subquery()
        )
        stmt = (
            select(ObligationVersion.obligation_id, Obligation.institution_id, Obligation.external_ref,
                   Institution.name.label("creditor"), ObligationVersion.change, ObligationVersion.as_of,
                   ObligationVersion.state)
            .join(latest, (latest.c.obligation_id == ObligationVersion.obligation_id)
                  & (latest.c.version == ObligationVersion.version))
            .join(Obligation, Obligation.id == ObligationVersion.obligation_id)
            .join(Institution, Institution.id == Obligation.institution_id)
        )  # fmt: skip
        out.extend(session.execute(stmt).all())
    return out


def disputed_at(session: Session, obligation_ids: list[str], at: datetime) -> set[str]:
    """Of these lines, those with a dispute open at `at` (opened by then, not closed by then)."""
    if not obligation_ids:
        return set()
    return set(session.scalars(select(Dispute.obligation_id).distinct().where(
        Dispute.obligation_id.in_(obligation_ids), Dispute.opened_at <= at,
        or_(Dispute.closed_at.is_(None), Dispute.closed_at > at))))  # fmt: skip


def stated_at(session: Session, *, person_id: str, obligation_ids: list[str], at: datetime) -> set[str]:
    """Of these lines, those on which the person had made a statement by `at` (after an upheld dispute)."""
    if not obligation_ids:
        return set()
    return set(session.scalars(select(Dispute.obligation_id).distinct().where(
        Dispute.person_id == person_id, Dispute.obligation_id.in_(obligation_ids), Dispute.state == "upheld",
        Dispute.statement_enc.is_not(None), Dispute.statement_at <= at)))  # fmt: skip
