"""One SQLite writer at a time, queued by the operating system instead of SQLite's busy handler.

Every transaction on SQLite takes the write lock at BEGIN (storage.db). When it is taken, SQLite's busy
handler retries after sleeps that grow to 100 ms, and a newcomer may take the lock between two sleeps of
an older waiter: measured with 16 lenders on one process, p50 19 ms but p99 1.4 s and client timeouts
(BENCHMARKS.md). Here a writer first takes its turn in first-come order among the threads of its process,
then an `flock` on a file beside the database among the processes on this host (`register serve` runs
several; the one thread of each process that waits for the file asks again every 0.25 ms at most). Only then
does it send BEGIN IMMEDIATE, which no longer waits. The connection gives its turn back right after its
COMMIT or ROLLBACK (or when it is closed).

Turns are fair: first come, first served among threads (a plain lock let one thread lose the race many times
over), and a process stands back while another one waits for the file (each waiter holds a shared lock on a
second file, `...-writer.lock.waiting`, while it waits). Without that, the process whose turn had just
ended took the next one straight away, ahead of the other's waiter, which only asked every few
milliseconds: with 16 lenders on two processes the p99 was 209-273 ms (BENCHMARKS.md, eighth round).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import deque
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

_FD = "register.writer_gate.fd"
_WAITING_FD = "register.writer_gate.waiting_fd"
STAND_BACK = 0.01  # the longest a process stands back for another process's waiter
_HELD = "register.writer_gate.held"


class GateTimeout(OperationalError):
    """The write lock was not free within the wait allowed, as SQLite says "database is locked" after its
    busy timeout: the same error, so a request gets the same 503 (database_unavailable)."""

    def __init__(self, timeout: float) -> None:
        super().__init__("BEGIN IMMEDIATE", None, sqlite3.OperationalError(f"no write turn within {timeout:g} s"))


class WriterGate:
    def __init__(self, lock_path: str | None, *, timeout: float = 30.0) -> None:
        """`lock_path` None: a database only this process sees (in memory), the thread lock is enough."""
        self.lock_path = lock_path
        self.timeout = timeout
        self._threads = FifoLock()

    def acquire(self, info: dict[str, Any]) -> None:
        if info.get(_HELD):
            return  # a second transaction on the same checked-out connection
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            raise GateTimeout(self.timeout)
        if self.lock_path is None:
            info[_HELD] = True
            return
        try:
            fd = info.get(_FD)
            if fd is None:
                fd = info[_FD] = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                info[_WAITING_FD] = os.open(self.lock_path + ".waiting", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._flock(fd, info[_WAITING_FD], deadline)
        except BaseException:
            self._threads.release()
            raise
        info[_HELD] = True

    def _flock(self, fd: int, waiting: int, deadline: float) -> None:
        """The turn among processes. Only one thread of each process waits here (the others wait on the
        thread lock), so it asks again every 0.25 ms at most: one process's commit is seen within 0.25 ms, and
        a holder that never lets go fails the wait as SQLite's busy timeout did. First it stands back while
        another process's waiter holds `waiting` (for STAND_BACK at most), then it holds `waiting` itself."""
        if _someone_waits(waiting):
            until = min(time.monotonic() + STAND_BACK, deadline)
            while _someone_waits(waiting) and time.monotonic() < until:
                time.sleep(0.0001)
        fcntl.flock(waiting, fcntl.LOCK_SH)
        try:
            pause = 0.0001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise GateTimeout(self.timeout) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.00025)
        finally:
            fcntl.flock(waiting, fcntl.LOCK_UN)

    def release(self, info: dict[str, Any]) -> None:
        if not info.pop(_HELD, False):
            return
        try:
            if _FD in info:
                fcntl.flock(info[_FD], fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def forget(self, info: dict[str, Any]) -> None:
        """A connection closed or invalidated: release what it held, close its lock file."""
        self.release(info)
        for key in (_FD, _WAITING_FD):
            fd = info.pop(key, None)
            if fd is not None:
                os.close(fd)


def _someone_waits(waiting: int) -> bool:
    """Whether a waiter (of another process: this one's is not waiting now) holds the `waiting` file."""
    try:
        fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(waiting, fcntl.LOCK_UN)
    return False


class FifoLock:
    """A lock handed to its waiters in the order they came: a released turn goes straight to the oldest
    waiter, so no thread can take it again ahead of one already waiting."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            mine = threading.Lock()
            mine.acquire()
            self._waiters.append(mine)
        if mine.acquire(timeout=timeout):
            return True  # handed over by `release`
        with self._mutex:
            try:
                self._waiters.remove(mine)
                return False
            except ValueError:  # handed over just as the wait ran out: the turn is this thread's
                return True

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # still held: now by the oldest waiter
            else:
                self._held = False


def connection_factory(gate: WriterGate) -> type[sqlite3.Connection]:
    """The class `sqlite3.connect` makes connections of (its `factory`): a connection that gives its turn
    back right after its COMMIT or ROLLBACK is sent, or when it is closed."""

    class GatedConnection(sqlite3.Connection):
        def take_turn(self) -> None:
            gate.acquire(self.__dict__)

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                gate.release(self.__dict__)

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                gate.release(self.__dict__)

        def close(self) -> None:
            try:
                super().close()
            finally:
                gate.forget(self.__dict__)

    return GatedConnection


def install(engine: Engine) -> None:
    """Take the connection's turn before every BEGIN on `engine` (made with `connection_factory`)."""

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        dbapi = conn.connection.dbapi_connection
        dbapi.take_turn()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi.rollback()
            raise
