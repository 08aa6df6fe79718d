"""Writing a report's batches in file order, each in a transaction of its own with the report's progress
(services.reports).

A batch is planned (its persons resolved, its stored lines locked, each line decided: reads and Python) and
then written (COPY, the report's progress, COMMIT). Where two transactions may write at once (PostgreSQL),
two batches are in flight on two connections: the next one is planned while the one before it is written and
committed, so that the database's writing and the register's deciding overlap instead of taking turns
(a lone report's writing thread waited for PostgreSQL half of its time, a third of it for the writes:
BENCHMARKS.md, ingest, sixteenth round). On SQLite (one writer at a time) a batch is planned and written in
one go.

What keeps two batches in flight as correct as one at a time:
- a batch is planned only once every batch before it but the last has committed, and once that last one has
  too if they name a line in common (its plan would not see the other's uncommitted change);
- a batch commits only after the one before it did (one committing thread, in file order): the report's
  progress never passes a line whose batch is not committed;
- a person the batch before added (not committed yet) makes the next plan's insert wait for that commit, then
  find the row (storage.bulk.add_persons);
- a batch whose writes fail on a unique key (a single report committed one of its lines meanwhile), or wait
  longer than LOCK_WAIT for a lock, is rolled back with every batch after it, and they are planned and written
  again one at a time, as they would have been (storage.db.again_on_conflict). Any other failure stops the
  report at the last committed batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from register.storage.bulk import bound_lock_waits, waited_too_long
from register.storage.db import again_on_conflict

# The longest a batch's writes wait for a lock before it and the batch after it are rolled back and done again
# one at a time. The batch after holds its rows, idle, until this one commits: a transaction waiting for one of
# them while this one waits for it would be a deadlock that PostgreSQL cannot see (one edge of it is here).
LOCK_WAIT = 2.0


@dataclass(eq=False)
class Batch:
    """Lines of a report, in file order, with the progress that their commit records."""

    lines: list[Any]
    last_line: int
    bytes_read: int
    refs: frozenset[str]
    committed: Future[None] | None = field(default=None, repr=False)


class _Again(Exception):
    """This batch was rolled back, to be planned and written again: it, or a batch before it, met a row a
    concurrent transaction committed, or waited longer than LOCK_WAIT for a lock."""


class BatchWriter:
    """Takes a report's batches in file order (`submit`) and writes each with `plan(session, batch)` then
    `write(session, batch, plan)` in one transaction; `close` waits for the last one and raises what stopped
    any. `overlap`: two batches in flight (PostgreSQL), else one."""

    def __init__(self, sessions: sessionmaker[Session], plan: Callable[[Session, Batch], Any],
                 write: Callable[[Session, Batch, Any], None], *, overlap: bool) -> None:  # fmt: skip
        self.sessions, self.plan, self.write = sessions, plan, write
        self._planner = ThreadPoolExecutor(1, thread_name_prefix="report-writer")
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="report-committer") if overlap else None
        self._planning: Future[None] | None = None  # the last batch handed to the planning thread
        self._open: deque[Batch] = deque()  # planned, not known to be committed (the planning thread's)

    def submit(self, batch: Batch) -> None:
        """Hand over the next batch once the one before it is planned (raising what stopped that one): the
        caller reads and prepares the batch after while this one is planned and written."""
        if self._planning is not None:
            self._planning.result()
        self._planning = self._planner.submit(self._one, batch)

    def close(self) -> None:
        """Wait until every batch is committed; raise what stopped one."""
        try:
            if self._planning is not None:
                self._planning.result()
            self._planner.submit(self._settle, None).result()
        finally:
            self._planner.shutdown(wait=True)
            if self._committer is not None:
                self._committer.shutdown(wait=True)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        # Stopping: no batch is planned after this, and the ones planned end (committed in file order, or
        # rolled back after one that failed) before the report is marked failed.
        self._planner.shutdown(wait=True, cancel_futures=True)
        if self._committer is not None:
            self._committer.shutdown(wait=True)

    # --- the planning thread -----------------------------------------------------------------------------

    def _one(self, batch: Batch) -> None:
        if self._committer is None:
            self._again(batch)
            return
        self._settle(batch)
        session = self.sessions()
        try:
            plan = self.plan(session, batch)
        except BaseException:
            session.rollback()
            session.close()
            raise
        before = self._open[-1] if self._open else None
        batch.committed = self._committer.submit(self._commit, session, batch, plan, before)
        self._open.append(batch)

    def _settle(self, batch: Batch | None) -> None:
        """Before `batch` is planned: wait for the batches in flight it must not overlap (all of them if
        None); the ones that were rolled back to be done again are done again here, one at a time."""
        while self._open:
            first = self._open[0]
            assert first.committed is not None
            if batch is not None and len(self._open) == 1 and not first.committed.done() \
                    and not (first.refs & batch.refs):  # fmt: skip
                return
            try:
                first.committed.result()
            except _Again:
                self._replay()
                return
            self._open.popleft()

    def _replay(self) -> None:
        """Every batch in flight was rolled back (the first met a concurrent row; each after it saw the one
        before it fail): once each has ended, plan and write them again one at a time."""
        again = list(self._open)
        self._open.clear()
        for b in again:
            assert b.committed is not None
            try:
                b.committed.result()
            except _Again:
                pass
        for b in again:
            self._again(b)

    def _again(self, batch: Batch) -> None:
        again_on_conflict(self.sessions, lambda s: self.write(s, batch, self.plan(s, batch)))

    # --- the committing thread ---------------------------------------------------------------------------

    def _commit(self, session: Session, batch: Batch, plan: Any, before: Batch | None) -> None:
        with session:
            try:
                # The batch before was committed or failed already: one committing thread, in file order.
                if before is not None and before.committed is not None and before.committed.exception() is not None:
                    raise _Again
                bound_lock_waits(session, LOCK_WAIT)
                self.write(session, batch, plan)
                session.commit()
            except Exception as exc:
                session.rollback()
                if isinstance(exc, IntegrityError) or waited_too_long(exc):
                    raise _Again from exc
                raise
            except BaseException:
                session.rollback()
                raise
