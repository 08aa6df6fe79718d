"""SQL for the key lifecycle: key versions and fingerprints, and the batches a rotation rewrites."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, inspect, or_, select, tuple_, update
from sqlalchemy.orm import Session

from register.storage.models import Dispute, KeyVersion, Notice, NotificationSubscription, Person, ReportChunk, WebSession


def has_key_table(session: Session) -> bool:
    """False on a database migrated before key_versions existed (then nothing is checked)."""
    return inspect(session.connection()).has_table("key_versions")


def key_versions(session: Session) -> list[KeyVersion]:
    return list(session.execute(select(KeyVersion).order_by(KeyVersion.kind, KeyVersion.version)).scalars())


def key_epoch(session: Session) -> tuple[tuple[str, int, str], ...]:
    """What processes compare to notice a rotation step: every (kind, version, state)."""
    rows = session.execute(select(KeyVersion.kind, KeyVersion.version, KeyVersion.state)
                           .order_by(KeyVersion.kind, KeyVersion.version)).all()
    return tuple((r.kind, r.version, r.state) for r in rows)


def add_key_version(session: Session, *, kind: str, version: int, state: str, fingerprint: str, now: datetime) -> None:
    session.add(KeyVersion(kind=kind, version=version, state=state, fingerprint=fingerprint, created_at=now,
                           changed_at=now))
    session.flush()


def set_key_state(session: Session, *, kind: str, version: int, state: str, now: datetime) -> None:
    session.execute(update(KeyVersion).where(KeyVersion.kind == kind, KeyVersion.version == version)
                    .values(state=state, changed_at=now))


def any_encrypted_data(session: Session) -> bool:
    """Whether anything is stored under a key yet (a person, a dispute, a web session, an upload)."""
    return any(session.execute(select(m).limit(1)).first() is not None
               for m in (Person.id, Dispute.id, WebSession.token_hash, ReportChunk.idx))


def sample_person(session: Session) -> Person | None:
    return session.execute(select(Person).limit(1)).scalar_one_or_none()


@dataclass(frozen=True)
class EncryptedColumns:
    """A table's encrypted columns, its key columns (for keyset pagination) and how a row's AAD id is made."""

    table: str
    model: Any
    keys: tuple[Any, ...]
    columns: tuple[str, ...]

    def row_id(self, key: tuple[Any, ...]) -> str:
        return ":".join(str(k) for k in key)


ENCRYPTED = (
    EncryptedColumns("persons", Person, (Person.id,), ("national_id_enc",)),
    EncryptedColumns("disputes", Dispute, (Dispute.id,), ("text_enc", "statement_enc")),
    EncryptedColumns("web_sessions", WebSession, (WebSession.token_hash,), ("national_id_enc",)),
    EncryptedColumns("report_chunks", ReportChunk, (ReportChunk.report_id, ReportChunk.idx), ("data",)),
    # A person's address for notices, and what a notice waiting to be sent will say (services.notices).
    EncryptedColumns("notification_subscriptions", NotificationSubscription, (NotificationSubscription.id,),
                     ("email_enc",)),
    EncryptedColumns("notices", Notice, (Notice.id,), ("body_enc",)),
)


def encrypted_batch(session: Session, spec: EncryptedColumns, *, after: tuple[Any, ...] | None,
                    limit: int) -> list[Any]:
    """The next rows (key columns, then the encrypted columns) in key order after `after`."""
    cols = [*spec.keys, *(getattr(spec.model, c) for c in spec.columns)]
    stmt = select(*cols).order_by(*spec.keys).limit(limit)
    if after is not None:
        stmt = stmt.where(tuple_(*spec.keys) > tuple_(*after)) if len(spec.keys) > 1 else stmt.where(
            spec.keys[0] > after[0])
    return list(session.execute(stmt).all())


def replace_ciphertext(session: Session, spec: EncryptedColumns, *, key: tuple[Any, ...], column: str,
                       old: bytes, new: bytes) -> bool:
    """Compare-and-set: a concurrent writer's newer value is never overwritten by a rotation."""
    col = getattr(spec.model, column)
    cond = and_(*(k == v for k, v in zip(spec.keys, key, strict=True)), col == old)
    return session.execute(update(spec.model).where(cond).values({column: new})).rowcount == 1


def count_rows(session: Session, spec: EncryptedColumns) -> int:
    return session.execute(select(func.count()).select_from(spec.model)).scalar_one()


# Blind-index rotation (services.keys): persons carry their index under the other live key in
# blind_index_next during a rotation; web sessions keep the subject they were opened with, recomputed.

def persons_batch(session: Session, *, after: str | None, limit: int) -> list[Any]:
    stmt = select(Person.id, Person.country, Person.national_id_enc, Person.blind_index, Person.blind_index_next)
    if after is not None:
        stmt = stmt.where(Person.id > after)
    return list(session.execute(stmt.order_by(Person.id).limit(limit)).all())


def set_person_indexes(session: Session, *, person_id: str, old: bytes, blind_index: bytes,
                       blind_index_next: bytes | None) -> bool:
    stmt = (update(Person).where(Person.id == person_id, Person.blind_index == old)
            .values(blind_index=blind_index, blind_index_next=blind_index_next))
    return session.execute(stmt).rowcount == 1


def persons_with_next(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Person).where(Person.blind_index_next.is_not(None))).scalar_one()


def clear_next(session: Session, *, limit: int) -> int:
    ids = select(Person.id).where(Person.blind_index_next.is_not(None)).limit(limit).scalar_subquery()
    return session.execute(update(Person).where(Person.id.in_(ids)).values(blind_index_next=None)).rowcount


def web_sessions_batch(session: Session, *, after: str | None, limit: int) -> list[Any]:
    stmt = select(WebSession.token_hash, WebSession.country, WebSession.national_id_enc, WebSession.subject)
    if after is not None:
        stmt = stmt.where(WebSession.token_hash > after)
    return list(session.execute(stmt.order_by(WebSession.token_hash).limit(limit)).all())


def set_web_session_subject(session: Session, *, token_hash: str, old: bytes, subject: bytes) -> None:
    session.execute(update(WebSession).where(WebSession.token_hash == token_hash, WebSession.subject == old)
                    .values(subject=subject))


def persons_by_any_index(session: Session, values: Sequence[bytes]) -> list[Person]:
    return list(session.execute(select(Person).where(
        or_(Person.blind_index.in_(values), Person.blind_index_next.in_(values)))).scalars())
