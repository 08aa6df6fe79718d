"""SQL for the daily quotas: one conditional upsert per exposure answer."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from register.storage import fastpath
from register.storage.models import QuotaUsage

# One statement: counts the answer unless the day's quota is used up. A conflicting INSERT becomes the
# UPDATE, whose WHERE leaves the row alone (and returns nothing) once `used` reaches the quota. The row
# stays locked until the request commits, so concurrent answers of one institution cannot overshoot.
_UPSERT = """
INSERT INTO quota_usage (institution_id, day, used) VALUES ({i}, {d}, 1)
ON CONFLICT (institution_id, day) DO UPDATE SET used = quota_usage.used + 1 WHERE quota_usage.used < {q}
RETURNING used
"""
_PG_UPSERT = _UPSERT.format(i="%(institution_id)s", d="%(day)s", q="%(quota)s")
_SQLITE_UPSERT = text(_UPSERT.format(i=":institution_id", d=":day", q=":quota"))

# An answer with an attested consent counts against both quotas, in the same row and statement: both
# counters move together or neither does, so a refusal by one quota never uses up the other.
_ATTESTED_UPSERT = """
INSERT INTO quota_usage (institution_id, day, used, attested) VALUES ({i}, {d}, 1, 1)
ON CONFLICT (institution_id, day) DO UPDATE SET used = quota_usage.used + 1, attested = quota_usage.attested + 1
 WHERE quota_usage.used < {q} AND quota_usage.attested < {a}
RETURNING used
"""
_PG_ATTESTED_UPSERT = _ATTESTED_UPSERT.format(i="%(institution_id)s", d="%(day)s", q="%(quota)s", a="%(attested)s")
_SQLITE_ATTESTED_UPSERT = text(_ATTESTED_UPSERT.format(i=":institution_id", d=":day", q=":quota", a=":attested"))
UNLIMITED = 2**62  # a quota that is off, in the attested statement's WHERE


def take_quota(session: Session, *, institution_id: str, day: date, quota: int) -> int | None:
    """Count one more answer for this institution and day; the new count, or None if `quota` is reached."""
    params = {"institution_id": institution_id, "day": day, "quota": quota}
    if fastpath.is_pg(session):
        rows = fastpath.fetch(session, _PG_UPSERT, params)
        return rows[0].used if rows else None
    # SQLite: the ISO text that SQLAlchemy's Date type stores there.
    return session.execute(_SQLITE_UPSERT, {**params, "day": day.isoformat()}).scalar_one_or_none()


def take_attested_quota(session: Session, *, institution_id: str, day: date, quota: int, attested: int) -> bool:
    """Count one more answer with an attested consent, against the general `quota` and the `attested` one
    (UNLIMITED for one that is off); False, and nothing counted, if either is reached."""
    params = {"institution_id": institution_id, "day": day, "quota": quota, "attested": attested}
    if fastpath.is_pg(session):
        return bool(fastpath.fetch(session, _PG_ATTESTED_UPSERT, params))
    return session.execute(_SQLITE_ATTESTED_UPSERT, {**params, "day": day.isoformat()}).first() is not None


def usage(session: Session, *, institution_id: str, day: date) -> tuple[int, int]:
    """(answers, answers with an attested consent) counted for this institution and day."""
    row = session.execute(select(QuotaUsage.used, QuotaUsage.attested)
                          .where(QuotaUsage.institution_id == institution_id, QuotaUsage.day == day)).first()
    return (row.used, row.attested) if row is not None else (0, 0)
