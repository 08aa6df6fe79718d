"""SQL for subjects' pseudonyms: the link from a person's blind index to the access events about them.

An access event names its subject by a random pseudonym of (blind index, month), never by anything
derived from the identity number (SPEC.md section 4, "Leaves"). The pseudonym is made on the month's
first event about that blind index and deleted when the person is forgotten or the month's events pass
their retention period; the events then name nobody anyone can find. Every lookup of a person's events
goes through `pseudonyms_for` (the events written before pseudonyms are found through an epoch `v1` row
whose pseudonym is the blind index they carry), so a blind-index key rotation changes one column here
(`rekey`) as it changes `persons.blind_index`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from register.storage.models import AccessEvent, SubjectPseudonym

LEGACY_EPOCH = "v1"
_T = SubjectPseudonym

# One statement that both databases run alike (SQLite 3.24+ and PostgreSQL 9.5+): two requests making
# the same month's pseudonym at once keep the first, and both then read it.
_MAKE = text("INSERT INTO subject_pseudonyms (pseudonym, blind_index, epoch, epoch_end) "
             "VALUES (:pseudonym, :blind_index, :epoch, :epoch_end) "
             "ON CONFLICT (blind_index, epoch) DO NOTHING")


def epoch_of(at: datetime) -> tuple[str, datetime]:
    """The month `at` falls in (UTC), and the first moment of the next one."""
    at = at.astimezone(UTC)
    end = datetime(at.year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=UTC)
    return f"{at.year:04d}-{at.month:02d}", end


def _current(session: Session, blind_index: bytes, epoch: str) -> bytes | None:
    found = session.execute(select(_T.pseudonym).where(_T.blind_index == blind_index, _T.epoch == epoch)).scalar()
    return bytes(found) if found is not None else None


def pseudonym_at(session: Session, blind_index: bytes, at: datetime) -> bytes:
    """The pseudonym events about this blind index carry in `at`'s month, made if it is the first."""
    epoch, end = epoch_of(at)
    found = _current(session, blind_index, epoch)
    if found is not None:
        return found
    session.execute(_MAKE, {"pseudonym": secrets.token_bytes(32), "blind_index": blind_index, "epoch": epoch,
                            "epoch_end": end})
    made = _current(session, blind_index, epoch)
    assert made is not None
    return made


def pseudonyms_at_once(session: Session, blind_indexes: Sequence[bytes], at: datetime) -> dict[bytes, bytes]:
    """`pseudonym_at` for many blind indexes in a few statements (an answer about a page of persons)."""
    epoch, end = epoch_of(at)
    wanted = sorted(set(blind_indexes))
    out: dict[bytes, bytes] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows = session.execute(select(_T.blind_index, _T.pseudonym).where(_T.blind_index.in_(chunk), _T.epoch == epoch))
        out.update((bytes(b), bytes(p)) for b, p in rows)
        missing = [b for b in chunk if b not in out]
        if missing:
            session.execute(_MAKE, [{"pseudonym": secrets.token_bytes(32), "blind_index": b, "epoch": epoch,
                                     "epoch_end": end} for b in missing])
            rows = session.execute(select(_T.blind_index, _T.pseudonym)
                                   .where(_T.blind_index.in_(missing), _T.epoch == epoch))
            out.update((bytes(b), bytes(p)) for b, p in rows)
    assert len(out) == len(wanted)
    return out


def pseudonyms_for(session: Session, blind_index: bytes) -> list[bytes]:
    """Every subject the events about this blind index carry that can still be linked to it: one per
    month with events, and the blind index itself for events written before pseudonyms (epoch `v1`)."""
    return [bytes(p) for p in session.scalars(select(_T.pseudonym).where(_T.blind_index == blind_index))]


def is_about(session: Session, subject: bytes, blind_index: bytes) -> bool:
    """Whether an event's subject is one of this blind index's pseudonyms."""
    return session.execute(select(func.count()).select_from(_T).where(
        _T.pseudonym == subject, _T.blind_index == blind_index)).scalar_one() > 0


def rekey(session: Session, old: bytes, new: bytes) -> int:
    """For a blind-index key rotation: the pseudonyms of `old` become `new`'s (the pseudonyms, and the
    old blind index events of leaf version 1 carry, stay as they are). A month `new` already has a
    pseudonym for (events recorded under the new key while the rotation ran) keeps both: the moved one
    takes a label of its own (`r` and 6 random hex digits) with the same `epoch_end`, so it is still
    found, forgotten and expired with the person's others. How many rows moved. (A pseudonym made under `new`
    after this looked fails the move on the unique key: the caller runs it again, and then it is seen.)"""
    taken = set(session.scalars(select(_T.epoch).where(_T.blind_index == new)))
    moved = 0
    for pseudonym, epoch in session.execute(select(_T.pseudonym, _T.epoch).where(_T.blind_index == old)).all():
        values: dict[str, object] = {"blind_index": new}
        if epoch in taken:
            values["epoch"] = "r" + secrets.token_hex(3)
        session.execute(SubjectPseudonym.__table__.update().where(SubjectPseudonym.__table__.c.pseudonym == pseudonym)
                        .values(**values))
        moved += 1
    return moved


def forget(session: Session, blind_indexes: Sequence[bytes]) -> int:
    """Delete every pseudonym of these blind indexes (persons being forgotten): their events stay, and
    name nobody. How many were deleted."""
    n = 0
    for i in range(0, len(blind_indexes), 500):
        n += int(session.execute(delete(_T).where(_T.blind_index.in_(blind_indexes[i : i + 500]))).rowcount or 0)
    return n


def count_expired(session: Session, *, cutoff: datetime) -> tuple[int, int]:
    """(pseudonyms whose epoch's events are all older than `cutoff`, the events they still link)."""
    expired = select(_T.pseudonym).where(_T.epoch_end <= cutoff)
    keys = int(session.execute(select(func.count()).select_from(expired.subquery())).scalar_one())
    events = int(session.execute(select(func.count()).select_from(AccessEvent)
                                 .where(AccessEvent.subject.in_(expired))).scalar_one())
    return keys, events


def delete_expired(session: Session, *, cutoff: datetime, limit: int) -> tuple[int, int]:
    """Delete up to `limit` pseudonyms whose epoch's events are all older than `cutoff` (locked, and those
    another transaction holds skipped). (pseudonyms deleted, events they linked)."""
    ids = [bytes(p) for p in session.scalars(
        select(_T.pseudonym).where(_T.epoch_end <= cutoff).order_by(_T.pseudonym).limit(limit)
        .with_for_update(skip_locked=True))]
    if not ids:
        return 0, 0
    events = int(session.execute(select(func.count()).select_from(AccessEvent)
                                 .where(AccessEvent.subject.in_(ids))).scalar_one())
    session.execute(delete(_T).where(_T.pseudonym.in_(ids), _T.epoch_end <= cutoff))
    return len(ids), events
