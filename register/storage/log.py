"""SQL for the transparency log: pending queue, leaves, complete nodes, checkpoints."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from register.storage.dialect import statements
from register.storage.models import AccessEvent, LogCheckpoint, LogKey, LogLeaf, LogNode, LogPending

INTEGRATOR_LOCK = 0x7265_6769  # an arbitrary advisory-lock key: "regi"


def try_lock_integrator(session: Session) -> bool:
    """One integrator at a time. PostgreSQL: a transaction-scoped advisory lock. SQLite: the write lock
    taken at BEGIN already serialises writers."""
    return statements(session).try_lock_integrator(session, INTEGRATOR_LOCK)


_EVENTS = AccessEvent.__table__


def _from_first_pending():  # noqa: ANN202
    """`access_events.seq` from the oldest pending event on. Every join of the queue with the events is
    bounded by it, so that no plan reads the events already in the tree: without it PostgreSQL merged
    the queue with the events' primary key from the first event, reading the whole table (309,000 rows,
    150 ms) for each batch of 800 pending events (BENCHMARKS.md, seventh round)."""
    return _EVENTS.c.seq >= select(func.min(LogPending.event_seq)).scalar_subquery()


def pending_events(session: Session, limit: int) -> list:
    """The oldest events not yet in the tree, as rows with the events' attribute names (Core, not ORM
    objects: the integrator runs beside the answers, and building entities was a fifth of its time)."""
    stmt = (
        select(_EVENTS)
        .join(LogPending, LogPending.event_seq == _EVENTS.c.seq)
        .where(_from_first_pending())
        .order_by(_EVENTS.c.seq)
        .limit(limit)
    )
    return list(session.execute(stmt).all())


def count_pending(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(LogPending)).scalar() or 0)


def oldest_pending_time(session: Session):  # noqa: ANN201
    stmt = (select(func.min(AccessEvent.occurred_at)).join(LogPending, LogPending.event_seq == AccessEvent.seq)
            .where(_from_first_pending()))
    return session.execute(stmt).scalar()


def tree_size(session: Session) -> int:
    top = session.execute(select(func.max(LogLeaf.leaf_index))).scalar()
    return 0 if top is None else int(top) + 1


def add_leaves(session: Session, rows: list[dict], nodes: list[tuple[tuple[int, int], bytes]], seqs: list[int]) -> None:
    """The batch's leaves and nodes as table rows (binary COPY on PostgreSQL): through the ORM's bulk insert
    they were 4.7 % of a server's GIL time under exposure load (py-spy), the integrator running beside it."""
    insert_rows = statements(session).insert_rows
    if rows:
        insert_rows(session, LogLeaf.__table__, rows)
    if nodes:
        insert_rows(session, LogNode.__table__, [{"level": lv, "idx": ix, "hash": h} for (lv, ix), h in nodes])
    session.execute(delete(LogPending).where(LogPending.event_seq.in_(seqs)))


class DbNodeReader:
    """merkle.NodeReader over `log_nodes`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_nodes(self, ids: list[tuple[int, int]]) -> list[bytes]:
        if not ids:
            return []
        found: dict[tuple[int, int], bytes] = {}
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            cond = or_(*(and_(LogNode.level == lv, LogNode.idx == ix) for lv, ix in chunk))
            for lv, ix, h in self.session.execute(select(LogNode.level, LogNode.idx, LogNode.hash).where(cond)):
                found[(lv, ix)] = h
        missing = [i for i in ids if i not in found]
        if missing:
            raise LookupError(f"log nodes missing: {missing[:5]}")
        return [found[i] for i in ids]


def add_checkpoint(session: Session, checkpoint: LogCheckpoint) -> LogCheckpoint:
    session.add(checkpoint)
    session.flush()
    return checkpoint


def latest_checkpoint(session: Session) -> LogCheckpoint | None:
    stmt = select(LogCheckpoint).order_by(LogCheckpoint.id.desc()).limit(1)
    return session.execute(stmt).scalar_one_or_none()


def checkpoints_since(session: Session, size: int, limit: int) -> list[LogCheckpoint]:
    stmt = select(LogCheckpoint).where(LogCheckpoint.size >= size).order_by(LogCheckpoint.id).limit(limit)
    return list(session.execute(stmt).scalars())


def all_checkpoints(session: Session) -> list[LogCheckpoint]:
    return list(session.execute(select(LogCheckpoint).order_by(LogCheckpoint.id)).scalars())


def leaf_by_hash(session: Session, leaf_hash: bytes) -> LogLeaf | None:
    return session.execute(select(LogLeaf).where(LogLeaf.leaf_hash == leaf_hash)).scalar_one_or_none()


def leaf_indexes_for(session: Session, seqs: list[int]) -> dict[int, int]:
    if not seqs:
        return {}
    rows = session.execute(select(LogLeaf.event_seq, LogLeaf.leaf_index).where(LogLeaf.event_seq.in_(seqs)))
    return {s: i for s, i in rows}


def leaves_with_events(session: Session, start: int, end: int) -> list[tuple[LogLeaf, AccessEvent | None]]:
    """Leaves [start, end) in order, each with its event (None if the event row is gone)."""
    stmt = (
        select(LogLeaf, AccessEvent)
        .outerjoin(AccessEvent, AccessEvent.seq == LogLeaf.event_seq)
        .where(LogLeaf.leaf_index >= start, LogLeaf.leaf_index < end)
        .order_by(LogLeaf.leaf_index)
    )
    return [(leaf, ev) for leaf, ev in session.execute(stmt)]


def event_by_id(session: Session, event_id: str) -> AccessEvent | None:
    return session.execute(select(AccessEvent).where(AccessEvent.id == event_id)).scalar_one_or_none()


# --- the log's keys after a rotation (log_keys) -----------------------------------------------------------


def log_keys(session: Session) -> list[LogKey]:
    """Every key since the first rotation, oldest first (empty before it)."""
    return list(session.scalars(select(LogKey).order_by(LogKey.id)))


def active_log_key(session: Session) -> LogKey | None:
    return session.scalars(select(LogKey).where(LogKey.state == "active")).first()


def hand_over_log_key(session: Session, *, old: LogKey | None, new: LogKey) -> LogKey:
    """Retire `old` (added as a row if the log had none yet) and add `new` as the active key."""
    if old is not None:
        if old.id is None:
            session.add(old)
        old.state = "retired"
        session.flush()
    session.add(new)
    session.flush()
    return new
