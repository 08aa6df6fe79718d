"""The counters of one process: its threads share them, no other process sees them."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from register.shared import Slot
from register.shared.bucket import take_token


class MemoryCounters:
    remote = False
    shared = False

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._slots: Counter[str] = Counter()
        self._generations: Counter[str] = Counter()
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def take(self, key: str, *, rate: float, burst: int) -> float:
        if rate <= 0:
            return 0.0
        with self._lock:
            self._buckets[key], wait = take_token(self._buckets.get(key), now=self.clock(), rate=rate, burst=burst)
            return wait

    def acquire(self, bounds: Sequence[tuple[str, int]]) -> Slot | None:
        with self._lock:
            if any(self._slots[key] >= bound for key, bound in bounds):
                return None
            for key, _ in bounds:
                self._slots[key] += 1
            return Slot(str(next(self._ids)), tuple(key for key, _ in bounds))

    def release(self, slot: Slot) -> None:
        with self._lock:
            for key in slot.keys:
                self._slots[key] -= 1
                if self._slots[key] <= 0:
                    del self._slots[key]

    def in_flight(self, key: str) -> int:
        return self._slots[key]

    def generation(self, name: str) -> int:
        return self._generations[name]

    def advance(self, name: str) -> int:
        with self._lock:
            self._generations[name] += 1
            return self._generations[name]

    def close(self) -> None:
        pass
