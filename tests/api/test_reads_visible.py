"""The person sees every read of their data: every route an institution (lender, collector, regulator)
calls that returns data about persons records one access event per person it returned, and each of them
finds it in GET /v1/me/access-log and on the who-looked page under /app/.

The routes come from the app itself: an institution's route must be in READS (walked below) or in
NO_PERSON_DATA (with the reason), so a new route that returns persons cannot go unrecorded unnoticed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from register.api.deps import Authorize
from register.audit import merkle
from register.audit.leaf import encode_leaf
from register.domain.identity import parse_national_id
from register.domain.permission import GRANTS, INSTITUTION_ROLES, Permission
from register.services.events import MAX_IDS_PER_EVENT
from register.services.log_check import verify_log
from register.storage.models import AccessEvent, LogLeaf, SubjectPseudonym
from register.web.labels import ACTIONS
from tests.api.test_translog import b64d, integrate
from tests.factories import Inst, Person, debtor, grant, in_days, make_institution, make_person, new_ref, obligation_body
from tests.web.pages import Browser
from tests.web.pages import sign_in as page_sign_in


@dataclass
class Scene:
    """Lender A's data about persons: X and Y owe on one line (W was its guarantor until version 2), X
    alone on a second; Z and X consented to A; X disputes the first line. V owes lender B only."""

    app: FastAPI
    client: TestClient
    a: Inst
    b: Inst
    regulator: Inst
    persons: dict[str, Person]
    joint: str = ""  # external_ref of X's and Y's line
    joint_id: str = ""
    alone: str = ""  # external_ref of X's own line
    consent_x: str = ""
    dispute_x: str = ""
    browsers: dict[str, Browser] = field(default_factory=dict)

    def put(self, inst: Inst, ref: str, *debtors: dict, as_of: str = "2026-11-01T00:00:00Z") -> str:
        r = self.client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=list(debtors), as_of=as_of),
                            headers=inst.headers)
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def fresh_dispute(self) -> str:
        line = self.put(self.a, new_ref(), debtor(self.persons["x"]))
        r = self.client.post("/v1/me/disputes", json={"obligation": line, "reason": "repaid", "text": "I paid"},
                             headers=self.persons["x"].headers)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def subject(self, name: str) -> bytes:
        p = self.persons[name]
        nid = parse_national_id(p.country, p.nid, allow_test=True)
        return self.app.state.register.cipher.blind_index(nid.blind_index_input())

    def linked(self, subject: bytes | None) -> bytes | None:
        """The blind index an event's subject (a pseudonym) stands for, while it can be linked."""
        if subject is None:
            return None
        with self.app.state.register.sessions() as s:
            return bytes(s.execute(select(SubjectPseudonym.blind_index)
                                   .where(SubjectPseudonym.pseudonym == subject)).scalar_one())


@pytest.fixture
def scene(app: FastAPI, client: TestClient, admin_headers, data_dir) -> Scene:
    s = Scene(app=app, client=client, a=make_institution(client, admin_headers), b=make_institution(client, admin_headers),
              regulator=make_institution(client, admin_headers, "regulator"),
              persons={n: make_person(client, data_dir) for n in "xyzwv"})
    x, y, w = (s.persons[n] for n in "xyw")
    s.joint, s.alone = new_ref(), new_ref()
    s.put(s.a, s.joint, debtor(x), debtor(y, "co_debtor"), debtor(w, "guarantor"))
    s.joint_id = s.put(s.a, s.joint, debtor(x), debtor(y, "co_debtor"), as_of="2026-11-02T00:00:00Z")
    s.put(s.a, s.alone, debtor(x))
    s.put(s.b, new_ref(), debtor(s.persons["v"]))
    s.consent_x = grant(client, x.headers, s.a.id)
    grant(client, s.persons["z"].headers, s.a.id)
    s.dispute_x = s.fresh_dispute()
    return s


@dataclass(frozen=True)
class Read:
    action: str
    call: Callable[[Scene], object]  # makes the request as the institution; returns the response
    seen_by: str  # the persons the answer is about, each of whom must see exactly one event


def _attested(s: Scene):
    x = s.persons["x"]
    return s.client.post("/v1/consents/attested", headers=s.a.headers, json={
        "country": x.country, "national_id": x.nid, "purpose": "credit_application", "expires_at": in_days(20),
        "evidence": {"method": "signed_application", "reference": "A-1", "signed_at": "2026-11-20T10:00:00Z",
                     "document_sha256": hashlib.sha256(b"application").hexdigest()}})


def _stored_answer(s: Scene):
    """A's answer about X, read back by A (the answer itself is a request of its own)."""
    x = s.persons["x"]
    r = s.client.post("/v1/exposure", headers=s.a.headers, json={
        "country": x.country, "national_id": x.nid, "purpose": "credit_application", "consent_id": s.consent_x})
    assert r.status_code == 200, r.text
    return s.client.get(f"/v1/exposure/{r.json()['exposure_id']}", headers=s.a.headers)


READS: dict[tuple[str, str], Read] = {
    ("GET", "/v1/obligations"): Read(
        "obligations:list", lambda s: s.client.get("/v1/obligations", headers=s.a.headers), "xy"),
    ("GET", "/v1/obligations/{external_ref}"): Read(
        "obligation:read", lambda s: s.client.get(f"/v1/obligations/{s.joint}", headers=s.a.headers), "xy"),
    ("GET", "/v1/obligations/{external_ref}/versions"): Read(
        "obligation:versions:read", lambda s: s.client.get(f"/v1/obligations/{s.joint}/versions", headers=s.a.headers),
        "xyw"),  # W is named by version 1 only: the history shows W too
    ("PUT", "/v1/obligations/{external_ref}"): Read(
        "obligation:updated", lambda s: s.client.put(f"/v1/obligations/{s.joint}", headers=s.a.headers, json=obligation_body(
            debtors=[debtor(s.persons["x"])], as_of="2026-11-03T00:00:00Z")), "xy"),  # Y removed: Y sees it too
    ("DELETE", "/v1/obligations/{external_ref}"): Read(
        "obligation:retracted", lambda s: s.client.delete(f"/v1/obligations/{s.joint}", params={"reason": "error"},
                                                          headers=s.a.headers), "xy"),
    ("GET", "/v1/consents"): Read(
        "consents:list", lambda s: s.client.get("/v1/consents", headers=s.a.headers), "xz"),
    ("POST", "/v1/consents/attested"): Read("consent:attest", _attested, "x"),
    ("POST", "/v1/exposure"): Read(
        "exposure:query", lambda s: s.client.post("/v1/exposure", headers=s.a.headers, json={
            "country": s.persons["x"].country, "national_id": s.persons["x"].nid, "purpose": "credit_application",
            "consent_id": s.consent_x}), "x"),
    ("GET", "/v1/exposure/{exposure_id}"): Read("exposure:read", lambda s: _stored_answer(s), "x"),
    ("GET", "/v1/disputes"): Read(
        "disputes:list", lambda s: s.client.get("/v1/disputes", headers=s.a.headers), "x"),
    ("GET", "/v1/disputes/{dispute_id}"): Read(
        "dispute:read", lambda s: s.client.get(f"/v1/disputes/{s.dispute_x}", headers=s.a.headers), "x"),
    ("POST", "/v1/disputes/{dispute_id}/answer"): Read(
        "dispute:answer", lambda s: s.client.post(f"/v1/disputes/{s.dispute_x}/answer", headers=s.a.headers,
                                                  json={"outcome": "upheld", "explanation": "It is right."}), "x"),
    ("POST", "/v1/audit/events/search"): Read(
        "regulator:events:search", lambda s: s.client.post("/v1/audit/events/search", headers=s.regulator.headers,
                                                           json={"country": s.persons["x"].country,
                                                                 "national_id": s.persons["x"].nid}), "x"),
}

NO_PERSON_DATA: dict[tuple[str, str], str] = {
    ("POST", "/v1/reports"): "counts only; the batch's lines are the sender's own input",
    ("GET", "/v1/reports/{report_id}"): "counts and progress only",
    ("GET", "/v1/reports/{report_id}/errors"): "line numbers, codes and details, which never echo an identity",
    ("GET", "/v1/audit/events"): "events without their subjects (searching by person is recorded per person)",
    ("GET", "/v1/audit/leaves"): "leaves carry only the keyed blind index; a verifier reads every leaf on "
                                 "every run, so an event per person would add a leaf per person per check",
    ("GET", "/v1/audit/disputes"): "creditors, reasons, states and times, never the person or their words",
    ("GET", "/v1/audit/institutions/{institution_id}/lookups"): "counts per institution, never a person",
    ("GET", "/v1/regulator/institutions/{institution_id}/activity"): "counts per institution, never a person; the "
                                                                      "read is one regulator:activity:read",
    ("GET", "/v1/regulator/signals"): "signals name a person only by a subject the events already carry (a "
                                      "pseudonym), never an identity; the read is one regulator:signals:read",
    ("GET", "/v1/audit/checkpoint"): "a signed tree head",
    ("GET", "/v1/audit/checkpoints"): "signed tree heads",
    ("POST", "/v1/audit/checkpoints"): "a signed tree head",
    ("GET", "/v1/audit/proof/inclusion"): "hashes",
    ("GET", "/v1/audit/proof/consistency"): "hashes",
    ("GET", "/v1/institutions"): "institutions, no persons",
    ("GET", "/v1/events"): "ids and states of the institution's own consents, disputes and reports, never a person "
                           "or an identity; whom they name it reads through the recorded routes",
    ("GET", "/v1/webhooks"): "the institution's endpoints",
    ("POST", "/v1/webhooks"): "an endpoint and its secret",
    ("POST", "/v1/webhooks/{webhook_id}/secret"): "a secret",
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): "event ids, states and statuses of deliveries",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "nothing",
    ("GET", "/v1/webhooks/{webhook_id}"): "the institution's endpoint",
}


def _permission(dependant: Dependant) -> Permission | None:
    for d in dependant.dependencies:
        if isinstance(d.call, Authorize):
            return d.call.permission
        found = _permission(d)
        if found is not None:
            return found
    return None


def institution_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route whose policy admits a lender, collector or regulator."""
    out = set()
    for ctx in iter_route_contexts(app.routes):
        if not isinstance(ctx.original_route, APIRoute):
            continue
        permission = _permission(ctx.dependant)
        if permission is not None and any(permission in GRANTS[role] for role in INSTITUTION_ROLES):
            out |= {(m, ctx.path) for m in ctx.methods - {"HEAD"}}
    return out


def events_of(app: FastAPI, request_id: str) -> list[AccessEvent]:
    with app.state.register.sessions() as s:
        return list(s.scalars(select(AccessEvent).where(AccessEvent.request_id == request_id)))


class TestEveryRouteIsClassified:
    def test_each_institution_route_is_walked_or_returns_no_person(self, app):
        routes = institution_routes(app)
        assert not set(READS) & set(NO_PERSON_DATA)
        assert routes == set(READS) | set(NO_PERSON_DATA), {
            "unclassified (records one event per person returned? add it to READS)": routes - set(READS) - set(NO_PERSON_DATA),
            "no longer a route": (set(READS) | set(NO_PERSON_DATA)) - routes}

    def test_every_action_has_words_on_the_who_looked_page(self):
        assert all(read.action in ACTIONS for read in READS.values())


class TestThePersonSeesTheRead:
    @pytest.mark.parametrize("route", sorted(READS), ids=lambda r: f"{r[0]} {r[1]}")
    def test_one_event_per_person_returned_in_their_log_and_on_their_page(self, app, scene: Scene, route):
        read = READS[route]
        r = read.call(scene)
        assert r.status_code < 300, r.text
        rid = r.headers["x-request-id"]
        events = [e for e in events_of(app, rid) if e.action == read.action]
        # exactly one per person the answer is about, and nobody else (V owes another lender)
        assert sorted(scene.linked(e.subject) for e in events) == sorted(scene.subject(n) for n in read.seen_by)
        actor = scene.regulator if route[1].startswith("/v1/audit") else scene.a
        for name in read.seen_by:
            person = scene.persons[name]
            log = client_log(scene.client, person)
            (mine,) = [e for e in log if e["request_id"] == rid and e["action"] == read.action]
            assert (mine["actor_id"], mine["actor_name"]) == (actor.id, actor.name)
            page = page_sign_in(app, person).get("/app/who-looked")
            assert page.status_code == 200
            title = f'id="event-{mine["id"]}" class="event-title">{escape(actor.name)}: {escape(ACTIONS[read.action])}'
            assert title in page.text, f"{name} does not see {read.action} on the who-looked page"
        outsider = client_log(scene.client, scene.persons["v"])
        assert all(e["request_id"] != rid for e in outsider)


def client_log(client: TestClient, person: Person) -> list[dict]:
    r = client.get("/v1/me/access-log", headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


class TestLargePages:
    def test_one_event_per_distinct_person_however_many_of_their_lines(self, app, client, admin_headers, data_dir):
        a = make_institution(client, admin_headers)
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        ids = [client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(x)]),
                          headers=a.headers).json()["id"] for _ in range(MAX_IDS_PER_EVENT + 5)]
        ids.append(client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(y), debtor(x, "guarantor")]),
                              headers=a.headers).json()["id"])
        r = client.get("/v1/obligations", params={"limit": 1000}, headers=a.headers)
        assert len(r.json()["items"]) == len(ids)
        events = events_of(app, r.headers["x-request-id"])
        assert len(events) == 2, "one per distinct person, not one per line"
        by_count = sorted((e.details["count"], len(e.details["obligation_ids"])) for e in events)
        assert by_count == [(1, 1), (len(ids), MAX_IDS_PER_EVENT)], "the ids are capped, the count is not"
        assert all(e.details["obligation_ids"] == sorted(e.details["obligation_ids"]) for e in events)

    def test_a_page_about_nobody_is_one_event_without_a_subject(self, app, client, admin_headers):
        a = make_institution(client, admin_headers)
        r = client.get("/v1/disputes", headers=a.headers)
        (event,) = events_of(app, r.headers["x-request-id"])
        assert (event.action, event.subject, event.details["count"]) == ("disputes:list", None, 0)


class TestInTheVerifiableLog:
    def test_per_person_reads_are_integrated_and_each_person_proves_theirs(self, app, scene: Scene):
        r = scene.client.get("/v1/obligations", headers=scene.a.headers)
        integrate(app)
        state = app.state.register
        with state.sessions() as s:
            assert verify_log(s, state.tlog).ok
            rows = s.execute(select(LogLeaf, AccessEvent).join(AccessEvent, AccessEvent.seq == LogLeaf.event_seq)
                             .where(AccessEvent.request_id == r.headers["x-request-id"])).all()
        assert len(rows) == 2 and all(merkle.leaf_hash(encode_leaf(e)) == leaf.leaf_hash for leaf, e in rows)
        for name in "xy":
            person = scene.persons[name]
            (entry,) = [e for e in client_log(scene.client, person) if e["request_id"] == r.headers["x-request-id"]]
            proof = scene.client.get(f"/v1/me/access-log/{entry['id']}/proof", headers=person.headers).json()
            inclusion = proof["inclusion"]
            merkle.verify_inclusion(merkle.leaf_hash(b64d(proof["leaf"])), inclusion["leaf_index"],
                                    inclusion["tree_size"], [b64d(p) for p in inclusion["proof"]],
                                    b64d(proof["checkpoint"]["root_hash"]))


class TestNothingIsBuried:
    """A lender must not be able to push a lookup out of the person's sight with cheap reads: the access
    log pages back to the first event, on the API and on the who-looked page."""

    def test_a_lookup_under_many_reads_is_still_reachable(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        ref = new_ref()
        client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
        consent = grant(client, person.headers, lender.id)
        looked = client.post("/v1/exposure", headers=lender.headers, json={
            "country": person.country, "national_id": person.nid, "purpose": "credit_application",
            "consent_id": consent})
        assert looked.status_code == 200
        for _ in range(130):  # more than a page of cheap reads, each an event about the person
            assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 200
        seen, cursor, pages = [], None, 0
        while True:
            r = client.get("/v1/me/access-log", params={"limit": 50, **({"cursor": cursor} if cursor else {})},
                           headers=person.headers)
            assert r.status_code == 200, r.text
            seen += r.json()["items"]
            pages += 1
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert pages >= 3 and sum(e["action"] == "obligation:read" for e in seen) == 130
        assert sum(e["action"] == "exposure:query" for e in seen) == 1
        assert all(e["action"] != "consumer:access_log:read" for e in seen)  # the person's own reads are not shown
        assert len({e["id"] for e in seen}) == len(seen)

        browser = page_sign_in(app, person)
        page, found = browser.get("/app/who-looked"), False
        for _ in range(10):
            found = found or escape(ACTIONS["exposure:query"]) in page.text
            older = [part.split('"')[0] for part in page.text.split('href="/app/who-looked?older=')[1:]]
            if not older:
                break
            page = browser.get(f"/app/who-looked?older={older[0]}")
        assert found and not older
