"""The counters of many hosts' server processes: one Redis (REGISTER_LIMITS_URL), every change one Lua
script (atomic), its clock Redis's own (TIME), so the hosts' clocks need not agree.

A slot in flight is a member of a sorted set per key, scored with when it expires: its process renews
the slots it holds every `SLOT_SECONDS / 3` seconds (a thread), so the slots of a process that died
expire within `SLOT_SECONDS`. Keys start with REGISTER_LIMITS_PREFIX: registers sharing one Redis keep
apart. If Redis does not answer within `TIMEOUT_SECONDS`, the call raises `LimitsUnavailable` (503).
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Sequence

import redis
import redis.exceptions

from register.errors import LimitsUnavailable
from register.shared import Slot

SLOT_SECONDS = 30.0
TIMEOUT_SECONDS = 0.5

TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'when')
local tokens, when = tonumber(held[1]) or burst, tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - when) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'when', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.17g', wait)
"""

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl, member = tonumber(ARGV[1]), ARGV[2]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, member)
  redis.call('PEXPIRE', key, math.ceil(ttl * 1000) + 1000)
end
return 1
"""

RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[1 + i]) then
    redis.call('PEXPIRE', key, math.ceil(ttl * 1000) + 1000)
  end
end
return 1
"""

IN_FLIGHT = """
local t = redis.call('TIME')
return redis.call('ZCOUNT', KEYS[1], '(' .. (tonumber(t[1]) + tonumber(t[2]) / 1000000), '+inf')
"""


class RedisCounters:
    remote = True
    shared = True

    def __init__(self, url: str, *, prefix: str = "register", slot_seconds: float = SLOT_SECONDS) -> None:
        self.prefix, self.slot_seconds = prefix, slot_seconds
        self._redis = redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS,
                                           socket_connect_timeout=TIMEOUT_SECONDS, health_check_interval=30)
        self._take = self._redis.register_script(TAKE)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._renew = self._redis.register_script(RENEW)
        self._in_flight = self._redis.register_script(IN_FLIGHT)
        self._process = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count()
        self._held: dict[str, Slot] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{key}"

    def take(self, key: str, *, rate: float, burst: int) -> float:
        if rate <= 0:
            return 0.0
        try:
            return float(self._take(keys=[self._key("rate", key)], args=[repr(float(rate)), burst]))
        except redis.exceptions.RedisError as exc:
            raise LimitsUnavailable() from exc

    def acquire(self, bounds: Sequence[tuple[str, int]]) -> Slot | None:
        slot = Slot(f"{self._process}.{next(self._ids)}", tuple(key for key, _ in bounds))
        keys = [self._key("slots", key) for key in slot.keys]
        try:
            if not self._acquire(keys=keys, args=[repr(self.slot_seconds), slot.id, *(b for _, b in bounds)]):
                return None
        except redis.exceptions.RedisError as exc:
            raise LimitsUnavailable() from exc
        with self._lock:
            self._held[slot.id] = slot
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_held, name="limits-renewer", daemon=True)
                self._renewer.start()
        return slot

    def release(self, slot: Slot) -> None:
        with self._lock:
            self._held.pop(slot.id, None)
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for key in slot.keys:
                    pipe.zrem(self._key("slots", key), slot.id)
                pipe.execute()
        except redis.exceptions.RedisError:
            pass  # it expires by itself within slot_seconds, unrenewed

    def _renew_held(self) -> None:
        while not self._stop.wait(self.slot_seconds / 3):
            with self._lock:
                pairs = [(key, slot.id) for slot in self._held.values() for key in slot.keys]
            if not pairs:
                continue
            try:
                self._renew(keys=[self._key("slots", k) for k, _ in pairs],
                            args=[repr(self.slot_seconds), *(s for _, s in pairs)])
            except redis.exceptions.RedisError:
                pass  # tried again in a third of the lifetime; past it, the slots lapse as a dead process's do

    def in_flight(self, key: str) -> int:
        try:
            return int(self._in_flight(keys=[self._key("slots", key)]))
        except redis.exceptions.RedisError as exc:
            raise LimitsUnavailable() from exc

    def generation(self, name: str) -> int:
        try:
            return int(self._redis.get(self._key("generation", name)) or 0)
        except redis.exceptions.RedisError as exc:
            raise LimitsUnavailable() from exc

    def advance(self, name: str) -> int:
        try:
            return int(self._redis.incr(self._key("generation", name)))
        except redis.exceptions.RedisError as exc:
            raise LimitsUnavailable() from exc

    def close(self) -> None:
        self._stop.set()
        self._redis.close()
