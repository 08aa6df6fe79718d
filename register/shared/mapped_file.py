"""The counters of one host's server processes, with no server to run: a file in shared memory
(/dev/shm), mapped by each process and changed under an exclusive flock.

The file holds one JSON document (an 8-byte length, then the bytes): the rate buckets by key, the slots
in flight by key (each slot naming its process), and the generations. A change reads it, changes it and
writes it back while holding the lock, so the processes see one sequence of changes. A slot whose process
has died is dropped when the key is next acquired: a killed worker's slots free themselves at once. The
clock is CLOCK_MONOTONIC, which every process of a host shares.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from register.errors import LimitsUnavailable
from register.shared import Slot
from register.shared.bucket import is_full, take_token

SIZE = 16 * 1024 * 1024  # in tmpfs only the pages written take memory
PRUNE_AT = 1024 * 1024  # past this many bytes, full buckets are forgotten
HEADER = struct.Struct("<Q")


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


class FileCounters:
    remote = False
    shared = True

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < SIZE:
                os.ftruncate(self._fd, SIZE)
            self._map = mmap.mmap(self._fd, SIZE)
        except OSError as exc:
            raise LimitsUnavailable(f"the shared limits file {path} cannot be opened: {exc.strerror}") from exc
        self._thread_lock = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self._pid = os.getpid()
        self._tag = f"{self._pid}.{uuid.uuid4().hex[:8]}"  # this handle's slots, whichever handles a process has
        self._ids = 0

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                (length,) = HEADER.unpack_from(self._map, 0)
                state = orjson.loads(self._map[HEADER.size:HEADER.size + length]) if length else {}
                state.setdefault("b", {}), state.setdefault("s", {}), state.setdefault("g", {})
                yield state
                data = orjson.dumps(state)
                if len(data) > PRUNE_AT:
                    now = time.monotonic()
                    state["b"] = {k: v for k, v in state["b"].items()
                                  if not is_full((v[0], v[1]), now=now, rate=v[2], burst=v[3])}  # fmt: skip
                    data = orjson.dumps(state)
                if len(data) > SIZE - HEADER.size:
                    raise LimitsUnavailable("the shared limits file is full")
                self._map[HEADER.size:HEADER.size + len(data)] = data
                HEADER.pack_into(self._map, 0, len(data))
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def take(self, key: str, *, rate: float, burst: int) -> float:
        if rate <= 0:
            return 0.0
        with self._state() as state:
            held = state["b"].get(key)
            (tokens, when), wait = take_token(None if held is None else (held[0], held[1]), now=time.monotonic(),
                                              rate=rate, burst=burst)
            state["b"][key] = [tokens, when, rate, burst]
            return wait

    def acquire(self, bounds: Sequence[tuple[str, int]]) -> Slot | None:
        with self._state() as state:
            slots: dict[str, dict[str, int]] = state["s"]
            for key, bound in bounds:
                held = slots.get(key, {})
                if len(held) >= bound:
                    alive = {pid: _alive(pid) for pid in set(held.values())}
                    held = slots[key] = {s: pid for s, pid in held.items() if alive[pid]}
                    if len(held) >= bound:
                        return None
            self._ids += 1
            slot = Slot(f"{self._tag}.{self._ids}", tuple(key for key, _ in bounds))
            for key in slot.keys:
                slots.setdefault(key, {})[slot.id] = self._pid
            return slot

    def release(self, slot: Slot) -> None:
        with self._state() as state:
            for key in slot.keys:
                held = state["s"].get(key, {})
                held.pop(slot.id, None)
                if not held:
                    state["s"].pop(key, None)

    def in_flight(self, key: str) -> int:
        with self._state() as state:
            return len(state["s"].get(key, {}))

    def generation(self, name: str) -> int:
        with self._state() as state:
            return int(state["g"].get(name, 0))

    def advance(self, name: str) -> int:
        with self._state() as state:
            state["g"][name] = int(state["g"].get(name, 0)) + 1
            return state["g"][name]

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
