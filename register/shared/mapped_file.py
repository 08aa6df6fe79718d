"""The counters of one host's server processes, with no server to run: a file in shared memory
(/dev/shm), mapped by each process and changed under an exclusive flock.

The file holds three fixed tables of fixed-size records, each found by a 16-byte hash of its key (open
addressing): the rate buckets (tokens, when counted), the slots in flight (the key's total, and a count per
process that has used it), and the generations. A change reads and writes only its own records while
holding the lock, so the processes see one sequence of changes, and its cost does not grow with the number
of institutions. A record never moves once made, so each process remembers where its keys' records (and,
in a slot record, its own count) are: a change is then a few bytes read and written between two flock
calls, not a search (three of them an exposure answer, 37 microseconds before, BENCHMARKS.md). A slot's
count is kept under its process's pid, beside the total: when a key is at its bound, the counts of
processes that have died are taken off the total and their places freed, so a killed worker's slots free
themselves at the next request. The clock is CLOCK_MONOTONIC, which every process of a host shares.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import mmap
import os
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from register.errors import LimitsUnavailable
from register.shared import Slot
from register.shared.bucket import take_token

KEY = 16  # bytes of a key's hash; all zero: an empty record
EMPTY = bytes(KEY)
BUCKET = struct.Struct("<dd")  # tokens, when counted
BUCKETS = 1 << 16  # two per institution (the general and the attested rate)
HOLDERS = 64  # live processes that may have used one key's slots
TOTAL = struct.Struct("<q")  # a slot record's total in flight, then its holders
PAIR = struct.Struct("<ii")  # (pid, count) of one holder; pid 0: a free place
HOLDER = struct.Struct(f"<q{2 * HOLDERS}i")  # the whole slot record after its hash
SLOTS = 1 << 14  # two per institution (requests, uploads)
GENERATION = struct.Struct("<q")
GENERATIONS = 256
MAGIC = b"register-limits-2"  # 2: slot records with their total
BUCKETS_AT = 64
SLOTS_AT = BUCKETS_AT + BUCKETS * (KEY + BUCKET.size)
GENERATIONS_AT = SLOTS_AT + SLOTS * (KEY + HOLDER.size)
SIZE = GENERATIONS_AT + GENERATIONS * (KEY + GENERATION.size)  # ~11 MiB; in tmpfs only written pages count


def default_path(data_dir: Path, tag: str) -> Path:
    """Where a supervisor puts its workers' file: /dev/shm if the host has it, else the data directory."""
    shm = Path("/dev/shm")
    return (shm if shm.is_dir() and os.access(shm, os.W_OK) else data_dir) / f"register-limits-{tag}"


def remove_abandoned(directory: Path) -> None:
    """Remove the files of supervisors that died without removing theirs (killed): named by their pid."""
    for path in directory.glob("register-limits-*"):
        pid = path.name.removeprefix("register-limits-").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def create(path: Path) -> Path:
    """An empty store at `path` (emptied if it was there): done once, before the workers start."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.ftruncate(fd, SIZE)
        os.pwrite(fd, MAGIC, 0)
    finally:
        os.close(fd)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _hash(key: str) -> bytes:
    digest = hashlib.blake2b(key.encode(), digest_size=KEY).digest()
    return digest if digest != EMPTY else b"\x01" + digest[1:]


class _Locked:
    """The file's lock: the process's threads take turns (flock does not exclude threads sharing one
    descriptor), then the processes (flock). A class, not a generator: the change it guards is a few bytes,
    and a @contextmanager cost as much again."""

    __slots__ = ("_fd", "_threads")

    def __init__(self, fd: int) -> None:
        self._fd, self._threads = fd, threading.Lock()

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *_: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


class FileCounters:
    remote = False
    shared = True

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size == 0:  # a new file: made here (else by `create`)
                    os.ftruncate(self._fd, SIZE)
                    os.pwrite(self._fd, MAGIC, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            if os.fstat(self._fd).st_size < SIZE or os.pread(self._fd, len(MAGIC), 0) != MAGIC:
                raise LimitsUnavailable(f"{path} is not a limits file of this version (remove it: `register "
                                        "serve` makes its own)")
            self._map = mmap.mmap(self._fd, SIZE)
        except OSError as exc:
            raise LimitsUnavailable(f"the shared limits file {path} cannot be opened: {exc.strerror}") from exc
        self._locked = _Locked(self._fd)
        self._pid = os.getpid()
        self._ids = itertools.count()
        self._records: dict[tuple[int, str], int] = {}  # (table, key): its record's offset, once made
        self._mine: dict[str, int] = {}  # slot key: the offset of this process's (pid, count) in its record

    def _record(self, at: int, size: int, count: int, key: str, *, add: bool) -> int | None:
        """`_find`, remembered: a record, once made, stays where it is for the file's life."""
        off = self._records.get((at, key))
        if off is None:
            off = self._find(at, size, count, key, add=add)
            if off is not None:
                self._records[(at, key)] = off
        return off

    def _find(self, at: int, size: int, count: int, key: str, *, add: bool) -> int | None:
        """The offset of `key`'s record in the table at `at` (records of `size` bytes after the hash): made
        if `add`, else None if it has none."""
        h = _hash(key)
        first = int.from_bytes(h[:8], "little") % count
        for i in itertools.chain(range(first, count), range(first)):
            off = at + i * (KEY + size)
            held = self._map[off:off + KEY]
            if held == h:
                return off + KEY
            if held == EMPTY:
                if not add:
                    return None
                self._map[off:off + KEY] = h
                return off + KEY
        raise LimitsUnavailable("the shared limits file is full")

    def take(self, key: str, *, rate: float, burst: int) -> float:
        if rate <= 0:
            return 0.0
        with self._locked:
            off = self._record(BUCKETS_AT, BUCKET.size, BUCKETS, key, add=True)
            tokens, when = BUCKET.unpack_from(self._map, off)
            held = None if when == 0.0 else (tokens, when)
            (tokens, when), wait = take_token(held, now=time.monotonic() or 1e-9, rate=rate, burst=burst)
            BUCKET.pack_into(self._map, off, tokens, when)
            return wait

    def _slot_record(self, key: str) -> tuple[int, int]:
        """`key`'s slot record and this process's place in it (taken the first time: a free place, or one
        a dead process held)."""
        off = self._record(SLOTS_AT, HOLDER.size, SLOTS, key, add=True)
        assert off is not None
        mine = self._mine.get(key)
        if mine is None:
            places = range(off + TOTAL.size, off + HOLDER.size, PAIR.size)
            pids = [PAIR.unpack_from(self._map, at)[0] for at in places]
            if self._pid not in pids and 0 not in pids:
                self._drop_dead(off)
                pids = [PAIR.unpack_from(self._map, at)[0] for at in places]
            if self._pid in pids:
                mine = places[pids.index(self._pid)]
            elif 0 in pids:
                mine = places[pids.index(0)]
                PAIR.pack_into(self._map, mine, self._pid, 0)
            else:
                raise LimitsUnavailable(f"more than {HOLDERS} processes hold one institution's slots")
            self._mine[key] = mine
        return off, mine

    def _drop_dead(self, off: int) -> int:
        """Free the places of processes that have died, their counts off the record's total: the total."""
        (total,) = TOTAL.unpack_from(self._map, off)
        for at in range(off + TOTAL.size, off + HOLDER.size, PAIR.size):
            pid, count = PAIR.unpack_from(self._map, at)
            if pid and pid != self._pid and not _alive(pid):
                total -= count
                PAIR.pack_into(self._map, at, 0, 0)
        TOTAL.pack_into(self._map, off, total)
        return total

    def acquire(self, bounds: Sequence[tuple[str, int]]) -> Slot | None:
        with self._locked:
            records = [self._slot_record(key) for key, _ in bounds]
            for (off, _), (_, bound) in zip(records, bounds):
                if TOTAL.unpack_from(self._map, off)[0] >= bound and self._drop_dead(off) >= bound:
                    return None
            for off, mine in records:
                TOTAL.pack_into(self._map, off, TOTAL.unpack_from(self._map, off)[0] + 1)
                pid, count = PAIR.unpack_from(self._map, mine)
                PAIR.pack_into(self._map, mine, pid, count + 1)
            return Slot(f"{self._pid}.{next(self._ids)}", tuple(key for key, _ in bounds))

    def release(self, slot: Slot) -> None:
        with self._locked:
            for key in slot.keys:
                off, mine = self._slot_record(key)
                pid, count = PAIR.unpack_from(self._map, mine)
                if count > 0:  # the place stays this process's, with its count of none
                    PAIR.pack_into(self._map, mine, pid, count - 1)
                    TOTAL.pack_into(self._map, off, TOTAL.unpack_from(self._map, off)[0] - 1)

    def in_flight(self, key: str) -> int:
        with self._locked:
            off = self._record(SLOTS_AT, HOLDER.size, SLOTS, key, add=False)
            return 0 if off is None else TOTAL.unpack_from(self._map, off)[0]

    def generation(self, name: str) -> int:
        with self._locked:
            off = self._record(GENERATIONS_AT, GENERATION.size, GENERATIONS, name, add=False)
            return 0 if off is None else GENERATION.unpack_from(self._map, off)[0]

    def advance(self, name: str) -> int:
        with self._locked:
            off = self._record(GENERATIONS_AT, GENERATION.size, GENERATIONS, name, add=True)
            (value,) = GENERATION.unpack_from(self._map, off)
            GENERATION.pack_into(self._map, off, value + 1)
            return value + 1

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
