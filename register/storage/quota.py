"""SQL for the daily quotas: counters an exposure answer takes from in its own writes.

A day's quota is split over shards, `quota_usage` rows (institution_id, day, shard), whose shares add up to
the quota exactly (`storage.dialect.shard_share`). An answer counts itself in one shard with a conditional
upsert that leaves the row alone once the shard's share is used up; the row stays locked until the answer
commits. With one row per institution and day, every answer of an institution waited for the commit of the
one before it (quota off: half as many answers again, BENCHMARKS.md); with shards, answers on different
shards do not wait for each other. An answer whose shard is used up takes from any other shard with room,
locking and re-reading it; it is refused only when no shard has room, so the shares never let the quota be
passed and never refuse while any of it is left. (PostgreSQL: 16 shards, a shard picked at random. SQLite
runs one writer at a time anyway: one shard.)

An answer with an attested consent counts against both quotas, in the same row and statement: both
counters move together or neither does, so a refusal by one quota never uses up the other.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from register.storage.dialect import UNLIMITED, QuotaTake
from register.storage.models import QuotaUsage

__all__ = ["UNLIMITED", "QuotaTake", "usage"]


def usage(session: Session, *, institution_id: str, day: date) -> tuple[int, int]:
    """(answers, answers with an attested consent) counted for this institution and day, over its shards."""
    row = session.execute(select(func.coalesce(func.sum(QuotaUsage.used), 0),
                                 func.coalesce(func.sum(QuotaUsage.attested), 0))
                          .where(QuotaUsage.institution_id == institution_id, QuotaUsage.day == day)).one()
    return int(row[0]), int(row[1])
