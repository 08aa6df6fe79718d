"""Retention on both databases, each test on a database of its own (a run deletes across the register, so
counts are exact only where nothing else lives): ended debts leave answers at once and are gone after
their period, report files after their window, persons with nothing left are forgotten; a plan counts what
a run deletes, a second run deletes nothing, and a run stopped half-way and run again deletes each thing
once. The clock moves by `now`, as `register retention run --now` moves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from register.domain.identity import parse_national_id
from register.main import create_app
from register.services import retention
from register.services.reports import ReportWorker
from register.storage import retention as retention_store
from register.storage.migrate import upgrade
from register.storage.models import (
    Consent, ExposureRecord, Obligation, ObligationDebtor, ObligationVersion, Person, Report, ReportChunk,
)  # fmt: skip
from register.storage.types import utcnow
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database, fresh_app, make_settings
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body

ZERO = {"ended": 0, "ended_arrears": 0, "retracted": 0, "claim_closed": 0, "exposure_answer": 0, "report_file": 0,
        "access_event": 0, "person": 0, "notice_address": 0}


@pytest.fixture
def fresh(backend: str, tmp_path: Path, data_dir: Path, keys) -> Iterator[FastAPI]:  # noqa: ANN001
    """An app on an empty database of its own (conftest.fresh_app: at the end, no row names what a run deleted)."""
    with fresh_app(backend, tmp_path, data_dir, keys) as app:
        yield app


@pytest.fixture
def client(fresh: FastAPI) -> Iterator[TestClient]:
    with TestClient(fresh, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def lender(client: TestClient):  # noqa: ANN201
    return make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "lender")


def policy(app: FastAPI) -> retention.Policy:
    return retention.policy_of(app.state.register.settings)


def plan(app: FastAPI, now: datetime) -> dict[str, int]:
    return retention.plan(app.state.register.sessions, policy(app), now=now).deleted


def run(app: FastAPI, now: datetime, **kw) -> dict[str, int]:  # noqa: ANN003
    counts = retention.run(app.state.register.sessions, policy(app), now=now, **kw)
    assert counts is not None
    return counts.deleted


def put(client: TestClient, inst, ref: str, **overrides) -> dict:  # noqa: ANN001
    r = client.put(f"/v1/obligations/{ref}", json=obligation_body(**overrides), headers=inst.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def close(client: TestClient, inst, ref: str, person, as_of: str = "2026-11-20T00:00:00Z") -> None:  # noqa: ANN001
    put(client, inst, ref, debtors=[debtor(person)], status="closed", balance=0, as_of=as_of)


def query(client: TestClient, inst, person, consent_id: str) -> dict:  # noqa: ANN001
    r = client.post("/v1/exposure", json={"country": person.country, "national_id": person.nid,
                                          "purpose": "credit_application", "consent_id": consent_id},
                    headers=inst.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def count(app: FastAPI, *where, table=Obligation) -> int:  # noqa: ANN001
    with app.state.register.sessions() as s:
        return int(s.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def obligation_id(app: FastAPI, ref: str) -> str | None:
    with app.state.register.sessions() as s:
        return s.execute(select(Obligation.id).where(Obligation.external_ref == ref)).scalar_one_or_none()


def blind_index(app: FastAPI, person) -> bytes:  # noqa: ANN001
    nid = parse_national_id(person.country, person.nid)
    return app.state.register.cipher.blind_index(nid.blind_index_input())


class TestEndedDebt:
    def test_leaves_every_answer_at_once_and_is_gone_after_its_period(self, fresh, client, lender, data_dir):
        person = make_person(client, data_dir)
        consent = grant(client, person.headers, lender.id)
        paid, wrong, late = new_ref(), new_ref(), new_ref()
        put(client, lender, paid, debtors=[debtor(person)])
        put(client, lender, wrong, debtors=[debtor(person)])
        put(client, lender, late, debtors=[debtor(person)], status="overdue", overdue_amount=50_000, days_past_due=40)
        assert {ln["id"] for ln in query(client, lender, person, consent)["obligations"]} == {
            obligation_id(fresh, r) for r in (paid, wrong, late)}

        close(client, lender, paid, person)
        close(client, lender, late, person)
        r = client.delete(f"/v1/obligations/{wrong}", params={"reason": "reported in error"}, headers=lender.headers)
        assert r.status_code == 200
        answer = query(client, lender, person, consent)
        assert answer["obligations"] == [] and answer["totals"] == {}  # at once: no run needed
        assert client.get(f"/v1/exposure/{answer['exposure_id']}", headers=lender.headers).status_code == 200

        now = utcnow()
        assert plan(fresh, now + timedelta(days=29)) == ZERO
        assert plan(fresh, now + timedelta(days=31)) == {**ZERO, "retracted": 1}
        assert plan(fresh, now + timedelta(days=99)) == {**ZERO, "retracted": 1, "ended": 1, "person": 0}
        # The answers are past their 365 days, and so is the consent they were given under (it held the
        # person as long as answers made with it may be kept).
        assert plan(fresh, now + timedelta(days=366))["person"] == 0
        later = now + timedelta(days=400)
        expected = {**ZERO, "retracted": 1, "ended": 1, "ended_arrears": 1, "exposure_answer": 2, "person": 1}
        assert plan(fresh, later) == expected
        assert run(fresh, later) == expected
        assert count(fresh, Obligation.institution_id == lender.id) == 0
        assert count(fresh, table=ObligationVersion) == 0 and count(fresh, table=ObligationDebtor) == 0
        assert count(fresh, table=Consent) == 0
        # Forgotten: neither the identity number's ciphertext nor its blind index is left.
        assert count(fresh, Person.blind_index == blind_index(fresh, person), table=Person) == 0
        assert count(fresh, table=Person) == 0
        # The answers are shredded, not gone: the lender is told so (410), with the hash it was given.
        r = client.get(f"/v1/exposure/{answer['exposure_id']}", headers=lender.headers)
        assert r.status_code == 410 and r.json()["code"] == "shredded"
        assert count(fresh, ExposureRecord.response.is_not(None), table=ExposureRecord) == 0
        assert run(fresh, later) == ZERO and plan(fresh, later) == ZERO  # a second run deletes nothing

    def test_a_line_still_live_or_reopened_stays(self, fresh, client, lender, data_dir):
        person = make_person(client, data_dir)
        live, reopened = new_ref(), new_ref()
        put(client, lender, live, debtors=[debtor(person)])
        put(client, lender, reopened, debtors=[debtor(person)])
        close(client, lender, reopened, person)
        put(client, lender, reopened, debtors=[debtor(person)], as_of="2026-11-25T00:00:00Z")  # reported again
        later = utcnow() + timedelta(days=3650)
        # Only this month's pseudonym of the person goes: their access events are past their period.
        assert run(fresh, later) == {**ZERO, "access_event": 1}
        assert obligation_id(fresh, live) and obligation_id(fresh, reopened)
        assert count(fresh, table=Person) == 1

    def test_a_closed_collection_claim_is_kept_its_own_period(self, fresh, client, data_dir):
        collector = make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "collector")
        person = make_person(client, data_dir)
        ref = new_ref()
        put(client, collector, ref, kind="collection_claim", debtors=[debtor(person)], status="in_collection",
            overdue_amount=8_500_000, days_past_due=120)
        put(client, collector, ref, kind="collection_claim", debtors=[debtor(person)], status="closed", balance=0,
            as_of="2026-11-20T00:00:00Z")
        now = utcnow()
        assert plan(fresh, now + timedelta(days=364)) == ZERO
        assert run(fresh, now + timedelta(days=366)) == {**ZERO, "claim_closed": 1, "person": 1}

    def test_a_country_can_have_its_own_period(self, backend, tmp_path, data_dir, keys):  # noqa: ANN001
        url = f"sqlite:///{tmp_path / 'c.db'}" if backend == "sqlite" else create_pg_database()
        try:
            upgrade(url)
            app = create_app(make_settings(url, data_dir, retention_by_country={"NO": {"ended": 0}}), keys=keys)
            with TestClient(app) as c:
                headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                norway = make_institution(c, headers, "lender", country="NO")
                sweden = make_institution(c, headers, "lender", country="SE")
                person = make_person(c, data_dir)
                for inst in (norway, sweden):
                    ref = new_ref()
                    put(c, inst, ref, debtors=[debtor(person)])
                    close(c, inst, ref, person)
                tomorrow = utcnow() + timedelta(days=1)
                assert run(app, tomorrow) == {**ZERO, "ended": 1}  # Norway's line only: deleted when repaid
                assert count(app, Obligation.institution_id == norway.id) == 0
                assert count(app, Obligation.institution_id == sweden.id) == 1
            app.state.register.engine.dispose()
        finally:
            if backend == "postgres":
                drop_pg_database(url)


class TestReportFiles:
    def test_an_uploaded_file_is_gone_after_its_window_and_the_report_stays(self, fresh, client, lender):
        body = "\n".join(json.dumps({**obligation_body(), "external_ref": new_ref()}) for _ in range(3))
        r = client.post("/v1/reports", content=body.encode(),
                        headers={**lender.headers, "Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        report_id = r.json()["id"]
        state = fresh.state.register
        ReportWorker(state.sessions, state.cipher, allow_test=False).run_pending()
        assert count(fresh, ReportChunk.report_id == report_id, table=ReportChunk) >= 1

        now = utcnow()
        assert plan(fresh, now + timedelta(days=13)) == ZERO
        assert run(fresh, now + timedelta(days=15)) == {**ZERO, "report_file": 1}
        assert count(fresh, ReportChunk.report_id == report_id, table=ReportChunk) == 0
        done = client.get(f"/v1/reports/{report_id}", headers=lender.headers).json()
        assert done["status"] == "done" and done["accepted"] == 3
        assert count(fresh, table=Obligation) == 3  # the lines it reported are live: they stay
        assert count(fresh, Report.id == report_id, table=Report) == 1


class TestInterrupted:
    def test_a_run_stopped_half_way_and_run_again_deletes_each_thing_once(self, fresh, client, lender, data_dir):
        persons = [make_person(client, data_dir) for _ in range(5)]
        for p in persons:
            ref = new_ref()
            put(client, lender, ref, debtors=[debtor(p)])
            close(client, lender, ref, p)
        later = utcnow() + timedelta(days=99)
        planned = plan(fresh, later)
        assert planned == {**ZERO, "ended": 5, "person": 5}

        class Killed(Exception):
            pass

        def kill_after_two(what: str, n: int) -> None:
            if what == "obligations" and n == 2:
                raise Killed

        with pytest.raises(Killed):
            run(fresh, later, progress=kill_after_two, batch=2)  # two obligations a transaction
        # Whole obligations only: each left has its versions and debtors; no version or debtor is orphaned.
        assert count(fresh, table=Obligation) == 3
        assert count(fresh, ObligationVersion.obligation_id.not_in(select(Obligation.id)), table=ObligationVersion) == 0
        assert count(fresh, ObligationDebtor.obligation_id.not_in(select(Obligation.id)), table=ObligationDebtor) == 0
        assert count(fresh, table=ObligationVersion) == 3 * 2 and count(fresh, table=ObligationDebtor) == 3
        assert plan(fresh, later) == {**ZERO, "ended": 3, "person": 5}
        assert run(fresh, later) == {**ZERO, "ended": 3, "person": 5}
        assert run(fresh, later) == ZERO


class TestConcurrentReports:
    def test_a_report_arriving_during_a_run_is_kept_whole(self, fresh, client, lender, data_dir):
        person = make_person(client, data_dir)
        refs = [new_ref(), new_ref()]
        for ref in refs:
            put(client, lender, ref, debtors=[debtor(person)])
            close(client, lender, ref, person)
        later = utcnow() + timedelta(days=99)
        assert plan(fresh, later)["ended"] == 2
        reopened: list[str] = []

        def report_during_the_run(what: str, n: int) -> None:
            if what == "obligations" and not reopened:  # the other line is reported again before its turn
                ref = next(r for r in refs if obligation_id(fresh, r) is not None)
                put(client, lender, ref, debtors=[debtor(person)], as_of="2026-11-25T00:00:00Z")
                reopened.append(ref)

        assert run(fresh, later, progress=report_during_the_run, batch=1) == {**ZERO, "ended": 1}
        ob = client.get(f"/v1/obligations/{reopened[0]}", headers=lender.headers)
        assert ob.status_code == 200 and ob.json()["status"] == "current"
        assert [v["version"] for v in client.get(f"/v1/obligations/{reopened[0]}/versions",
                                                 headers=lender.headers).json()["versions"]] == [1, 2, 3]
        assert count(fresh, table=Person) == 1  # still named by the line reported again

    def test_a_deleted_line_reported_again_is_created_anew(self, fresh, client, lender, data_dir):
        person = make_person(client, data_dir)
        ref = new_ref()
        put(client, lender, ref, debtors=[debtor(person)])
        close(client, lender, ref, person)
        assert run(fresh, utcnow() + timedelta(days=99)) == {**ZERO, "ended": 1, "person": 1}
        put(client, lender, ref, debtors=[debtor(person)], as_of="2026-11-25T00:00:00Z")
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()["version"] == 1

    def test_one_run_at_a_time(self, fresh, backend):
        if backend == "sqlite":
            pytest.skip("SQLite's writers take turns; only PostgreSQL has a lock to hold across the run")
        sessions = fresh.state.register.sessions
        with sessions.begin() as held:
            assert retention_store.try_lock_retention(held)
            assert retention.run(sessions, policy(fresh), now=utcnow()) is None
        assert retention.run(sessions, policy(fresh), now=utcnow()) is not None


class TestJob:
    def test_the_servers_job_runs_retention(self, fresh, client, lender, data_dir):
        person = make_person(client, data_dir)
        ref = new_ref()
        put(client, lender, ref, debtors=[debtor(person)])
        close(client, lender, ref, person)
        later = utcnow() + timedelta(days=99)
        job = retention.RetentionJob(fresh.state.register.sessions, policy(fresh), 3600, clock=lambda: later)
        counts = job.run_once()
        assert counts is not None and counts.deleted == {**ZERO, "ended": 1, "person": 1}
        job.start()
        job.stop()  # stops at once, between runs


class TestUnderLocks:
    """PostgreSQL, where a report and a run really overlap: a run skips what a report holds (never waiting
    in a lock cycle with reports) and decides on it at the next run."""

    @pytest.fixture(autouse=True)
    def _postgres_only(self, backend: str) -> None:
        if backend == "sqlite":
            pytest.skip("SQLite's writers take turns: a report and a deletion never overlap there")

    def test_a_line_a_report_holds_is_skipped_and_kept_once_reopened(self, fresh, client, lender, data_dir):
        import threading

        from register.services.obligations import report_obligation
        from register.domain.obligation import ObligationReport
        from register.domain.permission import Principal, Role

        person = make_person(client, data_dir)
        ref = new_ref()
        put(client, lender, ref, debtors=[debtor(person)])
        close(client, lender, ref, person)
        later = utcnow() + timedelta(days=99)
        state = fresh.state.register
        results: list = []
        with state.sessions.begin() as report:  # a report reopening the line, holding its lock
            report_obligation(report, state.cipher, principal=Principal(role=Role.lender, name="x",
                                                                        institution_id=lender.id),
                              external_ref=ref, now=utcnow(), allow_test_ids=False,
                              report=ObligationReport.model_validate(obligation_body(
                                  debtors=[debtor(person)], as_of="2026-11-25T00:00:00Z")))  # fmt: skip
            runner = threading.Thread(target=lambda: results.append(run(fresh, later)))
            runner.start()
            runner.join(timeout=60)  # the run does not wait for the report: it skips the line
            assert results == [ZERO]
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()["status"] == "current"
        assert run(fresh, later) == ZERO  # the next run decides on what the report committed: a live line

    def test_a_person_a_report_is_naming_is_not_forgotten(self, fresh, client, lender, data_dir):
        import threading

        from register.services.identities import resolve_person

        person = make_person(client, data_dir)
        grant(client, person.headers, lender.id, days=1)  # the person exists, with nothing but a consent
        later = utcnow() + timedelta(days=370)  # the consent, and any answer it was the basis of, ended
        assert plan(fresh, later)["person"] == 1
        state = fresh.state.register
        results: list = []
        with state.sessions.begin() as report:  # a report naming the person, not yet committed
            found = resolve_person(report, state.cipher, parse_national_id(person.country, person.nid))
            runner = threading.Thread(target=lambda: results.append(run(fresh, later)))
            runner.start()
            runner.join(timeout=60)  # the person the report holds is skipped, not waited for
            assert results == [ZERO]
            ob = Obligation(id="00000000-0000-4000-8000-000000000001", institution_id=lender.id, external_ref=new_ref(),
                            kind="instalment_loan", currency="SEK", balance=1, status="current", overdue_amount=0,
                            days_past_due=0, registration_consent={}, as_of=utcnow(), version=1, created_at=utcnow(),
                            updated_at=utcnow())  # fmt: skip
            report.add(ob)
            report.flush()
            report.add(ObligationDebtor(obligation_id=ob.id, person_id=found.id, role="primary"))
        assert count(fresh, Person.id == found.id, table=Person) == 1
        assert run(fresh, later) == ZERO  # named by a line now


def test_a_bad_country_override_stops_the_server_at_start(tmp_path, data_dir, keys):  # noqa: ANN001
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", data_dir, retention_by_country={"NO": {"forever": 1}})
    with pytest.raises(ValueError, match="REGISTER_RETENTION_BY_COUNTRY: NO: no retention rule 'forever'"):
        create_app(settings, keys=keys)
