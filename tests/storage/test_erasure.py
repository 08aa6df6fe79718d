"""Erasure that the access log survives (SPEC.md section 7, "Erasure"), on both databases.

A person is forgotten by a retention run with the clock moved forward; then every column of every table
is dumped and searched for their identity number, its blind index under the current key and any row
linking their events' pseudonyms to them; the events stay, name nobody, and the operator's check and the
regulator's own verifier (clients/register_verifier, over HTTP) still verify every checkpoint and proof.
A living person still sees every lookup of them, across months and from before pseudonyms.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, inspect, select, text

from register.crypto.keys import StaticKeys
from register.domain.identity import parse_national_id
from register.domain.retention import Policy, Rule
from register.services import retention
from register.services.log_check import verify_log
from register.storage.events import add_event
from register.storage.models import AccessEvent, LogLeaf, Person, SubjectPseudonym
from register.storage.pseudonyms import pseudonyms_for
from register.storage.types import utcnow
from tests.audit.test_tamper import Env
from tests.conftest import ADMIN_TOKEN, Clock, fresh_app
from tests.web.pages import sign_in as page_sign_in
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, tmp_path: Path) -> Iterator[Env]:
    """An app on an empty database of its own (conftest.fresh_app: at the end, no row names what erasure deleted)."""
    with fresh_app(request.param, tmp_path, tmp_path, StaticKeys.generate()) as app, \
            TestClient(app, raise_server_exceptions=False) as client:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        e = Env(request.param, app.state.register.settings.resolved_database_url, tmp_path, app, client,
                make_institution(client, admin, "lender"), make_institution(client, admin, "regulator"))
        e.pinned_vkey = client.get("/v1/audit/log-key").json()["vkey"]
        yield e


def blind_index(env: Env, person) -> bytes:  # noqa: ANN001
    nid = parse_national_id(person.country, person.nid, allow_test=True)
    return env.app.state.register.cipher.blind_index(nid.blind_index_input())


def put(env: Env, ref: str, person, **kw) -> None:  # noqa: ANN001, ANN003
    r = env.client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(person)], **kw),
                       headers=env.lender.headers)
    assert r.status_code in (200, 201), r.text


def query(env: Env, person, consent: str) -> None:  # noqa: ANN001
    r = env.client.post("/v1/exposure", headers=env.lender.headers, json={
        "country": person.country, "national_id": person.nid, "purpose": "credit_application", "consent_id": consent})
    assert r.status_code == 200, r.text


def search(env: Env, person) -> list[dict]:  # noqa: ANN001
    r = env.client.post("/v1/audit/events/search", headers=env.regulator_inst.headers,
                        json={"country": person.country, "national_id": person.nid, "limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def access_log(env: Env, person) -> set[str]:  # noqa: ANN001
    ids, cursor = set(), None
    while True:
        r = env.client.get("/v1/me/access-log", headers=person.headers, params={"cursor": cursor} if cursor else {})
        assert r.status_code == 200, r.text
        ids |= {e["id"] for e in r.json()["items"]}
        cursor = r.json().get("next_cursor")
        if not cursor:
            return ids


def events_about(env: Env, bi: bytes, *, others_only: bool = False) -> dict[str, bytes]:
    """Event id -> subject of every event linked to this blind index (by its pseudonyms)."""
    with env.app.state.register.sessions() as s:
        stmt = select(AccessEvent.id, AccessEvent.subject).where(AccessEvent.subject.in_(pseudonyms_for(s, bi)))
        if others_only:
            stmt = stmt.where(AccessEvent.actor_type != "consumer")
        return {i: bytes(subj) for i, subj in s.execute(stmt)}


def dump(url: str) -> list[tuple[str, str, str]]:
    """(table, column, value as text; bytes as lowercase hex) of every column of every row of every table."""
    engine = create_engine(url)
    out = []
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                    for col, value in row.items():
                        if isinstance(value, memoryview):
                            value = bytes(value)
                        out.append((table, col, value.hex() if isinstance(value, bytes) else str(value)))
    finally:
        engine.dispose()
    return out


def spellings(nid: str) -> set[str]:
    """The number as reported and the usual ways of writing a Swedish personnummer."""
    digits = "".join(c for c in nid if c.isdigit())
    return {nid, digits, digits[2:], f"{digits[:8]}-{digits[8:]}", f"{digits[2:8]}-{digits[8:]}"}


def operator_verify(env: Env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "register.cli", "audit", "verify"], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "REGISTER_DATABASE_URL": env.url, "REGISTER_DATA_DIR": str(env.data_dir),
             "REGISTER_ADMIN_TOKEN": ADMIN_TOKEN, "REGISTER_LOG_ORIGIN": env.app.state.register.settings.log_origin})


def leaf_indexes(env: Env, event_ids: set[str]) -> list[int]:
    with env.app.state.register.sessions() as s:
        return sorted(s.execute(select(LogLeaf.leaf_index).join(AccessEvent, AccessEvent.seq == LogLeaf.event_seq)
                                .where(AccessEvent.id.in_(event_ids))).scalars())


def run(env: Env, now: datetime, policy: Policy | None = None, **kw) -> retention.Counts:  # noqa: ANN003
    policy = policy or retention.policy_of(env.app.state.register.settings)
    counts = retention.run(env.app.state.register.sessions, policy, now=now, **kw)
    assert counts is not None
    return counts


class TestForgottenPerson:
    def test_cannot_be_found_or_linked_and_the_log_still_verifies(self, env: Env):
        gone, living = make_person(env.client, env.data_dir), make_person(env.client, env.data_dir)
        ref_gone, ref_living = new_ref(), new_ref()
        put(env, ref_gone, gone)
        put(env, ref_living, living)
        query(env, gone, grant(env.client, gone.headers, env.lender.id, days=30))
        query(env, living, grant(env.client, living.headers, env.lender.id, days=90))
        access_log(env, gone)  # the person's own read: an event about them too
        browser = page_sign_in(env.app, gone)  # and a session on the pages (ciphertext and blind index)
        assert browser.client.get("/app/who-looked").status_code == 200
        bi_gone, bi_living = blind_index(env, gone), blind_index(env, living)
        theirs = events_about(env, bi_gone)
        assert {e["id"] for e in search(env, gone)} >= set(theirs)  # while they live, the regulator finds them
        pseudonyms = set(theirs.values())
        assert bi_gone not in pseudonyms and len(pseudonyms) == 1  # one month: one pseudonym, not the blind index
        put(env, ref_gone, gone, status="closed", balance=0, as_of="2026-11-20T00:00:00Z")
        env.integrate()
        code, out = env.regulator(full=True)  # the regulator's first run pins the key before the erasure
        assert code == 0, out

        counts = run(env, utcnow() + timedelta(days=400))  # past the ended line, its consent and its answers
        assert counts.deleted["person"] == 1 and counts.deleted["ended"] == 1
        with env.app.state.register.sessions() as s:
            assert s.execute(select(func.count()).select_from(Person).where(Person.blind_index == bi_gone)).scalar() == 0
            assert s.execute(select(func.count()).select_from(AccessEvent)
                             .where(AccessEvent.id.in_(set(theirs)))).scalar() == len(theirs)  # the events stay

        # (a) Nothing in the database holds the number or its blind index, and the pseudonyms appear only
        # as the subjects of the events themselves, linked to nothing.
        cells = dump(env.url)
        for _table, _col, value in cells:
            assert not any(s in value for s in spellings(gone.nid)), (_table, _col)
            assert bi_gone.hex() not in value, (_table, _col)
        for p in pseudonyms:
            assert {(t, c) for t, c, v in cells if p.hex() in v} == {("access_events", "subject")}

        # (b) Recomputing the blind index links no event, and the person's own events name nobody.
        with env.app.state.register.sessions() as s:
            assert s.execute(select(func.count()).select_from(AccessEvent)
                             .where(AccessEvent.subject == bi_gone)).scalar() == 0
            assert s.execute(select(func.count()).select_from(SubjectPseudonym).where(
                (SubjectPseudonym.blind_index == bi_gone) | SubjectPseudonym.pseudonym.in_(pseudonyms))).scalar() == 0
        assert not {e["id"] for e in search(env, gone)} & set(theirs)

        # (c) Every checkpoint and proof still verifies: the regulator's verifier from its pinned checkpoint,
        # re-hashing every leaf and proving the forgotten person's events, and the operator's check.
        env.integrate()
        code, out = env.regulator(full=True, leaf_indices=tuple(leaf_indexes(env, set(theirs))))
        assert code == 0, out
        assert env.fsck().ok
        done = operator_verify(env)
        assert done.returncode == 0 and done.stdout.startswith("ok:"), done.stdout + done.stderr

        # (d) The living person still sees every lookup of them, and proves one.
        looked = events_about(env, bi_living, others_only=True)
        assert looked and access_log(env, living) == set(looked)
        any_id = sorted(looked)[0]
        r = env.client.get(f"/v1/me/access-log/{any_id}/proof", headers=living.headers)
        assert r.status_code == 200, r.text


class TestLivingPerson:
    def test_sees_every_lookup_across_months_and_from_before_pseudonyms_until_their_period_ends(self, env: Env):
        person = make_person(env.client, env.data_dir)
        put(env, new_ref(), person)
        consent = grant(env.client, person.headers, env.lender.id, days=90)
        bi = blind_index(env, person)
        state = env.app.state.register
        # An event as the code before pseudonyms wrote it (leaf version 1, the blind index as subject), and
        # the `v1` row the migration gives every subject already in the log.
        old_at = utcnow() - timedelta(days=40)
        with state.sessions.begin() as s:
            legacy = add_event(s, {"id": "00000000-0000-4000-8000-000000000001", "occurred_at": old_at,
                                   "actor_type": "institution", "actor_id": env.lender.id, "actor_role": "lender",
                                   "action": "exposure:query", "subject": bi, "purpose": "credit_application",
                                   "consent_id": None, "outcome": "refused", "reason": "consent_required",
                                   "request_id": None, "details": None})
            s.add(SubjectPseudonym(pseudonym=bi, blind_index=bi, epoch="v1",
                                   epoch_end=datetime(old_at.year + (old_at.month == 12), old_at.month % 12 + 1, 1,
                                                      tzinfo=old_at.tzinfo)))
        query(env, person, consent)
        before, state.clock = state.clock, Clock()
        try:
            state.clock.advance(days=62)  # two months on: another month, another pseudonym
            query(env, person, consent)
        finally:
            state.clock = before
        looked = events_about(env, bi, others_only=True)
        assert legacy.id in looked and len(set(looked.values())) == 3  # v1, this month, two months on
        assert access_log(env, person) == set(looked)
        assert {e["id"] for e in search(env, person)} >= set(looked)
        env.integrate()
        code, out = env.regulator(full=True)  # leaves of both versions verify
        assert code == 0, out

        # The access events' period ends for the first month and the v1 events, not for the last month's.
        policy = retention.policy_of(state.settings)
        days = dict(policy.days)
        days[Rule.access_event] = 30
        short = Policy(days=days, by_country=policy.by_country)
        at = utcnow() + timedelta(days=62 + 1)  # thirty days on, the first month and the v1 epoch are over
        with state.sessions() as s:
            expired = [bytes(p) for p in s.scalars(select(SubjectPseudonym.pseudonym)
                                                   .where(SubjectPseudonym.epoch_end <= at - timedelta(days=30)))]
            linked = s.execute(select(func.count()).select_from(AccessEvent)
                               .where(AccessEvent.subject.in_(expired))).scalar()
        planned = retention.plan(state.sessions, short, now=at)
        counts = run(env, at, short)
        assert counts.deleted == planned.deleted and counts.deleted["access_event"] == len(expired) >= 2
        assert counts.access_events_pseudonymised == planned.access_events_pseudonymised == linked
        assert bi in expired and counts.deleted["person"] == 0
        assert run(env, at, short).deleted["access_event"] == 0  # once
        still = events_about(env, bi, others_only=True)
        assert legacy.id not in still and still and access_log(env, person) == set(still) < set(looked)
        env.integrate()
        code, out = env.regulator(full=True)
        assert code == 0, out


class TestInterrupted:
    def test_a_run_killed_between_persons_leaves_each_whole_and_the_rerun_finishes(self, env: Env):
        persons = [make_person(env.client, env.data_dir) for _ in range(3)]
        for p in persons:
            ref = new_ref()
            put(env, ref, p)
            query(env, p, grant(env.client, p.headers, env.lender.id, days=5))
            put(env, ref, p, status="closed", balance=0, as_of="2026-11-20T00:00:00Z")
        later = utcnow() + timedelta(days=400)

        class Killed(Exception):
            pass

        def kill_after_first(what: str, n: int) -> None:
            if what == "person" and n == 1:
                raise Killed

        with pytest.raises(Killed):
            run(env, later, progress=kill_after_first, batch=1)
        with env.app.state.register.sessions() as s:
            left = {bytes(b) for b in s.scalars(select(Person.blind_index))}
            linked = {bytes(b) for b in s.scalars(select(SubjectPseudonym.blind_index))}
        assert len(left) == 2 and linked == left  # the forgotten one's pseudonyms went with them, no one else's
        assert run(env, later).deleted["person"] == 2
        with env.app.state.register.sessions() as s:
            assert s.execute(select(func.count()).select_from(SubjectPseudonym)).scalar() == 0
        assert run(env, later).deleted["person"] == 0

    def test_a_run_killed_between_batches_of_expired_months_deletes_the_rest_once(self, env: Env):
        state = env.app.state.register
        persons = [make_person(env.client, env.data_dir) for _ in range(3)]
        for p in persons:
            put(env, new_ref(), p)  # live lines: the persons stay, only their months' pseudonyms go
        policy = retention.policy_of(state.settings)
        at = utcnow() + timedelta(days=policy.days[Rule.access_event] + 40)
        assert retention.plan(state.sessions, policy, now=at).deleted["access_event"] == 3

        class Killed(Exception):
            pass

        def kill_after_first(what: str, n: int) -> None:
            if what == "access_event" and n == 1:
                raise Killed

        with pytest.raises(Killed):
            run(env, at, progress=kill_after_first, batch=1)
        with state.sessions() as s:
            assert s.execute(select(func.count()).select_from(SubjectPseudonym)).scalar() == 2
        assert run(env, at).deleted["access_event"] == 2
        assert run(env, at).deleted["access_event"] == 0
