"""SQLite's writers take turns at the writer gate (register/storage/writer_gate.py): many writers in many
threads and processes all get their turn, none is told "database is locked", and a turn is given back
however its transaction ends. SQLite only: PostgreSQL locks rows, not the database."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from register.storage.db import make_engine


def _write(url: str, who: str, times: int) -> None:
    engine = make_engine(url)
    for i in range(times):
        with engine.begin() as c:
            c.execute(text("INSERT INTO t (who, n) VALUES (:w, :n)"), {"w": who, "n": i})
            # A write that reads what it wrote first: a lost turn would show up as a duplicate or a gap.
            c.execute(text("UPDATE counter SET n = n + 1"))
    engine.dispose()


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/gate.db"
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (who TEXT, n INTEGER)"))
        c.execute(text("CREATE TABLE counter (n INTEGER)"))
        c.execute(text("INSERT INTO counter VALUES (0)"))
    engine.dispose()
    return url


def test_writers_in_threads_and_processes_all_get_their_turn(url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    threads = [threading.Thread(target=_write, args=(url, f"t{k}", 40)) for k in range(6)]
    _run([ctx.Process(target=_write, args=(url, f"p{k}", 40)) for k in range(2)], threads)
    assert _rows(url, "SELECT count(*) FROM t") == [(8 * 40,)]
    assert _rows(url, "SELECT n FROM counter") == [(8 * 40,)]


def _run(procs: list, threads: list[threading.Thread] | tuple = ()) -> None:
    """Start the processes, then the threads; wait for all; every process must exit cleanly."""
    for p in [*procs, *threads]:
        p.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0


def _rows(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql))]
    finally:
        engine.dispose()


def test_a_failed_or_abandoned_transaction_gives_its_turn_back(url: str) -> None:
    engine = make_engine(url)
    with pytest.raises(ZeroDivisionError), engine.begin() as c:
        c.execute(text("INSERT INTO t VALUES ('x', 1)"))
        1 / 0  # noqa: B018
    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES ('y', 1)"))
    conn.invalidate()  # a connection thrown away mid-transaction (as after a network error)
    conn.close()
    done = threading.Event()

    def other() -> None:
        _write(url, "z", 1)
        done.set()

    threading.Thread(target=other, daemon=True).start()
    assert done.wait(timeout=30), "a writer waited for a turn nobody held"
    with engine.connect() as c:
        assert c.execute(text("SELECT who FROM t ORDER BY who")).scalars().all() == ["z"]
    engine.dispose()


def test_a_waiting_writer_proceeds_when_the_holder_commits(url: str) -> None:
    engine = make_engine(url)
    holder = engine.connect()
    holder.begin()
    holder.execute(text("INSERT INTO t VALUES ('first', 1)"))
    done = threading.Event()

    def other() -> None:
        _write(url, "second", 1)
        done.set()

    threading.Thread(target=other, daemon=True).start()
    assert not done.wait(timeout=0.5)  # the holder's turn is not over
    holder.commit()
    holder.close()
    assert done.wait(timeout=30)
    with engine.connect() as c:
        assert c.execute(text("SELECT who FROM t ORDER BY rowid")).scalars().all() == ["first", "second"]
    engine.dispose()


def test_no_turn_within_the_wait_is_the_database_being_busy(url: str) -> None:
    """A writer that cannot get a turn in time gets SQLite's own 'locked' error class (a 503 for a request),
    not a new kind of failure and not a wait without end."""
    from sqlalchemy.exc import OperationalError

    from register.storage.writer_gate import WriterGate

    engine = make_engine(url)
    holder = engine.connect()
    holder.begin()  # this engine's gate holds the lock file
    elsewhere = WriterGate(f"{url.removeprefix('sqlite:///')}-writer.lock", timeout=0.3)  # as in another process
    with pytest.raises(OperationalError):
        elsewhere.acquire({})
    holder.rollback()
    holder.close()
    info: dict = {}
    elsewhere.acquire(info)  # free again: the turn is given
    elsewhere.forget(info)
    engine.dispose()


def _write_slowly(url: str, who: str, times: int, start) -> None:  # noqa: ANN001
    """Writes that hold the turn for a millisecond each, one right after the other, as a busy server does."""
    import time

    engine = make_engine(url)
    start.wait()
    for i in range(times):
        with engine.begin() as c:
            c.execute(text("INSERT INTO t (who, n) VALUES (:w, :n)"), {"w": who, "n": i})
            time.sleep(0.001)
    engine.dispose()


def test_two_busy_processes_take_turns_about(url: str) -> None:
    """A process whose turn has just ended does not take the next one ahead of another process that is
    waiting: with two processes writing without pause, neither runs a long streak while the other waits.
    (Before: the process that had the turn took it again straight away, and the other's writers waited
    for its streak to end; with 16 lenders the p99 was 209-273 ms, now 72 ms: BENCHMARKS.md.)"""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)  # both ready (imported, connected) before either writes
    _run([ctx.Process(target=_write_slowly, args=(url, f"p{k}", 150, start)) for k in range(2)])
    order = [w for (w,) in _rows(url, "SELECT who FROM t ORDER BY rowid")]
    # from when both write until one of them is done
    both = order[max(order.index(w) for w in ("p0", "p1")) : min(len(order) - order[::-1].index(w) for w in ("p0", "p1"))]
    streaks, run = [], 1
    for a, b in zip(both, both[1:], strict=False):
        run = run + 1 if a == b else 1
        streaks.append(run)
    assert len(order) == 300 and len(both) > 100 and max(streaks) <= 5, (max(streaks), "".join(w[1] for w in order))


def test_threads_get_their_turn_in_the_order_they_came() -> None:
    """Among the threads of one process the turn goes to the one that has waited longest."""
    import time

    from register.storage.writer_gate import FifoLock

    lock = FifoLock()
    assert lock.acquire(timeout=1)
    got: list[int] = []

    def take(k: int) -> None:
        assert lock.acquire(timeout=10)
        got.append(k)
        lock.release()

    threads = []
    for k in range(8):
        threads.append(threading.Thread(target=take, args=(k,)))
        threads[-1].start()
        while len(lock._waiters) < k + 1:  # each is waiting before the next one comes
            time.sleep(0.001)
    lock.release()
    for t in threads:
        t.join()
    assert got == list(range(8))
    assert lock.acquire(timeout=0.01)  # free again once every waiter has had its turn
    late = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
    late.start()
    late.join()
    assert got[-1] is False and not lock._waiters  # a wait that runs out leaves the queue
    lock.release()
    assert lock.acquire(timeout=0.01)
