"""The lender's exposure query: the consent matrix, the answer's content, and totals checked against an
independent recomputation over a random population."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from register.api.schemas import ExposurePublic
from register.canonical import canonical_json
from register.storage.models import AccessEvent, ExposureRecord
from tests.factories import (
    debtor, grant, in_days, make_institution, make_person, new_ref, obligation_body,
)


def query(client, inst, person, consent_id, purpose="credit_application"):
    return client.post("/v1/exposure", json={"country": person.country, "national_id": person.nid,
                                             "purpose": purpose, "consent_id": consent_id}, headers=inst.headers)


def events_for_request(app, request_id: str) -> list[AccessEvent]:
    with app.state.register.sessions() as s:
        return list(s.execute(select(AccessEvent).where(AccessEvent.request_id == request_id)).scalars())


class TestConsentMatrix:
    """Every way a consent can be wrong gives 403 with its code, and an access event each."""

    def _assert_refused(self, app, r, code):
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code
        assert "totals" not in r.json() and "obligations" not in r.json()
        events = events_for_request(app, r.headers["x-request-id"])
        assert [(e.action, e.outcome, e.reason) for e in events] == [("exposure:query", "refused", code)]

    def test_no_consent(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        self._assert_refused(app, query(client, lender, person, "00000000-0000-4000-8000-000000000000"),
                             "consent_missing")

    def test_other_lenders_consent(self, app, client, admin_headers, data_dir, lender):
        other = make_institution(client, admin_headers, "lender")
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, other.id)
        self._assert_refused(app, query(client, lender, person, cid), "consent_mismatch")

    def test_other_persons_consent(self, app, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        cid = grant(client, x.headers, lender.id)
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(y)]), headers=lender.headers)
        self._assert_refused(app, query(client, lender, y, cid), "consent_mismatch")

    def test_other_purpose(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id, purpose="debt_restructuring")
        self._assert_refused(app, query(client, lender, person, cid, purpose="credit_application"),
                             "consent_mismatch")

    def test_expired(self, app, client, data_dir, lender, monkeypatch):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id, days=1)
        later = datetime.now(UTC) + timedelta(days=2)
        monkeypatch.setattr(app.state.register, "clock", lambda: later)
        self._assert_refused(app, query(client, lender, person, cid), "consent_expired")

    def test_revoked(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        assert query(client, lender, person, cid).status_code == 200
        client.delete(f"/v1/consents/{cid}", headers=person.headers)
        self._assert_refused(app, query(client, lender, person, cid), "consent_revoked")

    def test_attested_then_revoked(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        r = client.post("/v1/consents/attested", json={
            "country": person.country, "national_id": person.nid, "purpose": "credit_application",
            "expires_at": in_days(28), "evidence": {"method": "signed_application", "reference": "A-1",
                                                    "signed_at": "2026-11-20T10:00:00Z",
                                                    "document_sha256": hashlib.sha256(b"x").hexdigest()}},
            headers=lender.headers)
        cid = r.json()["id"]
        granted = query(client, lender, person, cid)
        assert granted.status_code == 200 and granted.json()["consent_source"] == "attested"
        client.delete(f"/v1/consents/{cid}", headers=person.headers)
        self._assert_refused(app, query(client, lender, person, cid), "consent_revoked")

    def test_invalid_identity_is_422_and_still_recorded(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        bad = person.nid[:-1] + str((int(person.nid[-1]) + 1) % 10)
        r = client.post("/v1/exposure", json={"country": "SE", "national_id": bad, "purpose": "credit_application",
                                              "consent_id": cid}, headers=lender.headers)
        assert r.status_code == 422 and r.json()["code"] == "invalid_national_id"
        events = events_for_request(app, r.headers["x-request-id"])
        assert [(e.outcome, e.reason) for e in events] == [("refused", "invalid_national_id")]

    def test_regulator_and_consumer_cannot_query(self, client, admin_headers, data_dir, lender):
        regulator = make_institution(client, admin_headers, "regulator")
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        assert query(client, regulator, person, cid).status_code == 403
        r = client.post("/v1/exposure", json={"country": "SE", "national_id": person.nid,
                                              "purpose": "credit_application", "consent_id": cid},
                        headers=person.headers)
        assert r.status_code == 403


class TestAnswer:
    def test_granted_answer(self, app, client, admin_headers, data_dir, lender):
        card_issuer = make_institution(client, admin_headers, "lender")
        collector = make_institution(client, admin_headers, "collector")
        person, partner, parent = (make_person(client, data_dir) for _ in range(3))
        loan_ref, claim_ref = new_ref(), new_ref()
        client.put(f"/v1/obligations/{loan_ref}", headers=lender.headers, json=obligation_body(
            debtors=[debtor(person)], balance=4_000_000, monthly_payment=100_000, status="in_collection",
            overdue_amount=4_000_000, days_past_due=120,
            handed_to={"institution_id": collector.id, "external_ref": claim_ref}))
        client.put(f"/v1/obligations/{claim_ref}", headers=collector.headers, json=obligation_body(
            kind="collection_claim", debtors=[debtor(person)], balance=4_300_000, monthly_payment=None,
            status="in_collection", overdue_amount=4_300_000, days_past_due=120,
            collects={"institution_id": lender.id, "external_ref": loan_ref}))
        client.put(f"/v1/obligations/{new_ref()}", headers=card_issuer.headers, json=obligation_body(
            kind="credit_card", debtors=[debtor(person)], credit_limit=3_000_000, balance=1_000_000,
            monthly_payment=30_000, original_amount=None))
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers, json=obligation_body(
            kind="mortgage", debtors=[debtor(partner), debtor(person, "co_debtor")], balance=200_000_000,
            monthly_payment=800_000))
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers, json=obligation_body(
            debtors=[debtor(parent), debtor(person, "guarantor")], balance=5_000_000, currency="EUR"))
        retracted = new_ref()
        client.put(f"/v1/obligations/{retracted}", headers=lender.headers,
                   json=obligation_body(debtors=[debtor(person)], balance=999))
        client.delete(f"/v1/obligations/{retracted}", params={"reason": "error"}, headers=lender.headers)
        client.put(f"/v1/obligations/{new_ref()}", headers=lender.headers, json=obligation_body(
            debtors=[debtor(person)], balance=0, monthly_payment=0, status="closed"))

        cid = grant(client, person.headers, lender.id)
        r = query(client, lender, person, cid)
        assert r.status_code == 200, r.text
        doc = r.json()
        ExposurePublic.model_validate(doc)  # the route returns its JSON directly: hold it to the documented model
        assert set(doc) == set(ExposurePublic.model_fields)
        assert person.nid not in r.text and doc["subject"]["national_id_masked"].endswith("****")
        sek = doc["totals"]["SEK"]
        # The collection claim counts the defaulted loan once, at the claim's amount.
        assert sek["balance"] == 4_300_000 + 1_000_000 + 200_000_000
        assert sek["credit_limit"] == 3_000_000 and sek["unused_credit"] == 2_000_000
        assert sek["monthly_payments"] == 30_000 + 800_000
        assert sek["overdue_amount"] == 4_300_000
        assert sek["obligations"] == 3 and sek["creditors"] == 3
        assert "EUR" not in doc["totals"] and doc["contingent"]["EUR"]["balance"] == 5_000_000
        assert doc["collections"] == {"count": 1, "amount": {"SEK": 4_300_000}}
        assert doc["by_kind"]["mortgage"]["SEK"]["balance"] == 200_000_000
        lines = {ln["kind"] + ("/" + ln["role"]): ln for ln in doc["obligations"]}
        loan = next(ln for ln in doc["obligations"] if ln["kind"] == "instalment_loan" and ln["role"] == "primary")
        claim = lines["collection_claim/primary"]
        assert loan["counted"] is False and loan["collected_by"] == claim["id"] and claim["collects"] == loan["id"]
        assert claim["collection_link"] == "confirmed" and loan["collection_link"] is None
        assert lines["mortgage/co_debtor"]["joint"] is True
        assert all(ln["balance"] != 999 for ln in doc["obligations"])  # retracted never appears
        assert all(ln["status"] != "closed" for ln in doc["obligations"])  # repaid is not exposure
        assert {ln["creditor"]["name"] for ln in doc["obligations"]} >= {lender.name, card_issuer.name}
        assert all(ln["disputed"] is False for ln in doc["obligations"])

    def test_answer_is_kept_by_exposure_id(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]),
                   headers=lender.headers)
        cid = grant(client, person.headers, lender.id)
        doc = query(client, lender, person, cid).json()
        with app.state.register.sessions() as s:
            record = s.get(ExposureRecord, doc["exposure_id"])
            answer = {k: v for k, v in doc.items() if k != "receipt"}  # the receipt covers the event, not the answer
            assert record is not None and record.response == answer and record.consent_id == cid
            assert record.response_sha256 == hashlib.sha256(canonical_json(answer)).hexdigest()

    def test_stale_line_is_marked(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)], as_of=old),
                   headers=lender.headers)
        doc = query(client, lender, person, grant(client, person.headers, lender.id)).json()
        assert doc["obligations"][0]["stale"] is True

    def test_person_without_debt_gets_empty_totals(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        r = query(client, lender, person, grant(client, person.headers, lender.id))
        assert r.status_code == 200 and r.json()["totals"] == {} and r.json()["obligations"] == []


def recompute(reports: dict, person_nid: str) -> dict:
    """The test's own reading of the rules, from what it reported (not from the register's lines)."""
    state = {k: v for k, v in reports.items() if not v.get("_retracted") and v["status"] != "closed"}
    by_ref = {(v["_inst"], k[1]): v for k, v in state.items()}
    mine = {k: v for k, v in state.items() if any(d["national_id"] == person_nid for d in v["debtors"])}
    collected = set()
    for k, v in mine.items():
        if v["kind"] == "collection_claim" and v.get("collects"):
            target = (v["collects"]["institution_id"], v["collects"]["external_ref"])
            if target in by_ref and (target[0], target[1]) in {(x["_inst"], kk[1]) for kk, x in mine.items()}:
                # ... and only when the collected line's creditor names this claim back
                if by_ref[target].get("handed_to") == {"institution_id": v["_inst"], "external_ref": k[1]}:
                    collected.add(target)
    totals: dict = defaultdict(lambda: defaultdict(int))
    contingent: dict = defaultdict(lambda: defaultdict(int))
    creditors: dict = defaultdict(set)
    for k, v in mine.items():
        if (v["_inst"], k[1]) in collected:
            continue
        role = next(d["role"] for d in v["debtors"] if d["national_id"] == person_nid)
        bucket = contingent if role == "guarantor" else totals
        t = bucket[v["currency"]]
        t["balance"] += v["balance"]
        t["obligations"] += 1
        t["overdue_amount"] += v.get("overdue_amount", 0)
        t["monthly_payments"] += v.get("monthly_payment") or 0
        if v["kind"] in ("credit_card", "revolving_credit", "overdraft"):
            t["credit_limit"] += v["credit_limit"]
            t["unused_credit"] += max(v["credit_limit"] - v["balance"], 0)
        if role != "guarantor":
            creditors[v["currency"]].add(v["_inst"])
    out = {}
    for cur, t in totals.items():
        out[cur] = {"balance": t["balance"], "credit_limit": t["credit_limit"], "unused_credit": t["unused_credit"],
                    "monthly_payments": t["monthly_payments"], "overdue_amount": t["overdue_amount"],
                    "obligations": t["obligations"], "creditors": len(creditors[cur])}
    return {"totals": out, "contingent_balance": {c: t["balance"] for c, t in contingent.items()}}


class TestRandomPopulation:
    @pytest.mark.parametrize("seed", [1, 2])
    def test_totals_match_independent_recomputation(self, client, admin_headers, data_dir, seed):
        rng = random.Random(seed)
        lenders = [make_institution(client, admin_headers, "lender") for _ in range(3)]
        collector = make_institution(client, admin_headers, "collector")
        people = [make_person(client, data_dir, rng.choice(["SE", "NO", "FI"])) for _ in range(8)]
        reports: dict = {}
        loans: list[tuple] = []
        for _ in range(40):
            inst = rng.choice(lenders)
            kind = rng.choice(["instalment_loan", "credit_card", "mortgage", "overdraft"])
            primary = rng.choice(people)
            others = [p for p in people if p is not primary]
            debtors = [debtor(primary)]
            if rng.random() < 0.3:
                debtors.append(debtor(others.pop(rng.randrange(len(others))), "co_debtor"))
            if rng.random() < 0.3:
                debtors.append(debtor(others.pop(rng.randrange(len(others))), "guarantor"))
            balance = rng.randrange(0, 5_000_000)
            body = obligation_body(
                kind=kind, debtors=debtors, currency=rng.choice(["SEK", "SEK", "EUR", "NOK"]), balance=balance,
                monthly_payment=rng.choice([None, rng.randrange(0, 50_000)]),
                credit_limit=balance + rng.randrange(0, 2_000_000) if kind in ("credit_card", "overdraft") else None,
                status=rng.choice(["current", "current", "overdue"]), overdue_amount=rng.randrange(0, 10_000),
                days_past_due=rng.randrange(0, 90))
            ref = new_ref()
            assert client.put(f"/v1/obligations/{ref}", json=body, headers=inst.headers).status_code == 201
            reports[(inst.id, ref)] = {**body, "_inst": inst.id}
            loans.append((inst, ref, body))
        for inst, ref, body in rng.sample(loans, 8):  # collection claims on some loans
            claim = obligation_body(kind="collection_claim", debtors=[body["debtors"][0]], currency=body["currency"],
                                    balance=rng.randrange(1, 3_000_000), status="in_collection",
                                    collects={"institution_id": inst.id, "external_ref": ref})
            cref = new_ref()
            assert client.put(f"/v1/obligations/{cref}", json=claim, headers=collector.headers).status_code == 201
            reports[(collector.id, cref)] = {**claim, "_inst": collector.id}
            if rng.random() < 0.6:  # most lenders confirm the hand-over; the others' lines count beside the claim
                handed = {**body, "as_of": "2026-11-05T00:00:00Z",
                          "handed_to": {"institution_id": collector.id, "external_ref": cref}}
                assert client.put(f"/v1/obligations/{ref}", json=handed, headers=inst.headers).status_code == 200
                reports[(inst.id, ref)].update(handed)
        for inst, ref, _body in rng.sample(loans, 5):  # retractions
            client.delete(f"/v1/obligations/{ref}", params={"reason": "test"}, headers=inst.headers)
            reports[(inst.id, ref)]["_retracted"] = True
        for inst, ref, body in rng.sample(loans, 5):  # repayments
            closed = {**body, "balance": 0, "overdue_amount": 0, "status": "closed", "as_of": "2026-11-10T00:00:00Z",
                      "credit_limit": body.get("credit_limit")}
            closed.pop("handed_to", None)
            if client.put(f"/v1/obligations/{ref}", json=closed, headers=inst.headers).status_code == 200:
                reports[(inst.id, ref)].update(closed)
                reports[(inst.id, ref)].pop("handed_to", None)

        asker = lenders[0]
        for person in people:
            doc = query(client, asker, person, grant(client, person.headers, asker.id)).json()
            expected = recompute(reports, person.nid)
            assert doc["totals"] == expected["totals"], person.country
            assert {c: t["balance"] for c, t in doc["contingent"].items()} == expected["contingent_balance"]
