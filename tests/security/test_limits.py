"""Limits (OWASP API4 and API6 of 2023): the exposure rate and daily quota per institution, body, line
and page size caps, and consent checked before any debt is read. A refused request changes nothing but
its own access event."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from register.services.limits import ExposureLimits
from register.services.reports import ReportWorker
from register.storage.models import AccessEvent, ExposureRecord
from tests.api.test_exposure import events_for_request, query
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> FakeMonotonic:
    return FakeMonotonic()


def set_limits(app, monkeypatch, ticks, *, rate=0.0, burst=1, quota=0) -> ExposureLimits:
    limits = ExposureLimits(rate=rate, burst=burst, daily_quota=quota, clock=ticks)
    monkeypatch.setattr(app.state.register, "exposure_limits", limits)
    return limits


def answers_for(app, institution_id: str) -> int:
    with app.state.register.sessions() as s:
        return s.execute(select(func.count()).select_from(ExposureRecord)
                         .where(ExposureRecord.institution_id == institution_id)).scalar_one()


def concurrent_statuses(ask, threads: int, each: int) -> list[int]:  # noqa: ANN001
    """`ask()` called `each` times in a row by each of `threads` threads at once; every status it returned."""
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            status = ask()
            with lock:
                statuses.append(status)

    running = [threading.Thread(target=worker) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return statuses


@pytest.fixture
def consented(client, data_dir, lender):
    """A person with a debt and a consent to `lender`."""
    person = make_person(client, data_dir)
    client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
    return person, grant(client, person.headers, lender.id)


class TestRateLimit:
    def test_a_burst_gets_429_with_retry_after_and_each_refusal_is_logged(
        self, app, client, monkeypatch, ticks, lender, consented
    ):
        person, cid = consented
        set_limits(app, monkeypatch, ticks, rate=0.5, burst=3)
        statuses = [query(client, lender, person, cid) for _ in range(6)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429, 429]
        refused = statuses[3]
        assert refused.json()["code"] == "rate_limited" and refused.headers["retry-after"] == "2"
        assert refused.json()["receipt"]["event_id"]
        assert "totals" not in refused.text
        assert answers_for(app, lender.id) == 3
        for r in statuses[3:]:
            (ev,) = events_for_request(app, r.headers["x-request-id"])
            assert (ev.action, ev.outcome, ev.reason) == ("exposure:query", "refused", "rate_limited")
        log = client.get("/v1/me/access-log", headers=person.headers).json()["items"]
        assert sum(e["reason"] == "rate_limited" for e in log) == 3  # the person sees the refused tries
        ticks.now += 2
        assert query(client, lender, person, cid).status_code == 200

    def test_each_institution_has_its_own_bucket(self, app, client, admin_headers, data_dir, monkeypatch, ticks,
                                                 lender, consented):
        person, cid = consented
        other = make_institution(client, admin_headers, "lender")
        other_cid = grant(client, person.headers, other.id)
        set_limits(app, monkeypatch, ticks, rate=1, burst=1)
        assert query(client, lender, person, cid).status_code == 200
        assert query(client, lender, person, cid).status_code == 429
        assert query(client, other, person, other_cid).status_code == 200

    def test_invalid_and_unconsented_queries_count_against_the_rate(self, app, client, data_dir, monkeypatch,
                                                                    ticks, lender):
        """Probing for consents or identity numbers is throttled like any query."""
        person = make_person(client, data_dir)
        set_limits(app, monkeypatch, ticks, rate=1, burst=2)
        assert query(client, lender, person, "00000000-0000-4000-8000-000000000000").status_code == 403
        bad = make_person(client, data_dir)
        bad.nid = bad.nid[:-1] + str((int(bad.nid[-1]) + 1) % 10)
        assert query(client, lender, bad, "00000000-0000-4000-8000-000000000000").status_code == 422
        r = query(client, lender, bad, "00000000-0000-4000-8000-000000000000")
        assert r.status_code == 429
        (ev,) = events_for_request(app, r.headers["x-request-id"])
        assert (ev.reason, ev.subject) == ("rate_limited", None)  # no valid identity, no subject


class TestDailyQuota:
    def test_quota_then_429_until_the_next_utc_day(self, app, client, monkeypatch, ticks, lender, consented):
        person, cid = consented
        set_limits(app, monkeypatch, ticks, quota=2)
        late = datetime.now(UTC).replace(hour=23, minute=59, second=0, microsecond=0)
        monkeypatch.setattr(app.state.register, "clock", lambda: late)
        assert [query(client, lender, person, cid).status_code for _ in range(2)] == [200, 200]
        r = query(client, lender, person, cid)
        assert r.status_code == 429 and r.json()["code"] == "quota_exceeded"
        assert r.headers["retry-after"] == "60"
        (ev,) = events_for_request(app, r.headers["x-request-id"])
        assert (ev.outcome, ev.reason) == ("refused", "quota_exceeded") and ev.subject is not None
        assert answers_for(app, lender.id) == 2
        tomorrow = late + timedelta(minutes=2)
        monkeypatch.setattr(app.state.register, "clock", lambda: tomorrow)
        assert query(client, lender, person, cid).status_code == 200

    def test_refused_queries_use_no_quota(self, app, client, data_dir, monkeypatch, ticks, lender, consented):
        person, cid = consented
        set_limits(app, monkeypatch, ticks, quota=1)
        stranger = make_person(client, data_dir)
        for _ in range(3):
            assert query(client, lender, stranger, cid).status_code == 403
        assert query(client, lender, person, cid).status_code == 200

    def test_the_quota_is_shared_by_every_process(self, app, client, monkeypatch, ticks, lender, consented):
        """Another server process has its own rate buckets but reads the same counter."""
        person, cid = consented
        set_limits(app, monkeypatch, ticks, quota=2)
        assert [query(client, lender, person, cid).status_code for _ in range(2)] == [200, 200]
        set_limits(app, monkeypatch, FakeMonotonic(), quota=2)  # "another process"
        assert query(client, lender, person, cid).status_code == 429

    def test_concurrent_queries_never_overshoot(self, app, client, monkeypatch, ticks, lender, consented):
        person, cid = consented
        set_limits(app, monkeypatch, ticks, quota=4)
        statuses = concurrent_statuses(lambda: query(client, lender, person, cid).status_code, 4, 3)
        assert sorted(statuses) == [200] * 4 + [429] * 8
        assert answers_for(app, lender.id) == 4

    def test_a_quota_split_over_counters_is_given_out_whole_one_by_one(self, app, client, monkeypatch, ticks,
                                                                         lender, consented):
        """37 does not divide over the 16 counters of PostgreSQL (storage.quota): answers that land on a used-up
        counter take from another, so no answer is refused while any of the quota is left, and none passes it."""
        person, cid = consented
        set_limits(app, monkeypatch, ticks, quota=37)
        statuses = [query(client, lender, person, cid).status_code for _ in range(40)]
        assert statuses == [200] * 37 + [429] * 3
        assert answers_for(app, lender.id) == 37

    def test_a_quota_split_over_counters_never_overshoots_under_concurrency(self, app, client, monkeypatch, ticks,
                                                                            lender, consented):
        person, cid = consented
        set_limits(app, monkeypatch, ticks, quota=29)
        statuses = concurrent_statuses(lambda: query(client, lender, person, cid).status_code, 8, 5)
        assert sorted(statuses) == [200] * 29 + [429] * 11
        assert answers_for(app, lender.id) == 29


class TestSizeCaps:
    def test_a_burst_of_oversized_bodies_is_413_and_changes_nothing(self, app, client, lender, consented):
        person, cid = consented
        limit = app.state.register.settings.max_body_bytes
        ref = new_ref()
        padded = obligation_body(debtors=[debtor(person)], original_creditor="x" * limit)
        for _ in range(5):
            r = client.put(f"/v1/obligations/{ref}", json=padded, headers=lender.headers)
            assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        big = json.dumps({"country": "SE", "national_id": person.nid, "purpose": "credit_application",
                          "consent_id": cid, "pad": "x" * limit}).encode()
        chunked = client.post("/v1/exposure", content=iter([big[:1000], big[1000:]]),  # no Content-Length
                              headers={**lender.headers, "Content-Type": "application/json"})
        assert chunked.status_code == 413
        assert events_for_request(app, chunked.headers["x-request-id"]) == []
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 404
        assert answers_for(app, lender.id) == 0

    def test_a_batch_line_over_64_kib_is_refused_alone(self, app, client, lender):
        long_ref, ok_ref = new_ref(), new_ref()
        lines = [json.dumps({**obligation_body(original_creditor="y" * 70_000), "external_ref": long_ref}),
                 json.dumps({**obligation_body(), "external_ref": ok_ref})]
        r = client.post("/v1/reports", content="\n".join(lines).encode(),
                        headers={**lender.headers, "Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        state = app.state.register
        ReportWorker(state.sessions, state.cipher, allow_test=False).run_pending()
        errors = client.get(f"/v1/reports/{r.json()['id']}/errors", headers=lender.headers).text.splitlines()
        assert [(e["line"], e["code"]) for e in map(json.loads, errors)] == [(1, "line_too_long")]
        assert client.get(f"/v1/obligations/{long_ref}", headers=lender.headers).status_code == 404
        assert client.get(f"/v1/obligations/{ok_ref}", headers=lender.headers).status_code == 200

    @pytest.mark.parametrize(("path", "role"), [
        ("/v1/obligations", "lender"), ("/v1/audit/events", "regulator"), ("/v1/audit/checkpoints", "regulator"),
    ])
    def test_pages_are_capped_at_1000(self, client, admin_headers, path, role):
        inst = make_institution(client, admin_headers, role)
        assert client.get(path, params={"limit": 1000}, headers=inst.headers).status_code == 200
        r = client.get(path, params={"limit": 1001}, headers=inst.headers)
        assert r.status_code == 422 and r.json()["code"] == "validation_error"

    def test_event_search_pages_are_capped_at_1000(self, client, data_dir, regulator):
        person = make_person(client, data_dir)
        r = client.post("/v1/audit/events/search", json={"country": "SE", "national_id": person.nid, "limit": 1001},
                        headers=regulator.headers)
        assert r.status_code == 422


class TestNoConsentNoLookup:
    """An exposure query for a person who has given the asking institution no consent is refused before
    any debt is read: the refusal is the same whether or not the person has debts, and reading debts
    would fail the test."""

    def _refusal(self, client, lender, person, cid):
        r = query(client, lender, person, cid)
        assert r.status_code == 403
        doc = r.json()
        return {k: v for k, v in doc.items() if k not in ("request_id", "receipt")}

    def test_refused_alike_with_or_without_debts_and_without_reading_them(
        self, app, client, admin_headers, data_dir, monkeypatch, lender
    ):
        indebted, debt_free = make_person(client, data_dir), make_person(client, data_dir)
        for _ in range(3):
            client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(indebted)]),
                       headers=lender.headers)
        other = make_institution(client, admin_headers, "lender")
        consents_elsewhere = {p.nid: grant(client, p.headers, other.id) for p in (indebted, debt_free)}

        def no_reading(*_a, **_k):
            raise AssertionError("debts were read for a query without consent")

        monkeypatch.setattr("register.services.exposure.debt_rows_for_person", no_reading)
        missing = "00000000-0000-4000-8000-000000000000"
        assert self._refusal(client, lender, indebted, missing) == self._refusal(client, lender, debt_free, missing)
        assert (self._refusal(client, lender, indebted, consents_elsewhere[indebted.nid])
                == self._refusal(client, lender, debt_free, consents_elsewhere[debt_free.nid]))
        assert answers_for(app, lender.id) == 0
        with app.state.register.sessions() as s:
            reasons = s.execute(select(AccessEvent.reason).where(AccessEvent.actor_id == lender.id,
                                                                 AccessEvent.action == "exposure:query")).scalars()
            assert sorted(reasons) == ["consent_mismatch"] * 2 + ["consent_missing"] * 2


class TestIntegerCaps:
    """Integers in queries are capped at what a BIGINT holds: beyond it SQLite could not bind them (a 500)."""

    @pytest.mark.parametrize("params", [
        {"since": 2**63}, {"since": 17119479600037374491361280},
    ])
    def test_checkpoints_since(self, client, regulator, params):
        r = client.get("/v1/audit/checkpoints", params=params, headers=regulator.headers)
        assert r.status_code == 422 and r.json()["code"] == "validation_error"

    @pytest.mark.parametrize(("path", "params"), [
        ("/v1/audit/proof/inclusion", {"tree_size": 2**63, "leaf_index": 0}),
        ("/v1/audit/proof/inclusion", {"tree_size": 1, "leaf_index": 2**63}),
        ("/v1/audit/proof/consistency", {"first": 0, "second": 2**63}),
        ("/v1/audit/leaves", {"start": 2**63, "end": 2**63 + 1}),
    ])
    def test_proofs_and_leaves(self, client, regulator, path, params):
        assert client.get(path, params=params, headers=regulator.headers).status_code == 422
