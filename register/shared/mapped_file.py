"""The counters of one host's server processes, with no server to run: a file in shared memory
(/dev/shm), mapped by each process and changed under an exclusive flock.

The file holds three fixed tables of fixed-size records, each found by a 16-byte hash of its key (open
addressing): the rate buckets (tokens, when counted), the slots in flight (a count per holding process),
and the generations. A change reads and writes only its own records while holding the lock, so the
processes see one sequence of changes, and its cost does not grow with the number of institutions. A
slot's count is kept under its process's pid: when a key is at its bound, the counts of processes that
have died are dropped, so a killed worker's slots free themselves at the next request. The clock is
CLOCK_MONOTONIC, which every process of a host shares.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from register.errors import LimitsUnavailable
from register.shared import Slot
from register.shared.bucket import take_token

KEY = 16  # bytes of a key's hash; all zero: an empty record
EMPTY = bytes(KEY)
BUCKET = struct.Struct("<dd")  # tokens, when counted
BUCKETS = 1 << 16  # two per institution (the general and the attested rate)
HOLDERS = 64  # processes that may hold one key's slots at once
HOLDER = struct.Struct(f"<{2 * HOLDERS}i")  # (pid, count) per holding process
SLOTS = 1 << 14  # two per institution (requests, uploads)
GENERATION = struct.Struct("<q")
GENERATIONS = 256
MAGIC = b"register-limits-1"
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


class FileCounters:
    remote = False
    shared = True

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size < SIZE:
                    os.ftruncate(self._fd, SIZE)
                    os.pwrite(self._fd, MAGIC, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, SIZE)
        except OSError as exc:
            raise LimitsUnavailable(f"the shared limits file {path} cannot be opened: {exc.strerror}") from exc
        if self._map[:len(MAGIC)] != MAGIC:
            raise LimitsUnavailable(f"{path} is not a limits file of this version")
        self._thread_lock = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self._pid = os.getpid()
        self._ids = itertools.count()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

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
        with self._locked():
            off = self._find(BUCKETS_AT, BUCKET.size, BUCKETS, key, add=True)
            tokens, when = BUCKET.unpack_from(self._map, off)
            held = None if when == 0.0 else (tokens, when)
            (tokens, when), wait = take_token(held, now=time.monotonic() or 1e-9, rate=rate, burst=burst)
            BUCKET.pack_into(self._map, off, tokens, when)
            return wait

    def acquire(self, bounds: Sequence[tuple[str, int]]) -> Slot | None:
        with self._locked():
            offsets = [self._find(SLOTS_AT, HOLDER.size, SLOTS, key, add=True) for key, _ in bounds]
            for off, (_, bound) in zip(offsets, bounds):
                holders = list(HOLDER.unpack_from(self._map, off))
                if sum(holders[1::2]) >= bound:
                    for i in range(0, len(holders), 2):
                        if holders[i] and not _alive(holders[i]):
                            holders[i] = holders[i + 1] = 0
                    HOLDER.pack_into(self._map, off, *holders)
                    if sum(holders[1::2]) >= bound:
                        return None
            for off in offsets:
                holders = list(HOLDER.unpack_from(self._map, off))
                pids = holders[0::2]
                i = 2 * (pids.index(self._pid) if self._pid in pids else pids.index(0) if 0 in pids else -1)
                if i < 0:
                    raise LimitsUnavailable(f"more than {HOLDERS} processes hold one institution's slots")
                holders[i], holders[i + 1] = self._pid, holders[i + 1] + 1
                HOLDER.pack_into(self._map, off, *holders)
            return Slot(f"{self._pid}.{next(self._ids)}", tuple(key for key, _ in bounds))

    def release(self, slot: Slot) -> None:
        with self._locked():
            for key in slot.keys:
                off = self._find(SLOTS_AT, HOLDER.size, SLOTS, key, add=False)
                if off is None:
                    continue
                holders = list(HOLDER.unpack_from(self._map, off))
                pids = holders[0::2]
                if self._pid in pids:
                    i = 2 * pids.index(self._pid)
                    holders[i + 1] -= 1
                    if holders[i + 1] <= 0:
                        holders[i] = holders[i + 1] = 0
                    HOLDER.pack_into(self._map, off, *holders)

    def in_flight(self, key: str) -> int:
        with self._locked():
            off = self._find(SLOTS_AT, HOLDER.size, SLOTS, key, add=False)
            return 0 if off is None else sum(HOLDER.unpack_from(self._map, off)[1::2])

    def generation(self, name: str) -> int:
        with self._locked():
            off = self._find(GENERATIONS_AT, GENERATION.size, GENERATIONS, name, add=False)
            return 0 if off is None else GENERATION.unpack_from(self._map, off)[0]

    def advance(self, name: str) -> int:
        with self._locked():
            off = self._find(GENERATIONS_AT, GENERATION.size, GENERATIONS, name, add=True)
            (value,) = GENERATION.unpack_from(self._map, off)
            GENERATION.pack_into(self._map, off, value + 1)
            return value + 1

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
