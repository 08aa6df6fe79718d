"""SQL for what a register holds, counted: what `register demo` reports when it starts on existing data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from register.storage.models import Dispute, Institution, Obligation, Person


@dataclass(frozen=True, slots=True)
class Contents:
    institutions: int
    persons: int
    obligations: int  # live: reported and not retracted
    open_disputes: int  # not yet answered (overdue ones included)


def count_contents(session: Session) -> Contents:
    return Contents(
        institutions=_count(session, Institution),
        persons=_count(session, Person),
        obligations=_count(session, Obligation, Obligation.retracted_at.is_(None)),
        open_disputes=_count(session, Dispute, Dispute.state == "open"),
    )


def _count(session: Session, table: type, *where: ColumnElement[bool]) -> int:
    return int(session.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)
