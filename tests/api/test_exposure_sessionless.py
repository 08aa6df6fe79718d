"""The lender's plain granted answer on PostgreSQL takes a path with no ORM session (one statement for the
reads, one for the writes, on a pooled connection of its own: `services.exposure.answer_on_lane`); what a
lender, a person and the log see must not depend on it. Every test here runs on both databases (SQLite has
no such path and answers through a session)."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest
from sqlalchemy import delete, func, select, text

from register.canonical import canonical_json
from register.domain.consent import Purpose
from register.domain.permission import Principal, Role
from register.services import identities
from register.services.exposure import Taken, answer_on_lane, lender_connection
from register.storage.models import AccessEvent, ExposureRecord, SubjectPseudonym
from register.storage.pseudonyms import epoch_of
from tests.factories import debtor, grant, make_person, new_ref, obligation_body
from tests.server import free_port


def ask(client, inst, person, consent_id):
    body = {"country": person.country, "national_id": person.nid, "purpose": "credit_application",
            "consent_id": consent_id}
    return client.post("/v1/exposure", content=json.dumps(body).encode(),
                       headers={**inst.headers, "content-type": "application/json"})


def blind_index_of(app, person) -> bytes:
    state = app.state.register
    nid = identities.parse_identity(person.country, person.nid, allow_test=state.settings.accept_test_identities)
    return identities.blind_index(state.cipher, nid)


def test_the_lane_exists_on_postgresql_only(app, backend):
    lane = lender_connection(app.state.register.sessions)
    assert (lane is not None) == (backend == "postgres")


def test_the_first_answers_of_a_month_about_a_person_share_one_pseudonym(app, client, data_dir, lender, clock):
    """Eight answers at once about a person nobody asked about this month: each event names the person by
    the same pseudonym, made once, and the person reads all eight in their own log."""
    person = make_person(client, data_dir)
    client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
    cid = grant(client, person.headers, lender.id)
    epoch, _ = epoch_of(clock())
    with app.state.register.sessions() as s:  # as if nothing had happened to the person this month
        s.execute(delete(SubjectPseudonym).where(SubjectPseudonym.blind_index == blind_index_of(app, person),
                                                 SubjectPseudonym.epoch == epoch))
        s.commit()
    statuses, ids, lock = [], [], threading.Lock()

    def one() -> None:
        r = ask(client, lender, person, cid)
        with lock:
            statuses.append(r.status_code)
            ids.append(r.json()["receipt"]["event_id"] if r.status_code == 200 else None)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 8
    with app.state.register.sessions() as s:
        pseudonyms = list(s.execute(select(SubjectPseudonym.pseudonym).where(
            SubjectPseudonym.blind_index == blind_index_of(app, person), SubjectPseudonym.epoch == epoch)).scalars())
        subjects = set(s.execute(select(AccessEvent.subject).where(AccessEvent.id.in_(ids))).scalars())
    assert len(pseudonyms) == 1 and subjects == {pseudonyms[0]}
    log = client.get("/v1/me/access-log", headers=person.headers)
    assert log.status_code == 200, log.text
    assert set(ids) <= {e["id"] for e in log.json()["items"]}


def test_an_answer_is_stored_and_hashed_as_sent(app, client, data_dir, lender):
    person = make_person(client, data_dir)
    for _ in range(2):
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]),
                   headers=lender.headers)
    cid = grant(client, person.headers, lender.id)
    r = ask(client, lender, person, cid)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert list(answer)[-1] == "receipt" and len(answer["obligations"]) == 2
    stored = {k: v for k, v in answer.items() if k != "receipt"}
    with app.state.register.sessions() as s:
        record = s.get(ExposureRecord, answer["exposure_id"])
        event = s.execute(select(AccessEvent).where(AccessEvent.id == answer["receipt"]["event_id"])).scalar_one()
    assert record.response == stored and record.event_id == event.id
    assert record.response_sha256 == hashlib.sha256(canonical_json(stored)).hexdigest()
    assert (event.action, event.outcome, event.consent_id, event.details) == (
        "exposure:query", "granted", cid, {"exposure_id": answer["exposure_id"]})


def test_the_lane_leaves_a_refusal_to_the_session_and_writes_nothing(app, client, data_dir, lender, backend):
    """The lane gives only granted answers: for a consent that is not this person's it answers None, with
    no event, no stored answer and nothing counted; the route then refuses (403), with its event."""
    state = app.state.register
    person, other = make_person(client, data_dir), make_person(client, data_dir)
    client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
    cid = grant(client, other.headers, lender.id)
    principal = Principal(role=Role.lender, name="lender", institution_id=lender.id)

    def counts() -> tuple[int, int]:
        with state.sessions() as s:
            return (s.execute(select(func.count()).select_from(AccessEvent)).scalar_one(),
                    s.execute(select(func.count()).select_from(ExposureRecord)).scalar_one())

    before = counts()
    lane = lender_connection(state.sessions)
    if lane is not None:
        with lane as conn:
            assert answer_on_lane(conn, state.cipher, principal=principal, country=person.country,
                                  national_id=person.nid, purpose=Purpose.credit_application, consent_id=cid,
                                  now=state.clock(), request_id=None, allow_test_ids=True, tlog=state.tlog,
                                  limits=state.exposure_limits, taken=Taken()) is None
    assert counts() == before
    r = ask(client, lender, person, cid)
    assert r.status_code == 403 and r.json()["code"] == "consent_mismatch"
    assert counts() == (before[0] + 1, before[1])


def test_the_lane_answers_a_plain_granted_question(app, client, data_dir, lender, backend):
    state = app.state.register
    person = make_person(client, data_dir)
    client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
    cid = grant(client, person.headers, lender.id)
    lane = lender_connection(state.sessions)
    if lane is None:
        assert backend == "sqlite"
        return
    with lane as conn:
        encoded = answer_on_lane(conn, state.cipher, principal=Principal(role=Role.lender, name="lender",
                                                                         institution_id=lender.id),
                                 country=person.country, national_id=person.nid, purpose=Purpose.credit_application,
                                 consent_id=cid, now=state.clock(), request_id=None, allow_test_ids=True,
                                 tlog=state.tlog, limits=state.exposure_limits, taken=Taken())
    answer = json.loads(encoded)
    with state.sessions() as s:
        record = s.get(ExposureRecord, answer["exposure_id"])
    assert record.response == {k: v for k, v in answer.items() if k != "receipt"}
    assert len(answer["obligations"]) == 1 and answer["consent_id"] == cid


def test_the_event_loops_lane_exists_on_postgresql_only(app, backend):
    """On PostgreSQL a granted answer is read and written on the event loop, on connections of the process's
    own (`AppState.lender_pool`), with no worker thread; SQLite answers in a worker thread, through a session."""
    assert (app.state.register.lender_pool is not None) == (backend == "postgres")


def test_a_granted_answer_takes_no_threads_connection(app, client, data_dir, lender, backend, monkeypatch):
    """With the event loop's lane, the worker thread's lane is not asked: an answer is granted, stored and
    logged though it would fail; on SQLite the session answers as before."""
    from register.api.routes import exposure as route

    def no_thread_lane(*_: object, **__: object) -> None:
        raise AssertionError("a worker thread's connection was asked for")

    if backend == "postgres":
        monkeypatch.setattr(route, "lender_connection", no_thread_lane)
    person = make_person(client, data_dir)
    client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
    cid = grant(client, person.headers, lender.id)
    r = ask(client, lender, person, cid)
    assert r.status_code == 200, r.text
    with app.state.register.sessions() as s:
        assert s.get(ExposureRecord, r.json()["exposure_id"]) is not None
        assert s.execute(select(AccessEvent).where(AccessEvent.id == r.json()["receipt"]["event_id"])).scalar_one()


class TestTheLoopsPool:
    """`storage.dialects.postgres_exposure.AsyncLenders`: bounded, waiting as the engine's pool does, and never
    keeping a connection a question left in the middle of a statement."""

    @staticmethod
    def pool(app, **kw):  # noqa: ANN001, ANN205
        from register.services.exposure import lender_pool

        state = app.state.register
        return lender_pool(state.sessions, size=kw.get("size", 1), timeout=kw.get("timeout", 0.2),
                           statement_timeout=kw.get("statement_timeout"))

    def test_its_connections_carry_the_engine_s_tcp_bounds(self, app, backend):
        """A database whose machine went away is found dead by TCP keepalives and the user timeout on the
        lane's connections too (storage.db.postgres_connect_args), not only on the engine's."""
        import asyncio
        import socket

        if backend != "postgres":
            pytest.skip("the loop's pool is PostgreSQL's")
        pool = self.pool(app)

        async def run() -> tuple[int, int, int]:
            async with pool.connection() as conn:
                sock = conn.conn._transport.get_extra_info("socket")
                got = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                       sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                       sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))
            await pool.close()
            return got

        keepalive, idle, user_timeout = asyncio.run(run())
        assert keepalive == 1 and idle == 5 and user_timeout == 10_000

    def test_a_statement_past_the_statement_timeout_is_cancelled_and_answered_as_unavailable(self, app, backend):
        """`DB_STATEMENT_TIMEOUT_SECONDS` holds on the lane's own connections as on the engine's: the server
        cancels the statement, and the error is the one the API answers 503 database_unavailable."""
        import asyncio

        from sqlalchemy.exc import OperationalError

        from register.api.problems import database_unavailable

        if backend != "postgres":
            pytest.skip("the loop's pool is PostgreSQL's")
        pool = self.pool(app, size=1, timeout=2.0, statement_timeout=0.3)

        async def run() -> float:
            started = time.monotonic()
            with pytest.raises(OperationalError) as raised:
                async with pool.connection() as conn:
                    await conn.conn.execute("SELECT pg_sleep(5)")
            assert database_unavailable(raised.value)
            async with pool.connection() as conn:  # the next question gets a working connection
                assert await conn.conn.fetchval("SHOW statement_timeout") == "300ms"
            await pool.close()
            return time.monotonic() - started

        assert asyncio.run(run()) < 3

    def test_at_its_bound_a_question_waits_then_fails_as_the_engines_pool(self, app, backend):
        import asyncio

        from sqlalchemy.exc import TimeoutError as PoolTimeout

        if backend != "postgres":
            assert self.pool(app) is None
            return
        pool = self.pool(app, size=1, timeout=0.2)

        async def run() -> None:
            async with pool.connection():
                try:
                    async with pool.connection():
                        raise AssertionError("a second connection past the bound of 1")
                except PoolTimeout:
                    pass
            async with pool.connection() as conn:  # given back: free again
                assert await conn.conn.fetchval("SELECT 1") == 1
            await pool.close()

        asyncio.run(run())

    def test_a_question_cancelled_mid_statement_leaves_a_usable_pool(self, app, backend):
        """A client gone in the middle of a statement cancels its task: the statement is cancelled on the
        server (asyncpg sends the cancel), the connection is closed, never given to the next question, and
        the pool's place is free at once."""
        import asyncio

        if backend != "postgres":
            pytest.skip("the loop's pool is PostgreSQL's")
        pool = self.pool(app, size=1, timeout=2.0)
        state = app.state.register

        async def run() -> None:
            held = []

            async def slow() -> None:
                async with pool.connection() as conn:
                    held.append(conn.conn)
                    await conn.conn.execute("SELECT pg_sleep(5)")

            task = asyncio.create_task(slow())
            await asyncio.sleep(0.3)
            pid = held[0].get_server_pid()
            task.cancel()
            started = asyncio.get_running_loop().time()
            await asyncio.gather(task, return_exceptions=True)
            async with pool.connection() as conn:  # within the pool's timeout: the sleep did not hold it
                assert conn.conn is not held[0] and held[0].is_closed()
                assert await conn.conn.fetchval("SELECT 1") == 1
            assert asyncio.get_running_loop().time() - started < 2.0
            await pool.close()
            return pid

        pid = asyncio.run(run())
        deadline = time.monotonic() + 3  # the server's statement is cancelled, not left to sleep its 5 s
        with state.engine.connect() as c:
            while c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p AND query LIKE '%pg_sleep%' "
                                 "AND state = 'active'"), {"p": pid}).scalar():
                assert time.monotonic() < deadline, "the cancelled statement still runs on the server"
                time.sleep(0.1)


    def test_a_connection_the_server_ended_while_idle_is_not_handed_out(self, app, backend):
        """A failover or a restart ends the lane's idle connections on the server's side (FATAL, then the
        socket closed): the next question gets a new connection, not the dead one (which answered 503, or
        500 when asyncpg's protocol was still in the error's state)."""
        import asyncio

        if backend != "postgres":
            pytest.skip("the loop's pool is PostgreSQL's")
        pool = self.pool(app, size=1, timeout=2.0)
        state = app.state.register

        async def run() -> None:
            async with pool.connection() as conn:
                held, pid = conn.conn, conn.conn.get_server_pid()
            with state.engine.connect() as c:
                assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            for _ in range(50):  # the server's FATAL and its close reach the idle connection
                if held.is_closed():
                    break
                await asyncio.sleep(0.05)
            async with pool.connection() as conn:
                assert conn.conn is not held
                assert await conn.conn.fetchval("SELECT 1") == 1
            await pool.close()

        asyncio.run(run())


def test_the_loops_pool_follows_a_multi_host_url_past_a_dead_member(backend):
    """Under Patroni the register's URL lists every member (`host=...&host=...&target_session_attrs=
    read-write`): the loop's lane must reach the primary as the engine does, not only the URL's last host
    (it once rendered the URL as a string, which kept one `host`, and answered 500 in the failover tests)."""
    import asyncio

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from register.storage.dialects.postgres_exposure import AsyncLenders
    from tests.conftest import PG_URL

    if backend != "postgres":
        pytest.skip("the loop's pool is PostgreSQL's")
    live = make_url(PG_URL)
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there: the first member is down
    url = live.set(host=None, port=None).update_query_pairs(
        [("host", dead), ("host", f"{live.host}:{live.port or 5432}"), ("target_session_attrs", "read-write")])
    engine = create_engine(url)
    pool = AsyncLenders(engine, size=1, timeout=5, connect_args={"connect_timeout": 3})

    async def run() -> int:
        async with pool.connection() as lender:
            port = await lender.conn.fetchval("select inet_server_port()")
        await pool.close()
        return port

    try:
        assert asyncio.run(run()) == (live.port or 5432)
    finally:
        engine.dispose()
