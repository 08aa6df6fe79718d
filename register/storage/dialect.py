"""The statements that PostgreSQL and SQLite run differently, behind one interface.

Most SQL in storage is Core and runs as is on both databases. A few statements have two shapes: the
lender's hot path (sent straight to psycopg as prepared statements on PostgreSQL, see
`storage.dialects.postgres`), the quota upserts (SQLite keeps `Date` as text), the integrator's lock,
and the batch writes (binary COPY on PostgreSQL, executemany on SQLite). Each lives in one method of a
`Statements` implementation per database (`storage.dialects.postgres`, `storage.dialects.sqlite`).

The implementation is chosen once, by `storage.db.make_sessionmaker` for its engine, and every session it
makes carries it in `session.info`: a repository function asks `statements(session)` and never looks at
the dialect itself. Rows come back as named tuples (or ORM rows) with the same field names on both
databases, and times in UTC, as `UTCDateTime` returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, Select, Table
from sqlalchemy.orm import Session

KEY = "register.statements"  # the key in `Session.info`
UNLIMITED = 2**62  # a quota that is off, where a statement compares with one


@dataclass(frozen=True, slots=True)
class QuotaTake:
    """One answer to count against an institution's daily quota: `quota` (UNLIMITED if off), and, for an
    answer with an attested consent (`count_attested`), the `attested` quota too (UNLIMITED if off)."""

    institution_id: str
    day: date
    quota: int
    attested: int = UNLIMITED
    count_attested: bool = False

    def shards_open(self, shards: int) -> int:
        """How many of `shards` counters have room at all: shard i's share of a total T is
        T // shards, plus one for i < T % shards, so with a quota under `shards` the last ones get none."""
        return min(shards, self.quota, self.attested if self.count_attested else UNLIMITED)


def shard_share(total: int, shards: int, shard: int) -> int:
    """Shard `shard`'s part of `total` split over `shards` counters; the parts add up to `total` exactly,
    so however answers spread over the shards, together they never pass it (storage.quota)."""
    return total // shards + (1 if shard < total % shards else 0)


@dataclass(frozen=True, slots=True)
class LenderRead:
    """What a lender's question reads, in one statement (`LenderConnection.read`): the person (id or None),
    the consent (a row with `id, institution_id, consent_person, purpose, expires_at, revoked_at, source`, or
    None), this month's pseudonym of the blind index (None if it has none yet) and, only when the statement
    itself found the consent active for this institution, person and purpose (`granted`), the person's
    lines (as `debt_rows_for_person`) and the credit ban in force (as `active_ban_brief`)."""

    person_id: str | None
    consent: Any
    pseudonym: bytes | None
    granted: bool
    lines: list[Any]
    ban: Any
    sequential: bool = False  # the institution asked about a serial neighbour within the window (services.sequential)


class LenderConnection(Protocol):
    """The lender's hot path on one pooled connection of its own, with no ORM session (storage.exposure):
    each call is one round trip and its own transaction, so nothing is held between them."""

    def read(self, *, blind_index: bytes, consent_id: str, institution_id: str, purpose: str, epoch: str,
             now: datetime, neighbours: Sequence[bytes] = (), since: datetime | None = None) -> LenderRead:
        """Everything the answer reads, in one statement; the debts are read only past the consent's check.
        With `neighbours` (blind indexes, at most two) and `since`, also whether this institution made an
        exposure query about any of them in [since, now): the `sequential_lookups` probe, in the same statement."""

    def make_pseudonym(self, *, pseudonym: bytes, blind_index: bytes, epoch: str, epoch_end: datetime) -> bytes:
        """The month's pseudonym of a blind index that had none when read: `pseudonym` made, or the one a
        concurrent answer made first (as `storage.pseudonyms.pseudonym_at`)."""

    def grant_answer(self, *, quota: QuotaTake | None, event: dict[str, Any], record: dict[str, Any],
                     encoded: bytes) -> int | None:
        """As `Statements.grant_answer`, committed (durable) when it returns."""


class AsyncLenderConnection(Protocol):
    """`LenderConnection`'s statements, awaited on the event loop (`LenderPool`)."""

    async def read(self, *, blind_index: bytes, consent_id: str, institution_id: str, purpose: str, epoch: str,
                   now: datetime, neighbours: Sequence[bytes] = (), since: datetime | None = None) -> LenderRead: ...

    async def make_pseudonym(self, *, pseudonym: bytes, blind_index: bytes, epoch: str,
                             epoch_end: datetime) -> bytes: ...

    async def grant_answer(self, *, quota: QuotaTake | None, event: dict[str, Any], record: dict[str, Any],
                           encoded: bytes) -> int | None: ...


class LenderPool(Protocol):
    """One server process's connections for the lender's hot path on its event loop."""

    def connection(self) -> AbstractAsyncContextManager[AsyncLenderConnection]:
        """A connection, given back when the block ends; waits as the engine's pool would, then fails as it."""

    async def close(self) -> None: ...


class Statements(Protocol):
    """One method per statement that has a shape of its own on each database."""

    # --- the exposure query: one method per statement, so each can be tuned on its own --------------
    def person_and_consent(self, session: Session, *, blind_index: bytes, consent_id: str) -> tuple[str | None, Any]:
        """The person with this blind index (id or None) and the consent with this id (row or None)."""

    def debt_rows_for_person(self, session: Session, person_id: str) -> list[Any]:
        """The person's lines of debt (see `storage.exposure.debt_rows_for_person`)."""

    def active_ban_brief(self, session: Session, person_id: str, now: datetime) -> Any:
        """The credit ban in force (id, reason, since), or None."""

    def add_event(self, session: Session, values: dict[str, Any]) -> int:
        """Insert one access event; its `seq`."""

    def add_exposure_record(self, session: Session, values: dict[str, Any], *, encoded: bytes) -> None:
        """Store an answer; `encoded` is its canonical JSON."""

    def debt_rows_and_ban(self, session: Session, person_id: str, now: datetime) -> tuple[list[Any], Any]:
        """`debt_rows_for_person` and `active_ban_brief` together (on PostgreSQL in one round trip)."""

    def grant_answer(self, session: Session, *, quota: QuotaTake | None, event: dict[str, Any],
                     record: dict[str, Any], encoded: bytes) -> int | None:
        """A granted answer's writes: count it against `quota` (None: no quota applies), then insert its
        access `event` and its stored answer `record` (`encoded`: its canonical JSON). The event's `seq`, or
        None, and nothing written, if the quota is used up. On PostgreSQL one statement, which ends the
        transaction (it is sent with its COMMIT): after it, the caller writes nothing more of the answer's,
        and a refusal recorded after a None starts a new transaction. On SQLite the caller commits."""

    def lender_connection(self, engine: Engine) -> AbstractContextManager[LenderConnection] | None:
        """A connection of `engine`'s pool for the lender's hot path, given back when the block ends; None
        where the database has none (SQLite: its writer gate and BEGIN IMMEDIATE belong to sessions)."""

    def lender_pool(self, engine: Engine, *, size: int, timeout: float,
                    connect_args: dict[str, object]) -> LenderPool | None:
        """This process's connections to `engine`'s database for the lender's hot path on the event loop (at
        most `size`; `timeout` and `connect_args` as the engine's pool's); None where there are none (SQLite)."""

    # --- the transparency log ---------------------------------------------------------------------------
    def try_lock_integrator(self, session: Session, key: int) -> bool:
        """Whether this transaction may integrate (one integrator at a time)."""

    # --- the outbox and its consumers (storage.outbox, storage.webhooks) --------------------------------
    def lock_outbox(self, session: Session) -> None:
        """Before an outbox insert: hold writers of the outbox one at a time until this transaction ends, so
        `seq` order is commit order (PostgreSQL: an advisory lock; SQLite: the writer gate already does)."""

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        """`stmt` taking its rows for this transaction, passing over rows another transaction holds
        (PostgreSQL: FOR UPDATE SKIP LOCKED, so several dispatchers share the work; SQLite: as is, one
        writer at a time)."""

    def insert_ignore(self, session: Session, table: Table, values: dict[str, Any]) -> None:
        """Insert one row unless one with its key is there already."""

    # --- batch writes -----------------------------------------------------------------------------------
    overlapping_writers: bool
    """Whether two transactions may write at once, each waiting only for the rows the other locks."""

    def bound_lock_waits(self, session: Session, seconds: float) -> None:
        """For the rest of this transaction, a statement waiting longer than `seconds` for a lock fails."""

    def persons_by_blind_index(self, session: Session, keys: list[bytes]) -> list[tuple[str, bytes]]:
        """(id, blind_index) of the persons with these blind indexes, locked against deletion (not against
        each other) until the transaction ends."""

    def obligations_for_update(self, session: Session, *, institution_id: str, refs: list[str]) -> list[Any]:
        """The institution's obligations with these references (id, external_ref, as_of, state_hash,
        retracted_at, version), locked for this transaction where the database locks rows."""

    def insert_rows(self, session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert many rows, all with the same keys. A JSON column's value may be its encoded JSON (bytes).
        A unique violation raises SQLAlchemy's IntegrityError, as a Core statement's would."""

    def insert_tuples(self, session: Session, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """`insert_rows` with each row a tuple of `columns`' values: no dict made per row on the batch path."""

    def add_persons(self, session: Session, rows: list[dict[str, Any]]) -> set[bytes]:
        """Insert persons, skipping any whose blind index another transaction has taken; the blind
        indexes of the rows skipped."""

    def update_obligations(self, session: Session, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
        """Set `columns` of many obligations (by `id`), clearing any retraction."""

    def readable_json(self, column: Any) -> Any:
        """`column` (storage.types.WrittenJson) as JSON a query can read into (`expr["key"].as_string()`)."""


def statements(session: Session) -> Statements:
    """The implementation this session's sessionmaker was made with."""
    try:
        return session.info[KEY]
    except KeyError:
        raise RuntimeError("a session not made by storage.db.make_sessionmaker has no statements") from None
