"""Model-based test: hypothesis drives the API (report, update, retract, consent, revoke, query, time
passing) through the app on both databases, and a small in-memory model predicts every answer.

The model is written from SPEC §3, not from the code: newest `as_of` wins (older is 409, a retracted
obligation comes back only with a newer one); only a collector may report `collects` (a lender's try is
403 collector_only and changes nothing); exposure counts own debt (primary, co-debtor) in full
even when joint, guarantees apart as contingent, leaves out closed and retracted lines, counts a
collected debt once (at the claim's amount) only when the collected line's creditor names the claim
back in `handed_to` (else both count, and the claim says `collection_link: unconfirmed`), counts a
revolving line's limit and unused credit, and
flags lines older than 35 days as stale; a consent is refused once revoked or expired. After every
example, the regulator's search finds exactly one access event per action the model performed and
person it concerned (a change: each person the line names before or after it), with the outcome it
predicted, and none it did not.

The app's clock is the model's, so that consents expire and lines go stale when the model lets time pass.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from register.crypto.keys import StaticKeys
from register.main import create_app
from register.storage.migrate import upgrade
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database, make_settings
from tests.factories import consumer_headers, national_id, obligation_body

SETTINGS = settings(max_examples=25, stateful_step_count=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
PERSONS = 3
PURPOSES = ["credit_application", "credit_limit_review"]
LENDER_REFS = ["L-0", "L-1", "L-2"]
COLLECTOR_REFS = ["C-0", "C-1"]
OWN = {"primary", "co_debtor"}
REVOLVING = {"credit_card", "revolving_credit", "overdraft"}
STALE_AFTER = timedelta(days=35)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Reported:
    """The model of one obligation: what was last accepted."""

    id: str
    institution: str  # "lender" | "collector"
    ref: str
    kind: str
    currency: str
    balance: int
    credit_limit: int | None
    monthly_payment: int | None
    overdue_amount: int
    status: str
    debtors: dict[int, str]  # person index -> role
    as_of: datetime
    collects: str | None  # a lender ref
    body: dict[str, Any]
    handed_to: str | None = None  # a collector ref: the claim the lender says holds this line now
    retracted: bool = False


@dataclass
class Consent:
    id: str
    person: int
    purpose: str
    expires_at: datetime
    revoked: bool = False


@dataclass
class Harness:
    app: FastAPI
    client: TestClient
    data_dir: Path


@pytest.fixture(scope="module")
def harness(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """Its own database: the model must be the only writer."""
    data_dir = tmp_path_factory.mktemp("model")
    url = f"sqlite:///{data_dir / 'model.db'}" if backend == "sqlite" else create_pg_database()
    try:
        upgrade(url)
        app = create_app(make_settings(url, data_dir), keys=StaticKeys.generate())
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Harness(app, client, data_dir)
        app.state.register.engine.dispose()
    finally:
        if backend == "postgres":
            drop_pg_database(url)


def add(totals: dict[str, int], ob: Reported, creditors: set[str]) -> None:
    totals["balance"] += ob.balance
    if ob.kind in REVOLVING and ob.credit_limit is not None:
        totals["credit_limit"] += ob.credit_limit
        totals["unused_credit"] += max(ob.credit_limit - ob.balance, 0)
    totals["monthly_payments"] += ob.monthly_payment or 0
    totals["overdue_amount"] += ob.overdue_amount
    totals["obligations"] += 1
    creditors.add(ob.institution)


def zero() -> dict[str, int]:
    return dict.fromkeys(("balance", "credit_limit", "unused_credit", "monthly_payments", "overdue_amount",
                          "obligations"), 0)


class RegisterModel(RuleBasedStateMachine):
    harness: Harness  # set by the test

    def __init__(self) -> None:
        super().__init__()
        h = self.harness
        self.client = h.client
        self.now = datetime.now(UTC).replace(microsecond=0)
        h.app.state.register.clock = lambda: self.now
        self.seconds = itertools.count(1)
        self.obligations: dict[tuple[str, str], Reported] = {}
        self.consents: list[Consent] = []
        self.expected: Counter[tuple[str, str, str]] = Counter()  # (request id, action, outcome)
        self.inst: dict[str, dict] = {}
        for role in ("lender", "collector", "regulator"):
            r = self.client.post("/v1/institutions", json={"name": f"{role} {uuid.uuid4().hex[:6]}", "role": role},
                                 headers=ADMIN)
            assert r.status_code == 201, r.text
            self.inst[role] = r.json()
        self.nids = [national_id() for _ in range(PERSONS)]
        self.people = [consumer_headers(h.data_dir, "SE", nid, ttl=3600) for nid in self.nids]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.inst[role]['token']}"}

    def call(self, method: str, path: str, headers: dict[str, str], **kw: Any):
        rid = f"m-{uuid.uuid4().hex}"
        return rid, self.client.request(method, path, headers={**headers, "X-Request-ID": rid}, **kw)

    # --- reporting --------------------------------------------------------------------------------

    @rule(
        where=st.sampled_from([("lender", ref) for ref in LENDER_REFS] + [("collector", ref) for ref in COLLECTOR_REFS]),
        kind=st.sampled_from(["instalment_loan", "credit_card"]),
        currency=st.sampled_from(["SEK", "EUR"]),
        balance=st.integers(0, 5).map(lambda n: n * 10_000),
        extra=st.integers(0, 3).map(lambda n: n * 10_000),
        status=st.sampled_from(["current", "overdue", "closed"]),
        primary=st.integers(0, PERSONS - 1),
        others=st.lists(st.tuples(st.integers(0, PERSONS - 1), st.sampled_from(["co_debtor", "guarantor"])),
                        max_size=2),
        age_days=st.sampled_from([0, 0, 20, 50]),
        collects=st.sampled_from(LENDER_REFS + [None]),
        handed_to=st.sampled_from(COLLECTOR_REFS + [None]),
    )
    def report(self, where, kind, currency, balance, extra, status, primary, others, age_days, collects, handed_to):
        institution, ref = where
        if institution == "collector":
            kind = "collection_claim"
            handed_to = None
        else:
            collects = None
        if status == "closed":
            balance = extra = 0
        debtors = {primary: "primary"}
        for person, role in others:
            debtors.setdefault(person, role)
        as_of = self.now - timedelta(days=age_days) + timedelta(seconds=next(self.seconds))
        body = obligation_body(
            kind=kind, currency=currency, balance=balance, status=status, as_of=as_of.isoformat(),
            overdue_amount=extra if status == "overdue" else 0, days_past_due=30 if status == "overdue" else 0,
            monthly_payment=extra or None, original_amount=None, opened_on=None, matures_on=None,
            credit_limit=balance + extra + 10_000 if kind == "credit_card" else None,
            debtors=[{"country": "SE", "national_id": self.nids[p], "role": r} for p, r in debtors.items()],
        )
        if collects is not None:
            body["collects"] = {"institution_id": self.inst["lender"]["id"], "external_ref": collects}
        if handed_to is not None:
            body["handed_to"] = {"institution_id": self.inst["collector"]["id"], "external_ref": handed_to}
        body = {k: v for k, v in body.items() if v is not None}
        self._put(institution, ref, body, Reported(
            id="", institution=institution, ref=ref, kind=kind, currency=currency, balance=balance,
            credit_limit=body.get("credit_limit"), monthly_payment=body.get("monthly_payment"),
            overdue_amount=body["overdue_amount"], status=status, debtors=debtors, as_of=as_of, collects=collects,
            body=body, handed_to=handed_to))

    @initialize(person=st.integers(0, PERSONS - 1), claim_balance=st.sampled_from([0, 50_000]),
                confirmed=st.booleans())
    def start_with_a_loan_at_a_collector(self, person, claim_balance, confirmed):
        """Every example starts with a collection claim on a lender's loan, confirmed by the lender or not."""
        self.report(("lender", "L-0"), "instalment_loan", "SEK", 40_000, 0, "current", person, [], 0, None, None)
        self.report(("collector", "C-0"), "collection_claim", "SEK", claim_balance, 0, "current", person, [], 0,
                    "L-0", None)
        if confirmed:
            self.hand_over_data(("lender", "L-0"), "C-0")

    @precondition(lambda self: any(k[0] == "lender" for k in self.obligations))
    @rule(data=st.data())
    def hand_over(self, data):
        """A lender names (or stops naming) a collector's claim as the holder of its line."""
        key = data.draw(st.sampled_from(sorted(k for k in self.obligations if k[0] == "lender")))
        self.hand_over_data(key, data.draw(st.sampled_from(COLLECTOR_REFS + [None])))

    def hand_over_data(self, key: tuple[str, str], claim_ref: str | None) -> None:
        old = self.obligations[key]
        as_of = self.now + timedelta(seconds=next(self.seconds))  # newer than any as_of reported before
        body = {k: v for k, v in old.body.items() if k != "handed_to"}
        body["as_of"] = as_of.isoformat()
        if claim_ref is not None:
            body["handed_to"] = {"institution_id": self.inst["collector"]["id"], "external_ref": claim_ref}
        new = Reported(**{**old.__dict__, "as_of": as_of, "body": body, "handed_to": claim_ref, "retracted": False})
        self._put(*key, body, new)

    @rule(target_ref=st.sampled_from(LENDER_REFS), ref=st.sampled_from(LENDER_REFS), primary=st.integers(0, PERSONS - 1))
    def lender_reports_collects(self, target_ref, ref, primary):
        """The attack: a lender says its zero-balance claim collects a line. Refused; nothing changes."""
        body = obligation_body(
            kind="collection_claim", balance=0, status="in_collection", monthly_payment=None, original_amount=None,
            matures_on=None, as_of=(self.now + timedelta(seconds=next(self.seconds))).isoformat(),
            debtors=[{"country": "SE", "national_id": self.nids[primary], "role": "primary"}],
            collects={"institution_id": self.inst["lender"]["id"], "external_ref": target_ref})
        _, r = self.call("PUT", f"/v1/obligations/{ref}", self.auth("lender"), json=body)
        assert (r.status_code, r.json()["code"]) == (403, "collector_only"), r.text

    @precondition(lambda self: self.obligations)
    @rule(data=st.data())
    def resend_older(self, data):
        """A retried old report: the same ref, an as_of before the stored one."""
        key = data.draw(st.sampled_from(sorted(self.obligations)))
        old = self.obligations[key]
        body = {**old.body, "as_of": (old.as_of - timedelta(seconds=1)).isoformat()}
        _, r = self.call("PUT", f"/v1/obligations/{old.ref}", self.auth(old.institution), json=body)
        assert (r.status_code, r.json()["code"]) == (409, "stale_update"), r.text

    def _put(self, institution: str, ref: str, body: dict, new: Reported) -> None:
        rid, r = self.call("PUT", f"/v1/obligations/{ref}", self.auth(institution), json=body)
        old = self.obligations.get((institution, ref))
        if old is None:
            assert r.status_code == 201, r.text
            self.expected[(rid, "obligation:created", "ok")] += len(new.debtors)  # one per person it names
        elif new.as_of <= old.as_of:  # never equal here: every as_of is unique
            assert (r.status_code, r.json()["code"]) == (409, "stale_update"), r.text
            return
        else:
            assert r.status_code == 200, r.text
            change = "reinstated" if old.retracted else "updated"
            # one per person the line names before or after the change
            self.expected[(rid, f"obligation:{change}", "ok")] += len(set(old.debtors) | set(new.debtors))
        new.id = r.json()["id"]
        self.obligations[(institution, ref)] = new

    @precondition(lambda self: self.obligations)
    @rule(data=st.data())
    def retract(self, data):
        key = data.draw(st.sampled_from(sorted(self.obligations)))
        ob = self.obligations[key]
        rid, r = self.call("DELETE", f"/v1/obligations/{ob.ref}", self.auth(ob.institution),
                           params={"reason": "reported in error"})
        if ob.retracted:
            assert (r.status_code, r.json()["code"]) == (410, "retracted"), r.text
            return
        assert r.status_code == 200, r.text
        ob.retracted = True
        self.expected[(rid, "obligation:retracted", "ok")] += len(ob.debtors)

    # --- consent ----------------------------------------------------------------------------------

    @rule(person=st.integers(0, PERSONS - 1),
          purpose=st.sampled_from(PURPOSES),
          days=st.sampled_from([1, 30, 89]))
    def consent(self, person, purpose, days):
        expires_at = self.now + timedelta(days=days)
        rid, r = self.call("POST", "/v1/consents", self.people[person], json={
            "institution_id": self.inst["lender"]["id"], "purpose": purpose, "expires_at": expires_at.isoformat()})
        assert r.status_code == 201, r.text
        self.consents.append(Consent(r.json()["id"], person, purpose, expires_at))
        self.expected[(rid, "consent:grant", "ok")] += 1

    @precondition(lambda self: self.consents)
    @rule(data=st.data())
    def revoke(self, data):
        c = data.draw(st.sampled_from(self.consents))
        rid, r = self.call("DELETE", f"/v1/consents/{c.id}", self.people[c.person])
        assert r.status_code == 200, r.text
        if not c.revoked:  # revoking again is harmless and records nothing
            self.expected[(rid, "consent:revoke", "ok")] += 1
        c.revoked = True

    @rule(days=st.sampled_from([1, 10, 40]))
    def pass_time(self, days):
        self.now += timedelta(days=days)

    # --- queries ----------------------------------------------------------------------------------

    @precondition(lambda self: self.consents)
    @rule(data=st.data())
    def query(self, data):
        c = data.draw(st.sampled_from(self.consents))
        person = data.draw(st.sampled_from([c.person] * 3 + list(range(PERSONS))))  # mostly the consent's
        purpose = data.draw(st.sampled_from([c.purpose] * 3 + PURPOSES))
        rid, r = self.call("POST", "/v1/exposure", self.auth("lender"), json={
            "country": "SE", "national_id": self.nids[person], "purpose": purpose, "consent_id": c.id})
        if c.person != person or c.purpose != purpose:
            refusal = "consent_mismatch"
        elif c.revoked:
            refusal = "consent_revoked"
        elif c.expires_at <= self.now:
            refusal = "consent_expired"
        else:
            refusal = None
        if refusal:
            assert (r.status_code, r.json()["code"]) == (403, refusal), r.text
            self.expected[(rid, "exposure:query", "refused")] += 1
            return
        assert r.status_code == 200, r.text
        self.expected[(rid, "exposure:query", "granted")] += 1
        self.check_exposure(r.json(), person)

    @rule(person=st.integers(0, PERSONS - 1))
    def my_obligations(self, person):
        rid, r = self.call("GET", "/v1/me/obligations", self.people[person])
        assert r.status_code == 200, r.text
        self.expected[(rid, "consumer:obligations:read", "ok")] += 1
        self.check_exposure(r.json(), person, include_closed=True)

    def check_exposure(self, answer: dict, person: int, *, include_closed: bool = False) -> None:
        want = self.exposure_of(person, include_closed=include_closed)
        got_lines = {ln["id"]: (ln["role"], ln["joint"], ln["stale"], ln["counted"], ln["balance"],
                                ln["collection_link"]) for ln in answer["obligations"]}
        assert got_lines == want["lines"]
        for part in ("totals", "contingent", "collections", "by_kind"):
            assert answer[part] == want[part], (part, answer[part], want[part])

    def exposure_of(self, person: int, *, include_closed: bool) -> dict[str, Any]:
        """SPEC §3 Exposure, from the model alone."""
        mine = [ob for ob in self.obligations.values() if person in ob.debtors and not ob.retracted]
        active = [ob for ob in mine if ob.status != "closed"]
        by_ref = {(ob.institution, ob.ref): ob for ob in mine}  # closed ones too: a link is about naming

        def link(ob: Reported) -> str | None:
            if ob.collects is None:
                return None
            target = by_ref.get(("lender", ob.collects))
            return "confirmed" if target is not None and target.handed_to == ob.ref else "unconfirmed"

        collected = {by_ref[("lender", ob.collects)].id for ob in active
                     if link(ob) == "confirmed" and by_ref[("lender", ob.collects)].status != "closed"}
        totals: dict[str, dict[str, int]] = defaultdict(zero)
        contingent: dict[str, dict[str, int]] = defaultdict(zero)
        by_kind: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(zero))
        creditors: dict[tuple[str, ...], set[str]] = defaultdict(set)
        collections = {"count": 0, "amount": defaultdict(int)}
        lines = {}
        for ob in mine if include_closed else active:
            role = ob.debtors[person]
            counted = ob.status != "closed" and ob.id not in collected
            joint = sum(1 for r in ob.debtors.values() if r in OWN) > 1
            lines[ob.id] = (role, joint, self.now - ob.as_of > STALE_AFTER, counted, ob.balance, link(ob))
            if not counted:
                continue
            if role in OWN:
                add(totals[ob.currency], ob, creditors[("t", ob.currency)])
                add(by_kind[ob.kind][ob.currency], ob, creditors[("k", ob.kind, ob.currency)])
                if ob.kind == "collection_claim":
                    collections["count"] += 1
                    collections["amount"][ob.currency] += ob.balance
            else:
                add(contingent[ob.currency], ob, creditors[("c", ob.currency)])

        def done(groups: dict[str, dict[str, int]], *key: str) -> dict[str, dict[str, int]]:
            return {cur: {**t, "creditors": len(creditors[(*key, cur)])} for cur, t in groups.items()}

        return {
            "lines": lines,
            "totals": done(totals, "t"),
            "contingent": done(contingent, "c"),
            "by_kind": {kind: done(groups, "k", kind) for kind, groups in by_kind.items()},
            "collections": {"count": collections["count"], "amount": dict(collections["amount"])},
        }

    # --- the access log ---------------------------------------------------------------------------

    def teardown(self) -> None:
        """Exactly one event per action the model performed, as the regulator finds them person by person;
        none for a refusal that changed nothing (stale, already retracted, repeated revoke)."""
        found: Counter[tuple[str, str, str]] = Counter()
        seen: set[str] = set()
        for nid in self.nids:
            cursor = None
            while True:
                r = self.client.post("/v1/audit/events/search", headers=self.auth("regulator"), json={
                    "country": "SE", "national_id": nid, "limit": 1000, **({"cursor": cursor} if cursor else {})})
                assert r.status_code == 200, r.text
                for e in r.json()["items"]:
                    if e["action"] != "regulator:events:search" and e["id"] not in seen:
                        seen.add(e["id"])
                        found[(e["request_id"], e["action"], e["outcome"])] += 1
                cursor = r.json()["next_cursor"]
                if cursor is None:
                    break
        assert found == self.expected, {"missing": self.expected - found, "unexpected": found - self.expected}


def test_the_api_follows_the_model(harness: Harness):
    RegisterModel.harness = harness
    try:
        run_state_machine_as_test(RegisterModel, settings=SETTINGS)
    finally:
        from register.storage.types import utcnow

        harness.app.state.register.clock = utcnow
