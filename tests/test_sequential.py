"""Bulk lookups in identity order (SPEC.md "Signals", `sequential_lookups`): detected while the exposure
query is answered and kept as one flag in the event's details, never the number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from random import Random

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from register.storage.models import AccessEvent
from tests.api.test_exposure import query
from tests.conftest import ADMIN_TOKEN, Clock, fresh_app
from tests.factories import make_institution
from tests.test_signals import in_order, look

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NO_CONSENT = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def fresh(backend: str, tmp_path: Path, data_dir: Path, keys) -> Iterator[FastAPI]:  # noqa: ANN001
    with fresh_app(backend, tmp_path, data_dir, keys, attested_rate_per_second=0) as app:
        app.state.register.clock = Clock()
        yield app


@pytest.fixture
def client(fresh: FastAPI) -> Iterator[TestClient]:
    with TestClient(fresh, raise_server_exceptions=False) as c:
        yield c


def flags(app, request_id: str) -> bool:
    with app.state.register.sessions() as s:
        details = s.scalars(select(AccessEvent.details).where(AccessEvent.request_id == request_id,
                                                              AccessEvent.action == "exposure:query")).one()
    return bool((details or {}).get("sequential"))


def birth() -> str:
    rng = Random()
    return f"19{rng.randrange(50, 99)}0{rng.randrange(1, 9)}1{rng.randrange(0, 9)}"


class TestFlag:
    def test_the_next_number_by_the_same_institution_within_an_hour_is_flagged(self, fresh, client):
        clock = fresh.state.register.clock
        lender, other = make_institution(client, ADMIN, "lender"), make_institution(client, ADMIN, "lender")
        a, b, c, d = in_order(birth(), 300, 4)
        look(client, lender, a, clock)
        clock.advance(minutes=59)
        r = query(client, lender, b, NO_CONSENT)  # refused (no consent): still a step of the scan
        assert r.status_code == 403 and flags(fresh, r.headers["x-request-id"])
        r = query(client, other, c, NO_CONSENT)  # another institution's: not its neighbour's
        assert not flags(fresh, r.headers["x-request-id"])
        clock.advance(hours=1, minutes=1)  # more than an hour after b
        r = query(client, lender, c, NO_CONSENT)
        assert not flags(fresh, r.headers["x-request-id"])
        clock.advance(minutes=1)
        r = query(client, lender, a, NO_CONSENT)  # b is not a's neighbour any more than a: a scan down too
        assert not flags(fresh, r.headers["x-request-id"])  # a's neighbour b was asked 2 h ago
        r = query(client, lender, d, NO_CONSENT)  # right after c
        assert flags(fresh, r.headers["x-request-id"])

    def test_the_same_number_again_and_unrelated_numbers_are_not_flagged(self, fresh, client):
        clock = fresh.state.register.clock
        lender = make_institution(client, ADMIN, "lender")
        [a] = in_order(birth(), 100, 1)
        [far] = in_order(birth(), 700, 1)
        for p in (a, a, far):
            r = query(client, lender, p, NO_CONSENT)
            assert not flags(fresh, r.headers["x-request-id"])
            clock.advance(minutes=1)

    def test_a_granted_answer_is_flagged_as_a_refused_one_is(self, fresh, client):
        """Granted answers on PostgreSQL take the session-free lane (services.exposure.answer_on_lane),
        which asks the probe inside its one read statement: a scan of persons the lender may look up is
        flagged on both databases, and the flag is the event's only trace of it."""
        clock = fresh.state.register.clock
        lender = make_institution(client, ADMIN, "lender")
        a, b, c = in_order(birth(), 500, 3)
        first = look(client, lender, a, clock)
        clock.advance(minutes=5)
        second = look(client, lender, b, clock)
        clock.advance(minutes=5)
        third = look(client, lender, c, clock)
        with fresh.state.register.sessions() as s:
            details = {e.id: e.details or {} for e in s.scalars(
                select(AccessEvent).where(AccessEvent.id.in_([first, second, third])))}
        assert not details[first].get("sequential")
        assert details[second].get("sequential") is True and details[third].get("sequential") is True
        assert {k for d in details.values() for k in d} <= {"exposure_id", "sequential", "credit_ban_active"}
