"""The statements of `storage.dialect.Statements` on SQLite, the embedded default: SQLAlchemy Core, whose
types adapt the columns SQLite keeps as text (times, dates). Batches are executemany; there are no row
locks to take, since the write lock taken at BEGIN already serialises writers (`storage.db`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Engine, Select, Table, bindparam, case, func, insert, literal, or_, select, text, type_coerce, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from register.storage.credit_bans import active_ban_statement
from register.storage.dialect import LenderConnection, LenderPool, QuotaTake
from register.storage.models import (
    AccessEvent, Consent, Dispute, ExposureRecord, Institution, Obligation, ObligationDebtor, Person,
)  # fmt: skip

_PERSON = (select(Person.id).where(or_(Person.blind_index == bindparam("blind_index"),
                                      Person.blind_index_next == bindparam("blind_index"))).limit(1).scalar_subquery())
_PERSON_AND_CONSENT = (
    select(_PERSON.label("person_id"), Consent.institution_id, Consent.person_id.label("consent_person"),
           Consent.purpose, Consent.expires_at, Consent.revoked_at, Consent.source, Consent.id)
    .select_from(select(literal(1).label("one")).subquery())
    .outerjoin(Consent, Consent.id == bindparam("consent_id"))
)  # fmt: skip

_mine = aliased(ObligationDebtor)
_own_count = (
    select(func.count())
    .select_from(ObligationDebtor)
    .where(ObligationDebtor.obligation_id == Obligation.id, ObligationDebtor.role.in_(("primary", "co_debtor")))
    .correlate(Obligation)
    .scalar_subquery()
)
_disputed = (
    select(Dispute.id).where(Dispute.obligation_id == Obligation.id, Dispute.state == "open")
    .correlate(Obligation).exists()
)
_stated = (
    select(Dispute.id)
    .where(Dispute.obligation_id == Obligation.id, Dispute.person_id == bindparam("person_id"),
           Dispute.state == "upheld", Dispute.statement_enc.is_not(None))
    .correlate(Obligation).exists()
)  # fmt: skip
_LINES = (
    select(Obligation.id, Obligation.institution_id, Obligation.external_ref, Obligation.kind, Obligation.currency,
           Obligation.balance, Obligation.credit_limit, Obligation.monthly_payment, Obligation.overdue_amount,
           Obligation.days_past_due, Obligation.status, Obligation.as_of, Obligation.collects_institution_id,
           Obligation.collects_external_ref, Obligation.handed_to_institution_id, Obligation.handed_to_external_ref,
           _mine.role, Institution.name.label("creditor"),
           _own_count.label("own_debtors"), _disputed.label("disputed"), _stated.label("stated"))
    .join(_mine, _mine.obligation_id == Obligation.id)
    .join(Institution, Institution.id == Obligation.institution_id)
    .where(_mine.person_id == bindparam("person_id"), Obligation.retracted_at.is_(None))
)  # fmt: skip

# See storage.quota: one shard (0) on SQLite, whose writers take turns anyway. `day` is bound as the ISO
# text that SQLAlchemy's Date type stores on SQLite.
_QUOTA = text("""
INSERT INTO quota_usage (institution_id, day, shard, used, attested) VALUES (:institution_id, :day, 0, 1, :count)
ON CONFLICT (institution_id, day, shard) DO UPDATE
  SET used = quota_usage.used + 1, attested = quota_usage.attested + :count
WHERE quota_usage.used < :quota AND quota_usage.attested + :count <= :attested
RETURNING used
""")

_INSERT_EVENT = insert(AccessEvent).returning(AccessEvent.seq)
_INSERT_EXPOSURE = insert(ExposureRecord)
_BATCH = 500  # ids per IN list


class SqliteStatements:
    """`storage.dialect.Statements` on SQLite."""

    overlapping_writers = False

    def bound_lock_waits(self, session: Session, seconds: float) -> None:
        """One writer at a time: a transaction that writes holds no other's turn."""

    def person_and_consent(self, session: Session, *, blind_index: bytes, consent_id: str) -> tuple[str | None, Any]:
        row = session.execute(_PERSON_AND_CONSENT, {"blind_index": blind_index, "consent_id": consent_id}).one()
        return row.person_id, (row if row.id is not None else None)

    def debt_rows_for_person(self, session: Session, person_id: str) -> list[Any]:
        return list(session.execute(_LINES, {"person_id": person_id}).all())

    def active_ban_brief(self, session: Session, person_id: str, now: datetime) -> Any:
        return session.scalars(active_ban_statement(person_id, now)).first()

    def add_event(self, session: Session, values: dict[str, Any]) -> int:
        return session.execute(_INSERT_EVENT, values).scalar_one()

    def add_exposure_record(self, session: Session, values: dict[str, Any], *, encoded: bytes) -> None:
        session.execute(_INSERT_EXPOSURE, values)

    def debt_rows_and_ban(self, session: Session, person_id: str, now: datetime) -> tuple[list[Any], Any]:
        return self.debt_rows_for_person(session, person_id), self.active_ban_brief(session, person_id, now)

    def lender_connection(self, engine: Engine) -> AbstractContextManager[LenderConnection] | None:
        """None: on SQLite the lender's question goes through a session (the writer gate, BEGIN IMMEDIATE)."""
        return None

    def lender_pool(self, engine: Engine, *, size: int, timeout: float,
                    connect_args: dict[str, object]) -> LenderPool | None:
        """None: as `lender_connection`."""
        return None

    def grant_answer(self, session: Session, *, quota: QuotaTake | None, event: dict[str, Any],
                     record: dict[str, Any], encoded: bytes) -> int | None:
        """Statement by statement: the write lock taken at BEGIN makes them one step for other writers."""
        if quota is not None:
            params = {"institution_id": quota.institution_id, "day": quota.day.isoformat(), "quota": quota.quota,
                      "attested": quota.attested, "count": int(quota.count_attested)}
            if session.execute(_QUOTA, params).first() is None:
                return None
        seq = self.add_event(session, event)
        self.add_exposure_record(session, record, encoded=encoded)
        return seq

    def try_lock_integrator(self, session: Session, key: int) -> bool:
        """The write lock taken at BEGIN already serialises writers."""
        return True

    def lock_outbox(self, session: Session) -> None:
        """The write lock taken at BEGIN already serialises writers."""

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        return stmt

    def insert_ignore(self, session: Session, table: Table, values: dict[str, Any]) -> None:
        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())

    def persons_by_blind_index(self, session: Session, keys: list[bytes]) -> list[tuple[str, bytes]]:
        return [(pid, bytes(bidx)) for i in range(0, len(keys), _BATCH)
                for pid, bidx in session.execute(
                    select(Person.id, case((Person.blind_index.in_(keys[i : i + _BATCH]), Person.blind_index),
                                           else_=Person.blind_index_next))
                    .where(or_(Person.blind_index.in_(keys[i : i + _BATCH]),
                               Person.blind_index_next.in_(keys[i : i + _BATCH]))))]

    def obligations_for_update(self, session: Session, *, institution_id: str, refs: list[str]) -> list[Any]:
        return [r for i in range(0, len(refs), _BATCH)
                for r in session.execute(
                    select(Obligation.id, Obligation.external_ref, Obligation.as_of, Obligation.state_hash,
                           Obligation.retracted_at, Obligation.version)
                    .where(Obligation.institution_id == institution_id,
                           Obligation.external_ref.in_(refs[i : i + _BATCH])))]  # fmt: skip

    def insert_rows(self, session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
        encoded = [c for c in rows[0] if isinstance(table.c[c].type, JSON) and isinstance(rows[0][c], bytes)]
        if encoded:  # JSON given encoded: SQLAlchemy's JSON type encodes what it is given
            rows = [{**r, **{c: orjson.loads(r[c]) for c in encoded}} for r in rows]
        session.execute(insert(table), rows)

    def insert_tuples(self, session: Session, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.insert_rows(session, table, [dict(zip(columns, r, strict=True)) for r in rows])

    def add_persons(self, session: Session, rows: list[dict[str, Any]]) -> set[bytes]:
        """The write lock taken at BEGIN keeps other writers out, so no person appears between the batch's
        read and this insert; ON CONFLICT DO NOTHING and the count make that a checked fact, not a hope."""
        stmt = sqlite_insert(Person.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]
        added = session.connection().execute(stmt, rows)
        if added.rowcount == len(rows):
            return set()
        return {r["blind_index"] for r in rows}  # re-read them all: which were skipped is not reported

    def readable_json(self, column: Any) -> Any:
        return type_coerce(column, JSON)  # JSON already: SQLite's json_extract reads it

    def update_obligations(self, session: Session, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
        table = Obligation.__table__
        stmt = (update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(**{c: bindparam(f"b_{c}") for c in columns}, retracted_at=None, retraction_reason=None))
        session.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])
