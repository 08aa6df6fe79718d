"""SQL for notices to persons: their subscriptions, the queue of notices to send, and the notifier's cursor.

The notifier reads access events after they committed, through the transparency log's leaves: the
integrator numbers them without gaps in the order it takes them, so a cursor on the leaf index misses
no event and reads none twice (an event's own sequence number can commit out of order on PostgreSQL).
Nothing here is on the path of an answer: the lookups write nothing for notices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from register.storage import outbox
from register.storage.models import AccessEvent, Institution, LogLeaf, Person, SubjectPseudonym
from register.storage.notice_tables import Notice, NotificationSubscription, NotifierCursor

ACCESS_EVENTS = "access_events"
LOOKUP_ACTION = "exposure:query"
_S = NotificationSubscription


def subscription_of(session: Session, blind_index: bytes) -> NotificationSubscription | None:
    return session.execute(select(_S).where(_S.blind_index == blind_index)).scalar_one_or_none()


def subscription_by_token(session: Session, token_hash: str, *, lock: bool = False) -> NotificationSubscription | None:
    stmt = select(_S).where(_S.token_hash == token_hash)
    return session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()


def subscription_by_id(session: Session, subscription_id: str) -> NotificationSubscription | None:
    return session.get(_S, subscription_id)


def save_subscription(session: Session, row: NotificationSubscription) -> None:
    session.add(row)
    session.flush()


def delete_subscriptions(session: Session, ids: Sequence[str]) -> int:
    """Delete these subscriptions (address and all) and every notice still waiting for them."""
    if not ids:
        return 0
    session.execute(delete(Notice).where(Notice.subscription_id.in_(ids)))
    return int(session.execute(delete(_S).where(_S.id.in_(ids))).rowcount or 0)


def add_notice(session: Session, values: dict[str, Any]) -> None:
    session.execute(insert(Notice), [values])


def delete_waiting(session: Session, subscription_id: str, *, kind: str) -> None:
    session.execute(delete(Notice).where(Notice.subscription_id == subscription_id, Notice.kind == kind))


def waiting_count(session: Session, subscription_id: str) -> int:
    return int(session.execute(select(func.count()).select_from(Notice)
                               .where(Notice.subscription_id == subscription_id)).scalar_one())


# --- the cursor over the log ------------------------------------------------------------------------


def lock_cursor(session: Session, name: str = ACCESS_EVENTS) -> int:
    """The cursor's position, locked to the end of the transaction (one notifier at a time reads events;
    on SQLite the write lock taken at BEGIN does it). Made at the log's current end if missing."""
    found = session.execute(select(NotifierCursor.position).where(NotifierCursor.name == name)
                            .with_for_update()).scalar()
    if found is not None:
        return int(found)
    top = session.execute(select(func.max(LogLeaf.leaf_index))).scalar()
    position = -1 if top is None else int(top)
    session.execute(insert(NotifierCursor).values(name=name, position=position))
    return position


def move_cursor(session: Session, position: int, name: str = ACCESS_EVENTS) -> None:
    session.execute(update(NotifierCursor).where(NotifierCursor.name == name).values(position=position))


def last_leaf_after(session: Session, position: int, limit: int) -> int | None:
    """The leaf index `limit` leaves after `position` (or the last one), None if there is none after it."""
    rows = session.execute(select(LogLeaf.leaf_index).where(LogLeaf.leaf_index > position)
                           .order_by(LogLeaf.leaf_index).limit(limit)).scalars().all()
    return int(rows[-1]) if rows else None


def lookups_for_subscribers(session: Session, *, after: int, upto: int) -> list[Any]:
    """Lookups among the leaves (after, upto] about persons whose confirmed subscription wants lookups and
    was confirmed before the lookup: (subscription id, digest, event id, time, institution name, purpose,
    outcome, reason)."""
    e, p, s = AccessEvent.__table__.c, SubjectPseudonym.__table__.c, _S.__table__.c
    stmt = (
        select(s.id.label("subscription_id"), s.digest, e.id.label("event_id"), e.occurred_at, e.purpose, e.outcome,
               e.reason, Institution.__table__.c.name.label("institution"))
        .select_from(LogLeaf.__table__)
        .join(AccessEvent.__table__, e.seq == LogLeaf.__table__.c.event_seq)
        .join(SubjectPseudonym.__table__, p.pseudonym == e.subject)
        .join(_S.__table__, s.blind_index == p.blind_index)
        .outerjoin(Institution.__table__, Institution.__table__.c.id == e.actor_id)
        .where(LogLeaf.__table__.c.leaf_index > after, LogLeaf.__table__.c.leaf_index <= upto,
               e.action == LOOKUP_ACTION, e.actor_type == "institution", s.confirmed_at.is_not(None),
               s.confirmed_at <= e.occurred_at, s.events.like("%lookup%"))
        .order_by(LogLeaf.__table__.c.leaf_index)
    )
    return list(session.execute(stmt).all())


# --- sending ------------------------------------------------------------------------------------------


def claim_due(session: Session, *, now: datetime, lease_until: datetime, limit: int) -> list[tuple[Notice, _S]]:
    """Up to `limit` notices due at `now` with their subscriptions, claimed until `lease_until` (rows
    another notifier holds are skipped): a notifier that dies while sending leaves them to be sent again
    when the lease ends (at least once)."""
    rows = session.execute(select(Notice).where(Notice.next_attempt_at <= now).order_by(Notice.next_attempt_at)
                           .limit(limit).with_for_update(skip_locked=True)).scalars().all()
    if not rows:
        return []
    session.execute(update(Notice).where(Notice.id.in_([n.id for n in rows])).values(next_attempt_at=lease_until))
    subs = {s.id: s for s in session.execute(select(_S).where(_S.id.in_({n.subscription_id for n in rows}))).scalars()}
    return [(n, subs[n.subscription_id]) for n in rows if n.subscription_id in subs]


def delete_notices(session: Session, ids: Sequence[str]) -> None:
    if ids:
        session.execute(delete(Notice).where(Notice.id.in_(ids)))


def retry_notices(session: Session, ids: Sequence[str], *, at: datetime, error: str) -> None:
    if ids:
        session.execute(update(Notice).where(Notice.id.in_(ids))
                        .values(attempts=Notice.attempts + 1, next_attempt_at=at, last_error=error[:200]))


def release_notices(session: Session, ids: Sequence[str], *, at: datetime) -> None:
    """Give claimed notices back unsent, due at `at` (a digest not yet due), no attempt counted."""
    if ids:
        session.execute(update(Notice).where(Notice.id.in_(ids)).values(next_attempt_at=at))


def pending_counts(session: Session, *, now: datetime) -> tuple[int, int, int]:
    """(notices waiting, of them due now, of them that failed at least once)."""
    total = int(session.execute(select(func.count()).select_from(Notice)).scalar_one())
    due = int(session.execute(select(func.count()).select_from(Notice).where(Notice.next_attempt_at <= now)).scalar_one())
    failed = int(session.execute(select(func.count()).select_from(Notice).where(Notice.attempts > 0)).scalar_one())
    return total, due, failed


# --- retention -------------------------------------------------------------------------------------


def expired_unconfirmed(session: Session, *, before: datetime, limit: int) -> list[str]:
    """Subscriptions never confirmed whose confirmation link expired before `before`."""
    return list(session.execute(select(_S.id).where(_S.confirmed_at.is_(None), _S.token_expires_at < before)
                                .order_by(_S.id).limit(limit)).scalars())


def unlinked(session: Session, *, limit: int) -> list[str]:
    """Subscriptions of persons the register no longer knows: no person row and no pseudonym under their
    blind index (forgotten, or every event about them past its period)."""
    s = _S.__table__.c
    person = exists().where(or_(Person.blind_index == s.blind_index, Person.blind_index_next == s.blind_index))
    pseud = exists().where(and_(SubjectPseudonym.blind_index == s.blind_index))
    return list(session.execute(select(s.id).where(~person, ~pseud).order_by(s.id).limit(limit)).scalars())


# --- the outbox's changes (consents, disputes, credit bans) -----------------------------------------------

OUTBOX_CONSUMER = "notices"
KIND_OF_TYPE = {"consent": "consent", "dispute": "dispute", "credit_ban": "credit_ban"}


def outbox_for_subscribers(session: Session, *, after: int, limit: int) -> tuple[list[Any], int | None]:
    """The outbox's events after seq `after` (up to `limit`) about persons whose confirmed subscription wants
    their kind and was confirmed before the event: (rows, the last seq read or None if none). Each row:
    subscription id, digest, event id, type, time, institution name, data."""
    events = outbox.events_after(session, after, limit=limit)
    if not events:
        return [], None
    about = {e.person_id for e in events if e.person_id}
    subs: dict[str, NotificationSubscription] = {}
    if about:
        rows = session.execute(select(Person.id, _S).join(_S, or_(_S.blind_index == Person.blind_index,
                                                                  _S.blind_index == Person.blind_index_next))
                               .where(Person.id.in_(about), _S.confirmed_at.is_not(None))).all()
        subs = {pid: sub for pid, sub in rows}
    names = dict(session.execute(select(Institution.id, Institution.name).where(
        Institution.id.in_({e.institution_id for e in events if e.institution_id}))).all())
    out = []
    for e in events:
        sub = subs.get(e.person_id) if e.person_id else None
        kind = KIND_OF_TYPE.get(e.type.split(".")[0])
        if sub is None or kind is None or kind not in sub.events.split(",") or sub.confirmed_at > e.occurred_at:
            continue
        out.append({"subscription_id": sub.id, "digest": sub.digest, "event_id": e.id, "type": e.type,
                    "occurred_at": e.occurred_at, "institution": names.get(e.institution_id, ""),
                    "data": e.data or {}})
    return out, events[-1].seq


def rekey(session: Session, old: bytes, new: bytes) -> int:
    """For a blind-index key rotation: the subscription under `old` moves to `new` (as `pseudonyms.rekey`). One
    already under `new` (the person, signed in under the new key while the rotation ran, saved their choice) is
    their newest: the one under `old` goes, with what waited for it, as a replaced address's does."""
    if subscription_of(session, new) is not None:
        delete_subscriptions(session, list(session.scalars(select(_S.id).where(_S.blind_index == old))))
        return 0
    return int(session.execute(update(_S).where(_S.blind_index == old).values(blind_index=new)).rowcount or 0)
