"""Counters the server processes share: the per-institution rate buckets, the per-institution requests in
flight, and the generation the token caches compare against (SPEC section 7, "Processes and hosts").

One interface, three stores, chosen once at startup by `open_counters`:

- `MemoryCounters`: in this process only; one server process, and the tests.
- `FileCounters`: a file mapped into memory (in /dev/shm), locked with flock, for the processes of one
  host with no server to run: what `register serve` uses when it starts several workers and no URL is set.
- `RedisCounters`: one Redis (REGISTER_LIMITS_URL) for the processes of many hosts; each change is one
  Lua script, so it is atomic however many processes ask at once.

A slot in flight belongs to its process: if the process dies, the slot frees itself (the file store checks
whether the holder's process lives; in Redis a slot expires unless its process renews it). A store that
does not answer raises `register.errors.LimitsUnavailable` (503): a request is never served unbounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Slot:
    """One request's place under each of `keys`, until released."""

    id: str
    keys: tuple[str, ...]


class Counters(Protocol):
    remote: bool  # True: a call may wait on the network, so the event loop hands it to a thread
    shared: bool  # True: other processes see the same counters

    def take(self, key: str, *, rate: float, burst: int) -> float:
        """Take a token from `key`'s bucket (`burst` tokens, refilled at `rate` a second): 0.0 if one was
        there, else the seconds until one will be (nothing taken)."""
        ...

    def acquire(self, bounds: Sequence[tuple[str, int]]) -> Slot | None:
        """A slot under every (key, bound) at once, or None (nothing taken) if any key has its bound."""
        ...

    def release(self, slot: Slot) -> None: ...

    def in_flight(self, key: str) -> int: ...

    def generation(self, name: str) -> int:
        """A counter that only grows (0 until first advanced)."""
        ...

    def advance(self, name: str) -> int: ...

    def close(self) -> None: ...


def open_counters(*, url: str | None = None, file: Path | None = None, prefix: str = "register") -> Counters:
    """The store the settings name: Redis at `url`, else the file, else this process's memory."""
    if url:
        from register.shared.redis_store import RedisCounters

        return RedisCounters(url, prefix=prefix)
    if file is not None:
        from register.shared.mapped_file import FileCounters

        return FileCounters(file)
    from register.shared.memory import MemoryCounters

    return MemoryCounters()
