"""Stored answers read back and proved (GET /v1/exposure/{id}), and answers as of a past moment
(POST /v1/exposure with `as_of`): who may, what they say, and a randomised history whose every stored
answer is given again, byte for byte, from the versions kept."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from register.audit import hashing
from register.canonical import canonical_json
from register.storage.models import AccessEvent, ExposureRecord, Obligation
from tests.api.test_exposure import events_for_request, query
from tests.factories import debtor, grant, make_institution, make_person, new_ref, obligation_body

TOTAL_FIELDS = ("totals", "by_kind", "contingent", "collections")


def iso(t) -> str:
    return t.isoformat().replace("+00:00", "Z")


def as_of(client, who, person, when, purpose="supervision", **extra):
    return client.post("/v1/exposure", json={"country": person.country, "national_id": person.nid,
                                             "purpose": purpose, "as_of": iso(when), **extra}, headers=who.headers)


def integrate(client, regulator) -> None:
    r = client.post("/v1/audit/checkpoints", headers=regulator.headers)
    assert r.status_code == 200, r.text


def put(client, inst, ref, person, now, **kw):
    r = client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=kw.pop("debtors", None) or [debtor(person)],
                                                                  as_of=iso(now - timedelta(seconds=1)), **kw),
                   headers=inst.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def leaf_root(leaf_hash: bytes, index: int, size: int, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise AssertionError("proof too long")
        if fn & 1 or fn == sn:
            r = hashing.node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = hashing.node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return r


class TestStoredAnswer:
    @pytest.fixture
    def answered(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        put(client, lender, new_ref(), person, datetime.now(UTC))
        r = query(client, lender, person, grant(client, person.headers, lender.id))
        assert r.status_code == 200, r.text
        return person, r.json()

    def test_the_lender_that_asked_reads_it_proved(self, app, client, lender, regulator, answered):
        person, answer = answered
        integrate(client, regulator)
        r = client.get(f"/v1/exposure/{answer['exposure_id']}", headers=lender.headers)
        assert r.status_code == 200, r.text
        doc = r.json()
        told = {k: v for k, v in answer.items() if k != "receipt"}
        assert doc["answer"] == told
        assert doc["response_sha256"] == hashlib.sha256(canonical_json(told)).hexdigest()
        assert doc["verified"] is True and doc["hash_matches"] is True
        assert doc["event_id"] == answer["receipt"]["event_id"]
        inc, cp = doc["inclusion"], doc["checkpoint"]
        assert doc["leaf_index"] == inc["leaf_index"] and inc["tree_size"] == cp["size"]
        assert inc["leaf_hash"] == answer["receipt"]["leaf_hash"]
        root = leaf_root(base64.b64decode(inc["leaf_hash"]), inc["leaf_index"], inc["tree_size"],
                         [base64.b64decode(p) for p in inc["proof"]])
        assert base64.b64encode(root).decode() == cp["root_hash"]
        assert cp["root_hash"] in cp["note"]

    def test_the_person_and_the_regulator_read_it(self, client, regulator, answered):
        person, answer = answered
        for who in (person.headers, regulator.headers):
            r = client.get(f"/v1/exposure/{answer['exposure_id']}", headers=who)
            assert r.status_code == 200, r.text
            assert r.json()["answer"]["exposure_id"] == answer["exposure_id"]

    def test_anyone_else_gets_404_as_for_a_missing_one(self, client, admin_headers, data_dir, answered):
        person, answer = answered
        others = [make_institution(client, admin_headers, "lender").headers,
                  make_institution(client, admin_headers, "collector").headers,
                  make_person(client, data_dir).headers]
        for headers in others:
            r = client.get(f"/v1/exposure/{answer['exposure_id']}", headers=headers)
            assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
        r = client.get("/v1/exposure/00000000-0000-4000-8000-000000000000", headers=person.headers)
        assert r.status_code == 404

    def test_the_read_is_an_access_event_the_person_sees(self, app, client, regulator, answered):
        person, answer = answered
        r = client.get(f"/v1/exposure/{answer['exposure_id']}", headers=regulator.headers)
        events = events_for_request(app, r.headers["x-request-id"])
        assert [(e.action, e.outcome, e.actor_id, e.details) for e in events] == [
            ("exposure:read", "granted", regulator.id, {"exposure_id": answer["exposure_id"]})]
        mine = client.get("/v1/me/access-log", headers=person.headers).json()["items"]
        assert any(e["action"] == "exposure:read" for e in mine)

    def test_a_shredded_answer_is_410_and_its_hash_remains(self, app, client, lender, answered):
        person, answer = answered
        with app.state.register.sessions.begin() as s:
            s.execute(update(ExposureRecord).where(ExposureRecord.id == answer["exposure_id"]).values(response=None))
        r = client.get(f"/v1/exposure/{answer['exposure_id']}", headers=lender.headers)
        assert r.status_code == 410 and r.json()["code"] == "shredded", r.text
        assert len(r.json()["response_sha256"]) == 64 and "totals" not in r.text
        events = events_for_request(app, r.headers["x-request-id"])
        assert [(e.action, e.outcome, e.reason) for e in events] == [("exposure:read", "refused", "shredded")]

    def test_a_changed_answer_is_not_verified(self, app, client, lender, regulator, answered):
        person, answer = answered
        integrate(client, regulator)
        forged = {k: v for k, v in answer.items() if k != "receipt"} | {"totals": {}}
        with app.state.register.sessions.begin() as s:
            s.execute(update(ExposureRecord).where(ExposureRecord.id == answer["exposure_id"]).values(response=forged))
        doc = client.get(f"/v1/exposure/{answer['exposure_id']}", headers=lender.headers).json()
        assert (doc["verified"], doc["hash_matches"], doc["answer"]["totals"]) == (False, False, {})


class TestWhoMayAskAsOf:
    def test_a_lender_or_a_collector_gets_403_as_of_not_allowed(self, app, client, admin_headers, data_dir, lender,
                                                                clock):
        person = make_person(client, data_dir)
        collector = make_institution(client, admin_headers, "collector")
        for inst in (lender, collector):
            r = as_of(client, inst, person, clock.now, purpose="complaint")
            assert r.status_code == 403 and r.json()["code"] == "as_of_not_allowed", r.text
            events = events_for_request(app, r.headers["x-request-id"])
            assert [(e.action, e.outcome, e.reason) for e in events] == [
                ("exposure:as_of", "refused", "as_of_not_allowed")]
        cid = grant(client, person.headers, lender.id)
        r = as_of(client, lender, person, clock.now, purpose="credit_application", consent_id=cid)
        assert r.status_code == 403 and r.json()["code"] == "as_of_not_allowed"

    def test_the_regulator_and_the_person_without_as_of_get_403(self, client, data_dir, regulator):
        person = make_person(client, data_dir)
        for headers in (regulator.headers, person.headers):
            r = client.post("/v1/exposure", json={"country": person.country, "national_id": person.nid,
                                                  "purpose": "credit_application",
                                                  "consent_id": "00000000-0000-4000-8000-000000000000"},
                            headers=headers)
            assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text

    def test_a_consent_or_a_lenders_purpose_with_as_of_is_422(self, client, data_dir, regulator, clock):
        person = make_person(client, data_dir)
        r = as_of(client, regulator, person, clock.now, consent_id="00000000-0000-4000-8000-000000000000")
        assert r.status_code == 422 and r.json()["code"] == "invalid_as_of"
        r = as_of(client, regulator, person, clock.now, purpose="credit_application")
        assert r.status_code == 422 and r.json()["code"] == "invalid_as_of"
        r = as_of(client, regulator, person, clock.now + timedelta(minutes=5))
        assert r.status_code == 422 and r.json()["code"] == "invalid_as_of"

    def test_a_lender_without_consent_or_with_a_review_purpose_is_422_as_before(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        body = {"country": person.country, "national_id": person.nid, "purpose": "credit_application"}
        r = client.post("/v1/exposure", json=body, headers=lender.headers)
        assert r.status_code == 422 and r.json()["code"] == "validation_error" and "consent_id" in r.text
        r = client.post("/v1/exposure", json={**body, "purpose": "complaint",
                                              "consent_id": "00000000-0000-4000-8000-000000000000"},
                        headers=lender.headers)
        assert r.status_code == 422 and r.json()["code"] == "validation_error"

    def test_a_person_asks_about_themselves_only(self, client, data_dir, clock):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        r = as_of(client, x, x, clock.now, purpose="complaint")
        assert r.status_code == 200, r.text
        r = client.post("/v1/exposure", json={"country": y.country, "national_id": y.nid, "purpose": "complaint",
                                              "as_of": iso(clock.now)}, headers=x.headers)
        assert r.status_code == 404, r.text


class TestAsOfAnswers:
    def test_each_moment_sees_the_version_of_its_time(self, client, data_dir, lender, regulator, clock):
        person = make_person(client, data_dir)
        ref = new_ref()
        t0 = clock.now
        clock.advance(minutes=1)
        put(client, lender, ref, person, clock.now, balance=1000)
        t1 = clock.now
        clock.advance(hours=1)
        put(client, lender, ref, person, clock.now, balance=700)
        t2 = clock.now
        clock.advance(hours=1)
        assert client.delete(f"/v1/obligations/{ref}", params={"reason": "error"}, headers=lender.headers).status_code == 200
        t3 = clock.now
        clock.advance(hours=1)
        seen = {}
        for name, t in (("before", t0), ("first", t1 + timedelta(minutes=30)), ("second", t2),
                        ("retracted", t3 + timedelta(minutes=1))):
            r = as_of(client, regulator, person, t)
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc["state_as_of"] == iso(t) and doc["as_of"] == iso(clock.now) and "exposure_id" not in doc
            assert doc["receipt"]["event_id"]
            seen[name] = doc["totals"].get("SEK", {}).get("balance")
        assert seen == {"before": None, "first": 1000, "second": 700, "retracted": None}

    def test_a_debtor_removed_since_still_sees_the_line_as_it_was(self, client, data_dir, lender, clock):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        ref = new_ref()
        put(client, lender, ref, x, clock.now, debtors=[debtor(x), debtor(y, "co_debtor")])
        then = clock.now
        clock.advance(hours=1)
        put(client, lender, ref, x, clock.now, debtors=[debtor(x)])
        clock.advance(hours=1)
        past = as_of(client, y, y, then, purpose="complaint").json()
        now = as_of(client, y, y, clock.now, purpose="complaint").json()
        assert [(ln["role"], ln["joint"]) for ln in past["obligations"]] == [("co_debtor", True)]
        assert now["obligations"] == [] and now["totals"] == {}

    def test_the_credit_ban_as_it_stood(self, client, data_dir, regulator, clock):
        person = make_person(client, data_dir)
        before = clock.now
        clock.advance(minutes=1)
        assert client.put("/v1/me/credit-ban", json={"reason": "other"}, headers=person.headers).status_code in (200, 201)
        clock.advance(minutes=1)
        assert as_of(client, regulator, person, before).json()["credit_ban"] == {"active": False}
        assert as_of(client, regulator, person, clock.now).json()["credit_ban"]["active"] is True

    def test_the_question_is_an_access_event_the_person_sees(self, app, client, data_dir, regulator, clock):
        person = make_person(client, data_dir)
        r = as_of(client, regulator, person, clock.now)
        events = events_for_request(app, r.headers["x-request-id"])
        assert [(e.action, e.outcome, e.purpose, e.actor_id) for e in events] == [
            ("exposure:as_of", "granted", "supervision", regulator.id)]
        with app.state.register.sessions() as s:
            assert s.scalars(select(AccessEvent.details).where(AccessEvent.id == events[0].id)).one() == {
                "state_as_of": iso(clock.now)}
        mine = client.get("/v1/me/access-log", headers=person.headers).json()["items"]
        assert any(e["action"] == "exposure:as_of" for e in mine)


class TestReplay:
    """A randomised history of reports, changes, retractions and lenders' questions, the clock moving on
    between each; then every stored answer is asked again as of its time by the regulator."""

    @pytest.mark.parametrize("seed", [19, 2026])
    def test_every_stored_answer_replays_byte_for_byte(self, app, client, admin_headers, data_dir, regulator,
                                                       clock, seed):
        rnd = random.Random(seed)
        refs = (f"R{seed}-{n:03}-{uuid.uuid4().hex[:6]}" for n in itertools.count())  # sorted: in order made
        lenders = [make_institution(client, admin_headers, "lender") for _ in range(3)]
        collector = make_institution(client, admin_headers, "collector")
        persons = [make_person(client, data_dir) for _ in range(5)]
        consents = {(li, pi): grant(client, p.headers, lender.id)
                    for li, lender in enumerate(lenders) for pi, p in enumerate(persons)}
        lines: dict[str, tuple[int, list]] = {}  # ref -> (lender index, debtors), live ones
        answers, ops = [], defaultdict(int)
        for _ in range(100):
            clock.advance(minutes=rnd.randint(1, 240))
            op = rnd.random()
            if op < 0.25 or not lines:
                ops["new"] += 1
                li = rnd.randrange(3)
                ds = rnd.sample(range(5), rnd.choice((1, 1, 2)))
                roles = ["primary"] + [rnd.choice(("co_debtor", "guarantor")) for _ in ds[1:]]
                ref = next(refs)
                lines[ref] = (li, [debtor(persons[p], r) for p, r in zip(ds, roles)])
                put(client, lenders[li], ref, None, clock.now, debtors=lines[ref][1], **self._amounts(rnd))
            elif op < 0.45:
                own = [r for r in sorted(lines) if lines[r][0] != 3]  # a lender's line (claims stay as reported)
                if not own:
                    continue
                ref = rnd.choice(own)
                li, ds = lines[ref]
                if rnd.random() < 0.25:  # a debtor added or removed
                    ops["debtors"] += 1
                    named = {d["national_id"] for d in ds}
                    ds = ds[:1] if len(ds) > 1 else ds + [
                        debtor(rnd.choice([p for p in persons if p.nid not in named]), "co_debtor")]
                    lines[ref] = (li, ds)
                ops["update"] += 1
                put(client, lenders[li], ref, None, clock.now, debtors=ds, **self._amounts(rnd))
            elif op < 0.52:  # a collector takes a line over; its creditor confirms (or not) in handed_to
                ref = rnd.choice(sorted(lines))
                li, ds = lines[ref]
                if li == 3:
                    continue
                ops["collect"] += 1
                claim = next(refs)
                put(client, collector, claim, None, clock.now, debtors=ds[:1], kind="collection_claim",
                    balance=rnd.randint(1, 3_000_000), monthly_payment=None, original_amount=None, matures_on=None,
                    status="in_collection", original_creditor="The first bank",
                    collects={"institution_id": lenders[li].id, "external_ref": ref})
                lines[claim] = (3, ds[:1])
                if rnd.random() < 0.7:
                    clock.advance(minutes=rnd.randint(1, 60))
                    put(client, lenders[li], ref, None, clock.now, debtors=ds, **self._amounts(rnd),
                        handed_to={"institution_id": collector.id, "external_ref": claim})
            elif op < 0.57:  # a person disputes one of their lines
                ref = rnd.choice(sorted(lines))
                li, ds = lines[ref]
                person = next(p for p in persons if p.nid == ds[0]["national_id"])
                mine = client.get("/v1/me/obligations", headers=person.headers).json()["obligations"]
                with app.state.register.sessions() as sess:  # in the order made, not by random ids
                    ref_of = dict(sess.execute(select(Obligation.id, Obligation.external_ref)).all())
                open_lines = [ln["id"] for ln in sorted(mine, key=lambda ln: ref_of[ln["id"]]) if ln["dispute"] is None]
                if open_lines:
                    ops["dispute"] += 1
                    r = client.post("/v1/me/disputes", json={"obligation": rnd.choice(open_lines), "reason": "repaid",
                                                             "text": "I paid"}, headers=person.headers)
                    assert r.status_code == 201, r.text
            elif op < 0.65:
                ref = rnd.choice(sorted(lines))
                li, _ = lines.pop(ref)
                ops["retract"] += 1
                inst = collector if li == 3 else lenders[li]
                r = client.delete(f"/v1/obligations/{ref}", params={"reason": "error"}, headers=inst.headers)
                assert r.status_code == 200, r.text
            else:
                li, pi = rnd.randrange(3), rnd.randrange(5)
                r = query(client, lenders[li], persons[pi], consents[(li, pi)])
                assert r.status_code == 200, r.text
                answers.append((pi, r.json()))
        clock.advance(minutes=1)
        assert len(answers) > 15 and all(ops[k] for k in ("new", "update", "debtors", "collect", "dispute", "retract"))
        links = {ln["collection_link"] for _, a in answers for ln in a["obligations"]}
        assert {"confirmed", "unconfirmed"} <= links and any(ln["disputed"] for _, a in answers for ln in a["obligations"])
        for pi, answer in answers:
            r = as_of(client, regulator, persons[pi], datetime.fromisoformat(answer["as_of"]))
            assert r.status_code == 200, r.text
            again = r.json()
            assert again["state_as_of"] == answer["as_of"]
            for field in (*TOTAL_FIELDS, "obligations", "credit_ban", "subject"):
                assert canonical_json(again[field]) == canonical_json(answer[field]), (field, answer["exposure_id"])
        print(f"\nreplayed {len(answers)} answers byte for byte after {dict(ops)}")

    @staticmethod
    def _amounts(rnd: random.Random) -> dict:
        kind = rnd.choice(("instalment_loan", "credit_card", "instalment_loan"))
        balance = rnd.randint(0, 5_000_000)
        out = {"kind": kind, "balance": balance, "currency": rnd.choice(("SEK", "SEK", "EUR")),
               "status": rnd.choice(("current", "current", "overdue", "closed"))}
        if kind == "credit_card":
            out |= {"credit_limit": balance + rnd.randint(0, 1_000_000), "original_amount": None,
                    "matures_on": None}
        if out["status"] == "overdue":
            out |= {"overdue_amount": rnd.randint(1, 100_000), "days_past_due": rnd.randint(1, 90)}
        if out["status"] == "closed":
            out["balance"] = 0
        return out
