"""SQL for the daily quota: one conditional upsert per exposure answer."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

from register.storage import fastpath

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


def take_quota(session: Session, *, institution_id: str, day: date, quota: int) -> int | None:
    """Count one more answer for this institution and day; the new count, or None if `quota` is reached."""
    params = {"institution_id": institution_id, "day": day, "quota": quota}
    if fastpath.is_pg(session):
        rows = fastpath.fetch(session, _PG_UPSERT, params)
        return rows[0].used if rows else None
    # SQLite: the ISO text that SQLAlchemy's Date type stores there.
    return session.execute(_SQLITE_UPSERT, {**params, "day": day.isoformat()}).scalar_one_or_none()
