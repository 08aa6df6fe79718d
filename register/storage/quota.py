"""SQL for the daily quotas: one conditional upsert per exposure answer."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from register.storage.dialect import UNLIMITED, QuotaTake, statements
from register.storage.models import QuotaUsage

# One statement per answer, of the session's database (storage.dialect): it counts the answer unless the
# day's quota is used up. A conflicting INSERT becomes the UPDATE, whose WHERE leaves the row alone (and
# returns nothing) once `used` reaches the quota. The row stays locked until the request commits, so
# concurrent answers of one institution cannot overshoot. An answer with an attested consent counts against
# both quotas, in the same row and statement: both counters move together or neither does, so a refusal by
# one quota never uses up the other.
__all__ = ["UNLIMITED", "QuotaTake", "take_attested_quota", "take_quota", "usage"]


def take_quota(session: Session, *, institution_id: str, day: date, quota: int) -> int | None:
    """Count one more answer for this institution and day; the new count, or None if `quota` is reached."""
    return statements(session).take_quota(session, institution_id=institution_id, day=day, quota=quota)


def take_attested_quota(session: Session, *, institution_id: str, day: date, quota: int, attested: int) -> bool:
    """Count one more answer with an attested consent, against the general `quota` and the `attested` one
    (UNLIMITED for one that is off); False, and nothing counted, if either is reached."""
    return statements(session).take_attested_quota(session, institution_id=institution_id, day=day, quota=quota,
                                                   attested=attested)


def usage(session: Session, *, institution_id: str, day: date) -> tuple[int, int]:
    """(answers, answers with an attested consent) counted for this institution and day."""
    row = session.execute(select(QuotaUsage.used, QuotaUsage.attested)
                          .where(QuotaUsage.institution_id == institution_id, QuotaUsage.day == day)).first()
    return (row.used, row.attested) if row is not None else (0, 0)
