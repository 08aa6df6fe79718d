"""A report's batches in flight (services.report_writer): on PostgreSQL the next batch is planned while the one
before it commits; what that must never change (every line applied once, in file order, progress only over
committed lines) is tried here against the real worker, with the races made to happen."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from register.domain.permission import Principal, Role
from register.services import bulk, report_writer, reports
from tests.factories import national_id, new_ref, obligation_body


def line(**overrides) -> str:
    return json.dumps({**obligation_body(), "external_ref": new_ref(), **overrides})


def upload(client, inst, lines: list[str]) -> str:
    r = client.post("/v1/reports", content=("\n".join(lines) + "\n").encode(),
                    headers={**inst.headers, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def process(app, inst, rid: str, *, batch: int = 2) -> dict:
    state = app.state.register
    principal = Principal(role=Role.lender, name=inst.name, institution_id=inst.id)
    assert reports.process_report(state.sessions, state.cipher, rid, allow_test=False, principal=principal,
                                  batch=batch, processes=0)
    return state


def doc(client, inst, rid: str) -> dict:
    return client.get(f"/v1/reports/{rid}", headers=inst.headers).json()


def versions(client, inst, ref: str) -> list[dict]:
    r = client.get(f"/v1/obligations/{ref}/versions", headers=inst.headers)
    assert r.status_code == 200, r.text
    return r.json()["versions"]


@pytest.fixture
def calls(monkeypatch):
    """Every plan and write of a batch, by the first line number in it, in the order they ran."""
    seen: list[tuple[str, int]] = []
    hooks: dict[str, object] = {}

    def first(kw) -> int:
        return min(p.line for p in kw["lines"]) if kw.get("lines") else 0

    def plan_batch(session, cipher, **kw):
        n = first(kw)
        if n:  # not the last, empty one that records the progress over what follows the last line
            seen.append(("plan", n))
        if "plan" in hooks:
            hooks["plan"](n)
        plan = bulk.plan_batch(session, cipher, **kw)
        plan.first = n
        return plan

    def write_plan(session, plan, **kw):
        if plan.first:
            seen.append(("write", plan.first))
        if "write" in hooks:
            hooks["write"](plan.first, session)
        return bulk.write_plan(session, plan, **kw)

    monkeypatch.setattr(reports, "plan_batch", plan_batch)
    monkeypatch.setattr(reports, "write_plan", write_plan)
    seen_hooks = type("Calls", (), {"seen": seen, "hooks": hooks})
    return seen_hooks


def test_the_next_batch_is_planned_while_the_one_before_is_written_on_postgresql(app, client, lender, calls, backend):
    """On PostgreSQL batch 2's plan runs while batch 1's writes are under way (its write waits, up to a bound,
    for that plan to start); on SQLite, one writer at a time, each batch is planned and written in turn."""
    planned_2 = threading.Event()
    overlapped = []
    calls.hooks["plan"] = lambda n: planned_2.set() if n == 3 else None
    calls.hooks["write"] = lambda n, s: overlapped.append(planned_2.wait(10)) if n == 1 and backend == "postgres" else None
    refs = [new_ref() for _ in range(6)]
    rid = upload(client, lender, [line(external_ref=r) for r in refs])
    process(app, lender, rid)
    d = doc(client, lender, rid)
    assert (d["status"], d["lines_read"], d["accepted"], d["rejected"]) == ("done", 6, 6, 0), d
    if backend == "postgres":
        assert overlapped == [True]  # batch 2 was planned before batch 1's writes were done
    else:
        assert calls.seen == [("plan", 1), ("write", 1), ("plan", 3), ("write", 3), ("plan", 5), ("write", 5)]
    for r in refs:
        assert [v["version"] for v in versions(client, lender, r)] == [1]


def test_a_line_named_again_by_the_next_batch_waits_for_the_first_to_commit(app, client, lender, calls):
    """Line 3 changes the obligation line 1 created, one batch later: its plan must see line 1 committed (a
    plan beside it would find no row and insert the reference twice). Each batch is planned and written once."""
    ref = new_ref()
    lines = [line(external_ref=ref, balance=1000, as_of="2026-11-01T00:00:00Z"), line(),
             line(external_ref=ref, balance=900, as_of="2026-11-02T00:00:00Z"), line()]
    rid = upload(client, lender, lines)
    process(app, lender, rid)
    d = doc(client, lender, rid)
    assert (d["status"], d["lines_read"], d["accepted"], d["rejected"]) == ("done", 4, 4, 0), d
    assert sorted(calls.seen) == [("plan", 1), ("plan", 3), ("write", 1), ("write", 3)]
    assert calls.seen.index(("write", 1)) < calls.seen.index(("plan", 3))
    assert [(v["version"], v["state"]["balance"]) for v in versions(client, lender, ref)] == [(1, 1000), (2, 900)]


class TestRaces:
    """PostgreSQL: on SQLite a single report cannot commit inside a batch's transaction (one writer at a time)."""

    @pytest.fixture(autouse=True)
    def _postgres_only(self, backend: str) -> None:
        if backend == "sqlite":
            pytest.skip("SQLite's writers take turns: nothing commits between a batch's plan and its writes")

    def test_a_line_a_single_report_adds_before_the_batch_writes_it_is_applied_once(self, app, client, lender,
                                                                                  calls):
        """A single report creates, between batch 2's plan and its writes, the obligation one of its lines
        creates: batch 2 fails on the unique reference and is rolled back with batch 3 (planned beside it);
        both are planned and written again, and the line becomes the obligation's second version."""
        refs = [new_ref() for _ in range(6)]
        raced = {}

        def write(n, session):
            if n == 3 and not raced:
                body = obligation_body(as_of="2026-10-01T00:00:00Z",
                                       debtors=[{"country": "SE", "national_id": national_id(), "role": "primary"}])
                raced["put"] = client.put(f"/v1/obligations/{refs[3]}", headers=lender.headers, json=body).status_code

        calls.hooks["write"] = write
        rid = upload(client, lender, [line(external_ref=r, as_of="2026-11-01T00:00:00Z") for r in refs])
        process(app, lender, rid)
        assert raced == {"put": 201}
        d = doc(client, lender, rid)
        assert (d["status"], d["lines_read"], d["accepted"], d["rejected"]) == ("done", 6, 6, 0), d
        assert calls.seen.count(("plan", 3)) == 2  # planned again after the conflict
        assert [v["request_id"].startswith("report:") for v in versions(client, lender, refs[3])] == [False, True]
        for r in refs[:3] + refs[4:]:
            assert [v["version"] for v in versions(client, lender, r)] == [1]

    def test_a_batch_whose_writes_wait_too_long_for_a_lock_is_done_again_not_failed(self, app, client, lender,
                                                                                  calls, monkeypatch):
        """A transaction holds a row batch 2's writes need (here the report's own progress) past LOCK_WAIT: the
        writes give up instead of waiting on, batch 2 and the batch planned beside it are rolled back and done
        again one at a time, once the row is free. In the real case the holder waits for the batch after, which
        waits for this one: a cycle PostgreSQL cannot see, which this bound breaks."""
        monkeypatch.setattr(report_writer, "LOCK_WAIT", 0.2)
        state = app.state.register
        holder = state.sessions()
        rid = upload(client, lender, [line() for _ in range(6)])

        def write(n, session):
            if n == 3 and ("write", 3) not in calls.seen[:-1]:
                holder.execute(text("UPDATE reports SET heartbeat_at = heartbeat_at WHERE id = :id"), {"id": rid})

        def plan(n):
            if n == 3 and ("plan", 3) in calls.seen[:-1]:  # planned again: the holder lets go
                holder.commit()

        calls.hooks["write"], calls.hooks["plan"] = write, plan
        try:
            process(app, lender, rid)
        finally:
            holder.rollback()
            holder.close()
        d = doc(client, lender, rid)
        assert (d["status"], d["lines_read"], d["accepted"], d["rejected"]) == ("done", 6, 6, 0), d
        assert calls.seen.count(("plan", 3)) == 2 and calls.seen.count(("write", 3)) == 2
