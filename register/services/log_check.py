"""`register audit verify`: feed the operator's check from the database, page by page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from register.audit.fsck import LeafRecord, Problem, Report, check_log
from register.audit.leaf import encode_leaf
from register.services.translog import TransparencyLog
from register.storage import log as store
from register.storage.models import AccessEvent, LogLeaf, LogNode, LogPending
from register.storage.types import utcnow

PAGE = 5000


def _pages(session: Session, size: int) -> Iterator[list[LeafRecord]]:
    for start in range(0, size, PAGE):
        rows = store.leaves_with_events(session, start, min(start + PAGE, size))
        yield [LeafRecord(leaf.leaf_index, leaf.leaf_hash, encode_leaf(ev) if ev is not None else None)
               for leaf, ev in rows]  # fmt: skip


def _node_pages(session: Session, size: int) -> Iterator[dict[tuple[int, int], bytes]]:
    """For each page of leaves [a, b): the stored nodes whose last leaf falls in it."""
    for a in range(0, size, PAGE):
        b = min(a + PAGE, size)
        found: dict[tuple[int, int], bytes] = {}
        level = 0
        while (1 << level) <= b:
            lo = -(-(a + 1) // (1 << level)) - 1  # smallest idx with (idx+1)*2^L - 1 >= a
            hi = b // (1 << level) - 1  # largest idx with (idx+1)*2^L - 1 <= b - 1
            if hi >= lo:
                stmt = select(LogNode.idx, LogNode.hash).where(LogNode.level == level, LogNode.idx.between(lo, hi))
                found.update({(level, ix): h for ix, h in session.execute(stmt)})
            level += 1
        yield found


def verify_log(session: Session, tlog: TransparencyLog) -> Report:
    size = store.tree_size(session)
    checkpoints = [(cp.note, cp.size, cp.root_hash) for cp in store.all_checkpoints(session)]
    report = check_log(_pages(session, size), checkpoints, tlog.key_chain(session), _node_pages(session, size))
    orphans = session.execute(
        select(AccessEvent.id)
        .outerjoin(LogLeaf, LogLeaf.event_seq == AccessEvent.seq)
        .outerjoin(LogPending, LogPending.event_seq == AccessEvent.seq)
        .where(and_(LogLeaf.event_seq.is_(None), LogPending.event_seq.is_(None)))
        .limit(5)
    ).scalars().all()
    for event_id in orphans:
        report.problems.append(Problem(f"access event {event_id} is neither in the tree nor queued for it"))
    oldest = store.oldest_pending_time(session)
    if oldest is not None and utcnow() - oldest > timedelta(seconds=tlog.max_merge_delay):
        report.warnings.append(f"{store.count_pending(session)} events wait longer than the maximum merge delay "
                               f"({tlog.max_merge_delay} s): is the integrator running?")
    return report
