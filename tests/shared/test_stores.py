"""The stores of the counters server processes share (register/shared): each keeps the same promises;
the file and Redis ones across processes (here, two instances on one file or one Redis, and processes
that die holding slots); a store that does not answer refuses with 503 `limits_unavailable`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from register.errors import LimitsUnavailable
from register.main import create_app
from register.shared import Counters, open_counters
from register.shared.mapped_file import FileCounters, create
from register.shared.memory import MemoryCounters
from register.shared.redis_store import RedisCounters

from tests.conftest import make_settings
from tests.factories import make_institution
from tests.test_processes import REDIS_URL, redis_answers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_url() -> str:
    if not redis_answers():
        if os.environ.get("CI"):
            pytest.fail(f"Redis does not answer at {REDIS_URL}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(params=["memory", "file", "redis"])
def pair(request, tmp_path) -> Iterator[tuple[Counters, Counters]]:
    """Two handles on one store, as two processes hold them (the memory store: one, twice)."""
    if request.param == "memory":
        one = MemoryCounters()
        yield one, one
        return
    if request.param == "file":
        path = create(tmp_path / "limits")
        a, b = FileCounters(path), FileCounters(path)
    else:
        url, prefix = request.getfixturevalue("redis_url"), f"test-{uuid.uuid4().hex}"
        a, b = RedisCounters(url, prefix=prefix), RedisCounters(url, prefix=prefix)
    yield a, b
    a.close()
    b.close()


class TestBuckets:
    def test_a_burst_is_taken_once_between_the_holders(self, pair):
        a, b = pair
        assert [a.take("inst", rate=0.001, burst=3), b.take("inst", rate=0.001, burst=3),
                a.take("inst", rate=0.001, burst=3)] == [0.0, 0.0, 0.0]
        wait = b.take("inst", rate=0.001, burst=3)
        assert 0 < wait <= 1000  # a token comes back after at most 1/rate seconds
        assert a.take("other", rate=0.001, burst=3) == 0.0  # each key its own bucket


class TestSlots:
    def test_a_bound_holds_across_the_holders_and_release_frees(self, pair):
        a, b = pair
        first = a.acquire([("req", 2), ("up", 1)])
        assert first is not None
        assert b.acquire([("req", 2), ("up", 1)]) is None  # the upload bound, and nothing taken
        second = b.acquire([("req", 2)])
        assert second is not None and a.in_flight("req") == 2
        assert a.acquire([("req", 2)]) is None
        b.release(first)
        assert b.in_flight("req") == 1
        assert a.acquire([("req", 2), ("up", 1)]) is not None

    def test_many_turns_on_both_holders_leave_nothing_held(self, pair):
        a, b = pair
        for turn in range(200):
            holder, other = (a, b) if turn % 2 else (b, a)
            slot = holder.acquire([("busy", 3), ("busy-up", 1)])
            assert slot is not None
            other.release(slot) if turn % 3 == 0 else holder.release(slot)
        assert a.in_flight("busy") == b.in_flight("busy") == 0 == a.in_flight("busy-up")
        held = [s for s in (a.acquire([("busy", 3)]) for _ in range(4)) if s is not None]
        assert len(held) == 3  # the bound, exactly: no count was lost or left behind


class TestFileStore:
    def test_a_file_of_another_layout_is_refused_not_misread(self, tmp_path):
        old = tmp_path / "limits"
        old.write_bytes(b"register-limits-1" + bytes(4096))  # the layout before slot records had a total
        with pytest.raises(LimitsUnavailable) as raised:
            FileCounters(old)
        assert raised.value.status == 503 and "not a limits file of this version" in raised.value.detail


class TestGenerations:
    def test_an_advance_is_seen_by_every_holder(self, pair):
        a, b = pair
        assert a.generation("tokens") == b.generation("tokens") == 0
        assert b.advance("tokens") == 1
        assert a.generation("tokens") == 1


HOLD = """
import sys, time
from pathlib import Path
from register.shared.mapped_file import FileCounters
from register.shared.redis_store import RedisCounters
kind, where, prefix = sys.argv[1:4]
store = FileCounters(Path(where)) if kind == "file" else RedisCounters(where, prefix=prefix, slot_seconds=2)
assert store.acquire([("req", 1)]) is not None
print("held", flush=True)
time.sleep(600)
"""


class TestDeadProcesses:
    @pytest.mark.parametrize("kind", ["file", "redis"])
    def test_a_killed_process_s_slots_free_themselves(self, kind, tmp_path, request):
        if kind == "file":
            where, prefix = str(create(tmp_path / "limits")), ""
            store: Counters = FileCounters(Path(where))
        else:
            where, prefix = request.getfixturevalue("redis_url"), f"test-{uuid.uuid4().hex}"
            store = RedisCounters(where, prefix=prefix)
        holder = subprocess.Popen([sys.executable, "-c", HOLD, kind, where, prefix], cwd=ROOT, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            assert store.acquire([("req", 1)]) is None
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        deadline = time.monotonic() + 30  # the file store at once; Redis once the unrenewed slot expires (2 s)
        while (slot := store.acquire([("req", 1)])) is None:
            assert time.monotonic() < deadline, "the dead process's slot was never freed"
            time.sleep(0.1)
        store.release(slot)
        store.close()

    def test_a_live_process_keeps_its_redis_slot_past_the_expiry(self, redis_url):
        prefix = f"test-{uuid.uuid4().hex}"
        holder, other = RedisCounters(redis_url, prefix=prefix, slot_seconds=1), RedisCounters(redis_url, prefix=prefix)
        try:
            slot = holder.acquire([("req", 1)])
            assert slot is not None
            time.sleep(3)  # three lifetimes: renewed, not expired
            assert other.acquire([("req", 1)]) is None
            holder.release(slot)
            assert other.acquire([("req", 1)]) is not None
        finally:
            holder.close()
            other.close()


class TestUnreachable:
    def test_every_call_raises_limits_unavailable(self):
        store = open_counters(url="redis://127.0.0.1:1/0")
        for call in (lambda: store.take("k", rate=1, burst=1), lambda: store.acquire([("k", 1)]),
                     lambda: store.generation("g"), lambda: store.advance("g"), lambda: store.in_flight("k")):
            with pytest.raises(LimitsUnavailable) as raised:
                call()
            assert raised.value.status == 503 and raised.value.code == "limits_unavailable"

    def test_an_institution_s_request_is_503_problem_json_never_500_nor_unbounded(self, database_url, tmp_path, keys):
        healthy = create_app(make_settings(database_url, tmp_path), keys=keys)
        app = create_app(make_settings(database_url, tmp_path, limits_url="redis://127.0.0.1:1/0"), keys=keys)
        try:
            with TestClient(healthy) as client:
                inst = make_institution(client, {"Authorization": f"Bearer {app.state.register.admin_token}"},
                                        "lender")
            with TestClient(app, raise_server_exceptions=False) as client:
                r = client.get("/v1/obligations", headers=inst.headers)
                assert r.status_code == 503, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["code"] == "limits_unavailable" and r.headers["retry-after"] == "1"
                assert client.get("/livez").status_code == 200  # without a token: no institution's slot
        finally:
            healthy.state.register.engine.dispose()
            app.state.register.engine.dispose()

    def test_the_exposure_rate_is_503_when_its_store_fails(self, tmp_path):
        from register.services.limits import ExposureLimits

        limits = ExposureLimits(rate=10, burst=10, daily_quota=0, counters=open_counters(url="redis://127.0.0.1:1/0"))
        with pytest.raises(LimitsUnavailable):
            limits.check_rate("inst")
