"""The authorisation matrix, deny by default (OWASP API1, API3, API5 of 2023).

The routes come from the app itself. Every one must declare exactly one policy (`Authorize` or
`Public`) and have a row in CASES, so a new route without a declared policy, or one nobody has tried
as every principal, fails here. Then every route is called as every principal: anonymous, the operator
(admin), lender A, lender B, a collector, a regulator, consumer X and consumer Y. Objects belong to
lender A and consumer X; every route that names an object is also tried by the others on A's and X's
objects, and no such attempt may succeed. Request bodies refuse fields a caller must not set.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import UnionType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select

from register.api.deps import Authorize, Public
from register.domain.permission import GRANTS
from register.storage.models import AccessEvent
from register.web.session import PersonSession
from register.web.staff_session import StaffPolicy
from tests.conftest import ADMIN_TOKEN
from tests.factories import (
    Inst, Person, debtor, grant, in_days, make_institution, make_person, new_ref, obligation_body,
)
from tests.web.pages import Browser, csrf_of, new_client
from tests.web.pages import sign_in as page_sign_in
from tests.web.desk import Desk, staff_sign_in

PRINCIPALS = ("anonymous", "admin", "lender_a", "lender_b", "collector", "regulator", "consumer_x", "consumer_y",
              "person_x", "person_y", "staff")
# person_x and person_y: X and Y signed in to the pages under /app/ (a session cookie, no bearer token).
# staff: the regulator's staff signed in to its desk under /regulator/ (a staff session cookie, no bearer token).
ROLE_OF = {"anonymous": None, "admin": "admin", "lender_a": "lender", "lender_b": "lender", "collector": "collector",
           "regulator": "regulator", "consumer_x": "consumer", "consumer_y": "consumer", "person_x": "person",
           "person_y": "person", "staff": "staff"}  # fmt: skip
# Served by FastAPI itself, not through an APIRoute: the API's own description, public by design. (Its
# documentation pages, /docs and /redoc, are the register's own routes: register/web/site.py.)
FRAMEWORK_ROUTES = {"/openapi.json"}
FORBIDDEN_FIELDS = ("institution_id", "version", "id", "owner")


@dataclass
class World:
    """Objects owned by lender A and consumer X, made once per database."""

    client: TestClient
    a: Inst
    b: Inst
    collector: Inst
    regulator: Inst
    x: Person
    y: Person
    ref_a: str  # A's obligation naming X
    obligation_a: str  # its id
    report_a: str
    consent_xa: str  # X's consent to A
    exposure_xa: str  # A's stored answer about X
    event_x: str  # an access event about X, integrated into a signed checkpoint
    tree_size: int
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    browsers: dict[str, Browser] = field(default_factory=dict)  # person_x's and person_y's signed-in pages
    desks: dict[str, Desk] = field(default_factory=dict)  # staff's signed-in desk

    def fresh_obligation(self) -> str:
        ref = new_ref()
        r = self.client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(self.x)]),
                            headers=self.a.headers)
        assert r.status_code == 201, r.text
        return ref

    def fresh_consent(self) -> str:
        return grant(self.client, self.x.headers, self.a.id)

    def form(self, who: str, **fields: str) -> dict[str, Any]:
        """A page's form as `who` posts it: with their session's CSRF token if they have a session."""
        browser = self.browsers.get(who) or self.desks.get(who)
        return {"data": {"csrf": browser.csrf if browser else "", **fields}}

    def exposure_body(self, consent_id: str, person: Person | None = None) -> dict[str, str]:
        person = person or self.x
        return {"country": person.country, "national_id": person.nid, "purpose": "credit_application",
                "consent_id": consent_id}


@pytest.fixture(scope="module")
def world(app: FastAPI, data_dir) -> Iterator[World]:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        a, b = make_institution(client, admin, "lender"), make_institution(client, admin, "lender")
        collector, regulator = make_institution(client, admin, "collector"), make_institution(client, admin, "regulator")
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        ref_a = new_ref()
        r = client.put(f"/v1/obligations/{ref_a}", json=obligation_body(debtors=[debtor(x)]), headers=a.headers)
        assert r.status_code == 201, r.text
        obligation_a = r.json()["id"]
        r = client.post("/v1/reports", content=json.dumps({**obligation_body(), "external_ref": new_ref()}),
                        headers={**a.headers, "Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        report_a = r.json()["id"]
        consent_xa = grant(client, x.headers, a.id)
        r = client.post("/v1/exposure", json={"country": x.country, "national_id": x.nid,
                                              "purpose": "credit_application", "consent_id": consent_xa},
                        headers=a.headers)
        assert r.status_code == 200, r.text
        exposure_xa = r.json()["exposure_id"]
        r = client.post("/v1/audit/checkpoints", headers=regulator.headers)
        assert r.status_code == 200, r.text
        tree_size = r.json()["size"]
        events = client.get("/v1/me/access-log", headers=x.headers).json()["items"]
        event_x = next(e["id"] for e in events if e["action"] == "exposure:query" and e["leaf_index"] is not None)
        w = World(client=client, a=a, b=b, collector=collector, regulator=regulator, x=x, y=y,
                  ref_a=ref_a,
                  obligation_a=obligation_a, report_a=report_a, consent_xa=consent_xa, exposure_xa=exposure_xa,
                  event_x=event_x,
                  tree_size=tree_size)
        w.headers = {"anonymous": {}, "admin": admin, "lender_a": a.headers, "lender_b": b.headers,
                     "collector": collector.headers, "regulator": regulator.headers, "consumer_x": x.headers,
                     "consumer_y": y.headers, "person_x": {}, "person_y": {}, "staff": {}}  # fmt: skip
        w.browsers = {"person_x": page_sign_in(app, x), "person_y": page_sign_in(app, y)}
        w.desks = {"staff": staff_sign_in(app, regulator)}
        yield w


# --- the table: one row per route ---------------------------------------------------------------

Build = Callable[[World, str], dict[str, Any]]  # (world, principal) -> request: url, params, json, content


@dataclass(frozen=True)
class Case:
    roles: frozenset[str]  # the roles the policy admits; empty for a public route
    build: Build
    # the principal whose object the request names (or the principals, where several may read it); others
    # must be refused
    owner: str | frozenset[str] | None = None
    ok: frozenset[int] | None = None  # a public page's answer to everyone, where it is not 2xx or 3xx

    @property
    def public(self) -> bool:
        return not self.roles


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


PUBLIC = roles()
PERSON = roles("person")  # PersonSession: a signed-in person's page under /app/
STAFF = roles("staff")  # StaffPolicy: a regulator's staff member's desk page under /regulator/
REPORTERS = roles("lender", "collector")
LOG_READERS = roles("lender", "collector", "consumer", "regulator")


def _get(url: str, **params: Any) -> Build:
    return lambda w, who: {"url": url, "params": params}


def _own_ref(w: World, who: str) -> str:
    """The owner retracts a fresh obligation of its own; everyone else tries A's."""
    return w.fresh_obligation() if who == "lender_a" else w.ref_a


def _own_consent(w: World, who: str) -> str:
    return w.fresh_consent() if who == "consumer_x" else w.consent_xa


def _attested(w: World, who: str) -> dict[str, Any]:
    return {"url": "/v1/consents/attested", "json": {
        "country": w.x.country, "national_id": w.x.nid, "purpose": "credit_application", "expires_at": in_days(20),
        "evidence": {"method": "signed_application", "reference": "A-1", "signed_at": "2026-11-20T10:00:00Z",
                     "document_sha256": hashlib.sha256(b"application").hexdigest()}}}


def _x_line(w: World) -> str:
    """A fresh line of A's naming X: the id X disputes."""
    r = w.client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(w.x)]), headers=w.a.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _x_dispute(w: World, *, upheld: bool = False) -> str:
    """A fresh open dispute by X on A's line (or one A upheld): each call its own, since a closed one
    cannot be answered, withdrawn or stated on twice."""
    r = w.client.post("/v1/me/disputes", json={"obligation": _x_line(w), "reason": "repaid", "text": "paid"},
                      headers=w.x.headers)
    assert r.status_code == 201, r.text
    if upheld:
        a = w.client.post(f"/v1/disputes/{r.json()['id']}/answer", json={"outcome": "upheld", "explanation": "ok"},
                          headers=w.a.headers)
        assert a.status_code == 200, a.text
    return r.json()["id"]


def _ban_first(w: World, who: str) -> dict[str, Any]:
    """A consumer lifts the ban they just set; anyone else tries to lift a ban."""
    if ROLE_OF[who] == "consumer":
        assert w.client.put("/v1/me/credit-ban", json={"reason": "other"}, headers=w.headers[who]).status_code == 200
    return {"url": "/v1/me/credit-ban"}


def _spare(w: World) -> Inst:
    """A fresh institution for the credential routes (rotating or revoking A's would break later calls)."""
    return make_institution(w.client, w.headers["admin"], "lender")


def _public_jwk() -> dict[str, Any]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return jwt.algorithms.OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key(), as_dict=True)


def _with_key(w: World) -> tuple[str, str]:
    """A fresh institution's id and the kid of a key registered for it."""
    inst = _spare(w)
    r = w.client.post(f"/v1/institutions/{inst.id}/keys", json={"jwk": _public_jwk()}, headers=w.headers["admin"])
    return inst.id, r.json()["kid"]


def _token_request(w: World, who: str) -> dict[str, Any]:
    """A valid OAuth2 client-credentials request (a fresh institution, key and assertion): the endpoint is
    public, whatever the caller's bearer token, and the assertion alone authenticates."""
    import time
    import uuid

    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    inst, key = _spare(w), Ed25519PrivateKey.generate()
    jwk = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    kid = w.client.post(f"/v1/institutions/{inst.id}/keys", json={"jwk": jwk}, headers=w.headers["admin"]).json()["kid"]
    now = int(time.time())
    assertion = jwt.encode({"iss": inst.id, "sub": inst.id, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4()),
                            "aud": w.client.app.state.register.settings.resolved_oauth_audience},
                           key, algorithm="EdDSA", headers={"kid": kid})  # fmt: skip
    return {"url": "/v1/oauth/token", "data": {
        "grant_type": "client_credentials", "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}


def _a_webhook(w: World) -> str:
    """A fresh webhook of A's (each call its own: one case deletes it)."""
    r = w.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["consent"]},
                      headers=w.a.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


CASES: dict[str, Case] = {
    "GET /healthz": Case(PUBLIC, _get("/healthz")),
    "GET /livez": Case(PUBLIC, _get("/livez")),
    "GET /v1/statistics": Case(PUBLIC, _get("/v1/statistics")),
    "GET /metrics": Case(PUBLIC, _get("/metrics")),
    "POST /v1/institutions": Case(roles("admin"), lambda w, who: {
        "url": "/v1/institutions", "json": {"name": "Matrix Bank", "role": "lender"}}),
    "GET /v1/institutions": Case(roles("admin", "regulator"), _get("/v1/institutions")),
    "POST /v1/institutions/{institution_id}/keys": Case(roles("admin"), lambda w, who: {
        "url": f"/v1/institutions/{_spare(w).id}/keys", "json": {"jwk": _public_jwk()}}),
    "GET /v1/institutions/{institution_id}/keys": Case(roles("admin"), lambda w, who: {
        "url": f"/v1/institutions/{w.a.id}/keys"}),
    "DELETE /v1/institutions/{institution_id}/keys/{kid}": Case(roles("admin"), lambda w, who: {
        "url": "/v1/institutions/{}/keys/{}".format(*_with_key(w))}),
    "DELETE /v1/institutions/{institution_id}/access-tokens": Case(roles("admin"), lambda w, who: {
        "url": f"/v1/institutions/{_spare(w).id}/access-tokens"}),
    "POST /v1/institutions/{institution_id}/token": Case(roles("admin"), lambda w, who: {
        "url": f"/v1/institutions/{_spare(w).id}/token"}),
    "POST /v1/oauth/token": Case(PUBLIC, _token_request),
    "GET /.well-known/oauth-authorization-server": Case(PUBLIC, _get("/.well-known/oauth-authorization-server")),
    "PUT /v1/obligations/{external_ref}": Case(REPORTERS, lambda w, who: {
        "url": f"/v1/obligations/{new_ref()}", "json": obligation_body(debtors=[debtor(w.x)])}),
    "GET /v1/obligations/{external_ref}": Case(REPORTERS, lambda w, who: {"url": f"/v1/obligations/{w.ref_a}"},
                                               owner="lender_a"),
    "GET /v1/obligations/{external_ref}/versions": Case(
        REPORTERS, lambda w, who: {"url": f"/v1/obligations/{w.ref_a}/versions"}, owner="lender_a"),
    "GET /v1/obligations": Case(REPORTERS, _get("/v1/obligations", limit=5)),
    "DELETE /v1/obligations/{external_ref}": Case(REPORTERS, lambda w, who: {
        "url": f"/v1/obligations/{_own_ref(w, who)}", "params": {"reason": "matrix"}}, owner="lender_a"),
    "POST /v1/reports": Case(REPORTERS, lambda w, who: {
        "url": "/v1/reports", "content": json.dumps({**obligation_body(), "external_ref": new_ref()}),
        "headers": {"Content-Type": "application/x-ndjson"}}),
    "GET /v1/reports/{report_id}": Case(REPORTERS, lambda w, who: {"url": f"/v1/reports/{w.report_a}"},
                                        owner="lender_a"),
    "GET /v1/reports/{report_id}/errors": Case(REPORTERS, lambda w, who: {"url": f"/v1/reports/{w.report_a}/errors"},
                                               owner="lender_a"),
    "POST /v1/consents": Case(roles("consumer"), lambda w, who: {"url": "/v1/consents", "json": {
        "institution_id": w.a.id, "purpose": "credit_application", "expires_at": in_days(10)}}),
    "POST /v1/consents/attested": Case(REPORTERS, _attested),
    "GET /v1/consents": Case(roles("consumer", "lender", "collector"), _get("/v1/consents")),
    "DELETE /v1/consents/{consent_id}": Case(roles("consumer"), lambda w, who: {
        "url": f"/v1/consents/{_own_consent(w, who)}"}, owner="consumer_x"),
    # Without as_of, a lender's question: the regulator and persons (whose permission is exposure:as_of)
    # are refused too (403).
    "POST /v1/exposure": Case(roles("lender", "collector", "regulator", "consumer"), lambda w, who: {
        "url": "/v1/exposure", "json": w.exposure_body(w.consent_xa)}, owner="lender_a"),
    "GET /v1/exposure/{exposure_id}": Case(roles("lender", "collector", "regulator", "consumer"), lambda w, who: {
        "url": f"/v1/exposure/{w.exposure_xa}"}, owner=frozenset({"lender_a", "consumer_x", "regulator"})),
    "GET /v1/me/obligations": Case(roles("consumer"), _get("/v1/me/obligations")),
    "GET /v1/me/access-log": Case(roles("consumer"), _get("/v1/me/access-log")),
    "GET /v1/me/access-log/{event_id}/proof": Case(
        roles("consumer"), lambda w, who: {"url": f"/v1/me/access-log/{w.event_x}/proof"}, owner="consumer_x"),
    "GET /v1/me/consents": Case(roles("consumer"), _get("/v1/me/consents")),
    "GET /v1/me/retention": Case(roles("consumer"), _get("/v1/me/retention")),
    "GET /v1/me/disputes": Case(roles("consumer"), _get("/v1/me/disputes")),
    "POST /v1/me/disputes": Case(roles("consumer"), lambda w, who: {"url": "/v1/me/disputes", "json": {
        "obligation": _x_line(w), "reason": "wrong_amount", "text": "too high"}}, owner="consumer_x"),
    "GET /v1/me/disputes/{dispute_id}": Case(roles("consumer"), lambda w, who: {
        "url": f"/v1/me/disputes/{_x_dispute(w)}"}, owner="consumer_x"),
    "POST /v1/me/disputes/{dispute_id}/withdraw": Case(roles("consumer"), lambda w, who: {
        "url": f"/v1/me/disputes/{_x_dispute(w)}/withdraw"}, owner="consumer_x"),
    "PUT /v1/me/disputes/{dispute_id}/statement": Case(roles("consumer"), lambda w, who: {
        "url": f"/v1/me/disputes/{_x_dispute(w, upheld=True)}/statement", "json": {"statement": "I disagree."}},
        owner="consumer_x"),
    "GET /v1/me/credit-ban": Case(roles("consumer"), _get("/v1/me/credit-ban")),
    "PUT /v1/me/credit-ban": Case(roles("consumer"), lambda w, who: {"url": "/v1/me/credit-ban",
                                                                     "json": {"reason": "self_control"}}),
    "DELETE /v1/me/credit-ban": Case(roles("consumer"), _ban_first),
    "GET /v1/me/notifications": Case(roles("consumer"), _get("/v1/me/notifications")),
    "PUT /v1/me/notifications": Case(roles("consumer"), lambda w, who: {"url": "/v1/me/notifications",
                                                                     "json": {"email": "m@example.org"}}),
    "DELETE /v1/me/notifications": Case(roles("consumer"), lambda w, who: _notices_first(w, who)),
    "GET /v1/disputes": Case(REPORTERS, _get("/v1/disputes", state="open")),
    "GET /v1/disputes/{dispute_id}": Case(REPORTERS, lambda w, who: {"url": f"/v1/disputes/{_x_dispute(w)}"},
                                          owner="lender_a"),
    "POST /v1/disputes/{dispute_id}/answer": Case(REPORTERS, lambda w, who: {
        "url": f"/v1/disputes/{_x_dispute(w)}/answer", "json": {"outcome": "upheld", "explanation": "correct"}},
        owner="lender_a"),
    "GET /v1/audit/disputes": Case(roles("regulator"), _get("/v1/audit/disputes", state="overdue")),
    "GET /v1/events": Case(REPORTERS, _get("/v1/events", after=0, limit=5)),
    "GET /v1/webhooks": Case(REPORTERS, _get("/v1/webhooks")),
    "POST /v1/webhooks": Case(REPORTERS, lambda w, who: {
        "url": "/v1/webhooks", "json": {"url": "http://127.0.0.1:9/hooks", "events": ["dispute"]}}),
    "GET /v1/webhooks/{webhook_id}": Case(REPORTERS, lambda w, who: {
        "url": f"/v1/webhooks/{_a_webhook(w)}"}, owner="lender_a"),
    "POST /v1/webhooks/{webhook_id}/secret": Case(REPORTERS, lambda w, who: {
        "url": f"/v1/webhooks/{_a_webhook(w)}/secret"}, owner="lender_a"),
    "GET /v1/webhooks/{webhook_id}/deliveries": Case(REPORTERS, lambda w, who: {
        "url": f"/v1/webhooks/{_a_webhook(w)}/deliveries"}, owner="lender_a"),
    "DELETE /v1/webhooks/{webhook_id}": Case(REPORTERS, lambda w, who: {
        "url": f"/v1/webhooks/{_a_webhook(w)}"}, owner="lender_a"),
    "GET /v1/audit/events": Case(roles("regulator"), _get("/v1/audit/events", limit=5)),
    "GET /v1/audit/institutions/{institution_id}/lookups": Case(roles("regulator"), lambda w, who: {
        "url": f"/v1/audit/institutions/{w.a.id}/lookups", "params": {"from": "2026-01-01"}}),
    "GET /v1/regulator/institutions/{institution_id}/activity": Case(roles("regulator"), lambda w, who: {
        "url": f"/v1/regulator/institutions/{w.a.id}/activity"}),
    "GET /v1/regulator/signals": Case(roles("regulator"), _get("/v1/regulator/signals", kind="overdue_disputes")),
    "POST /v1/audit/events/search": Case(roles("regulator"), lambda w, who: {
        "url": "/v1/audit/events/search", "json": {"country": w.x.country, "national_id": w.x.nid, "limit": 5}}),
    "GET /v1/audit/log-key": Case(PUBLIC, _get("/v1/audit/log-key")),
    "GET /v1/audit/log-keys": Case(PUBLIC, _get("/v1/audit/log-keys")),  # was missing on main
    "GET /v1/audit/checkpoint": Case(LOG_READERS, _get("/v1/audit/checkpoint")),
    "POST /v1/audit/checkpoints": Case(roles("regulator"), _get("/v1/audit/checkpoints")),
    "GET /v1/audit/checkpoints": Case(LOG_READERS, _get("/v1/audit/checkpoints", limit=2)),
    "GET /v1/audit/proof/inclusion": Case(LOG_READERS, lambda w, who: {
        "url": "/v1/audit/proof/inclusion", "params": {"leaf_index": 0, "tree_size": w.tree_size}}),
    "GET /v1/audit/proof/consistency": Case(LOG_READERS, lambda w, who: {
        "url": "/v1/audit/proof/consistency", "params": {"first": 1, "second": w.tree_size}}),
    "GET /v1/audit/leaves": Case(roles("regulator"), _get("/v1/audit/leaves", start=0, end=2)),
    # The person's pages (register/web). Anyone may sign in; a bearer token is no session.
    "GET /app/sign-in": Case(PUBLIC, _get("/app/sign-in")),
    "GET /app/statistics": Case(PUBLIC, _get("/app/statistics")),
    "POST /app/sign-in": Case(PUBLIC, lambda w, who: _page_sign_in(w)),
    "GET /app/sign-in/oidc": Case(PUBLIC, _get("/app/sign-in/oidc"), ok=frozenset({404})),  # no provider here:
    "GET /app/sign-in/callback": Case(PUBLIC, _get("/app/sign-in/callback"), ok=frozenset({404})),  # test_oidc.py
    "GET /app/help": Case(PUBLIC, _get("/app/help")),
    "GET /app/static/{name}": Case(PUBLIC, _get("/app/static/style.css")),
    # The site around them (register/web/site.py): the landing page, the icon and the API's documentation.
    "GET /": Case(PUBLIC, _get("/")),
    "GET /favicon.ico": Case(PUBLIC, _get("/favicon.ico")),
    "GET /docs": Case(PUBLIC, _get("/docs")),
    "GET /redoc": Case(PUBLIC, _get("/redoc")),
    "GET /docs/assets/{name}": Case(PUBLIC, _get("/docs/assets/swagger-init.js")),
    # The regulator's desk (register/web/desk.py): its staff only; a person's session or any bearer token is none.
    "GET /regulator/sign-in": Case(PUBLIC, _get("/regulator/sign-in")),
    "POST /regulator/sign-in": Case(PUBLIC, lambda w, who: _staff_sign_in(w)),
    "GET /regulator/sign-in/oidc": Case(PUBLIC, _get("/regulator/sign-in/oidc"), ok=frozenset({404})),  # no provider:
    "GET /regulator/sign-in/callback": Case(PUBLIC, _get("/regulator/sign-in/callback"),
                                            ok=frozenset({404})),  # test_staff_oidc.py
    "POST /regulator/sign-out": Case(STAFF, lambda w, who: _staff_sign_out(w, who)),
    "GET /regulator/": Case(STAFF, _get("/regulator/")),
    "GET /regulator/signals/{signal_id}": Case(STAFF, _get("/regulator/signals/00000000-0000-0000-0000-000000000000"),
                                               ok=frozenset({404})),
    "GET /regulator/institutions/{institution_id}": Case(STAFF, lambda w, who: {
        "url": f"/regulator/institutions/{w.a.id}"}),
    "GET /regulator/events": Case(STAFF, _get("/regulator/events")),
    "GET /app/": Case(PERSON, _get("/app/")),
    "GET /app/debts": Case(PERSON, _get("/app/debts")),
    "GET /app/who-looked": Case(PERSON, _get("/app/who-looked")),
    "GET /app/who-looked/{event_id}": Case(PERSON, lambda w, who: {"url": f"/app/who-looked/{w.event_x}"},
                                           owner="person_x"),
    "GET /app/consents": Case(PERSON, _get("/app/consents")),
    "GET /app/what-we-keep": Case(PERSON, _get("/app/what-we-keep")),
    "POST /app/consents/{consent_id}/revoke": Case(PERSON, lambda w, who: {
        "url": f"/app/consents/{w.fresh_consent() if who == 'person_x' else w.consent_xa}/revoke", **w.form(who)},
        owner="person_x"),
    "POST /app/keep-alive": Case(PERSON, lambda w, who: {"url": "/app/keep-alive", **w.form(who)}),
    "POST /app/sign-out": Case(PERSON, lambda w, who: _page_sign_out(w, who)),
    "GET /app/disputes": Case(PERSON, _get("/app/disputes")),
    "GET /app/disputes/new": Case(PERSON, lambda w, who: {"url": "/app/disputes/new", "params": {
        "debt": w.obligation_a}}, owner="person_x"),
    "POST /app/disputes": Case(PERSON, lambda w, who: {"url": "/app/disputes", **w.form(
        who, debt=_x_line(w), reason="repaid", text="paid")}, owner="person_x"),
    "POST /app/disputes/{dispute_id}/withdraw": Case(PERSON, lambda w, who: {
        "url": f"/app/disputes/{_x_dispute(w)}/withdraw", **w.form(who)}, owner="person_x"),
    "POST /app/disputes/{dispute_id}/statement": Case(PERSON, lambda w, who: {
        "url": f"/app/disputes/{_x_dispute(w, upheld=True)}/statement", **w.form(who, statement="I paid.")},
        owner="person_x"),
    "GET /app/credit-ban": Case(PERSON, _get("/app/credit-ban")),
    "POST /app/credit-ban": Case(PERSON, lambda w, who: {"url": "/app/credit-ban", **w.form(who, reason="other")}),
    "POST /app/credit-ban/lift": Case(PERSON, lambda w, who: _page_lift(w, who)),
    "GET /app/notifications": Case(PERSON, _get("/app/notifications")),
    "POST /app/notifications": Case(PERSON, lambda w, who: {"url": "/app/notifications",
                                                           **w.form(who, email="m@example.org")}),
    "POST /app/notifications/off": Case(PERSON, lambda w, who: {"url": "/app/notifications/off", **w.form(who)}),
    # No sign-in: the mailed link. An unknown token is 404 to everyone; a POST without the page's csrf is 403.
    "GET /app/notifications/confirm": Case(PUBLIC, lambda w, who: {"url": "/app/notifications/confirm",
                                                                  "params": {"token": "x"}}, ok=frozenset({404})),
    "POST /app/notifications/confirm": Case(PUBLIC, lambda w, who: {"url": "/app/notifications/confirm",
                                                                   "data": {"token": "x", "csrf": "y"}},
                                            ok=frozenset({403})),
}


def _notices_first(w: World, who: str) -> dict[str, Any]:
    """A consumer turns off the notices they just set up; anyone else tries to."""
    if ROLE_OF[who] == "consumer":
        r = w.client.put("/v1/me/notifications", json={"email": "m@example.org"}, headers=w.headers[who])
        assert r.status_code == 200, r.text
    return {"url": "/v1/me/notifications"}


def _page_lift(w: World, who: str) -> dict[str, Any]:
    """A person lifts the ban they just set (through the API); anyone else tries to lift one."""
    if who in w.browsers:
        person = w.browsers[who].person
        assert w.client.put("/v1/me/credit-ban", json={"reason": "other"}, headers=person.headers).status_code == 200
    return {"url": "/app/credit-ban/lift", **w.form(who)}


def _page_sign_in(w: World) -> dict[str, Any]:
    """Development sign-in, in a browser of its own (signing in the shared client would give every
    principal after it a session)."""
    client = new_client(w.client.app)
    token = csrf_of(client.get("/app/sign-in").text)
    return {"url": "/app/sign-in", "client": client, "data": {
        "csrf": token, "person": "typed", "country": w.y.country, "national_id": w.y.nid}}


def _page_sign_out(w: World, who: str) -> dict[str, Any]:
    """A person signs out of a second session of their own, so that their matrix session lives on."""
    if who not in w.browsers:
        return {"url": "/app/sign-out", **w.form(who)}
    spare = page_sign_in(w.client.app, w.browsers[who].person)
    return {"url": "/app/sign-out", "client": spare.client, "data": {"csrf": spare.csrf}}


def _staff_sign_in(w: World) -> dict[str, Any]:
    """The desk's development stand-in, in a browser of its own."""
    client = new_client(w.client.app)
    token = csrf_of(client.get("/regulator/sign-in").text)
    return {"url": "/regulator/sign-in", "client": client, "data": {"csrf": token, "institution": w.regulator.id}}


def _staff_sign_out(w: World, who: str) -> dict[str, Any]:
    """The staff member signs out of a second session, so that their matrix session lives on."""
    if who != "staff":
        return {"url": "/regulator/sign-out", **w.form(who)}
    spare = staff_sign_in(w.client.app, w.regulator)
    return {"url": "/regulator/sign-out", "client": spare.client, "data": {"csrf": spare.csrf}}


# --- the routes, from the app -------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # "METHOD /path"
    method: str
    path: str
    policies: tuple[Any, ...]
    body_model: type[BaseModel] | None


def _policies(dependant) -> list[Any]:
    found = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, (Authorize, Public, PersonSession, StaffPolicy)):
            found.append(dep.call)
        found.extend(_policies(dep))
    return found


def api_routes(app: FastAPI) -> tuple[list[Route], set[str]]:
    """Every API route as (method, path) with its policies, and the paths of any other (framework) routes."""
    routes, others = [], set()
    for ctx in iter_route_contexts(app.routes):
        if not isinstance(ctx.original_route, APIRoute):
            others.add(ctx.path)
            continue
        body = ctx.body_field.field_info.annotation if ctx.body_field is not None else None
        for method in sorted(ctx.methods - {"HEAD"}):
            routes.append(Route(f"{method} {ctx.path}", method, ctx.path, tuple(_policies(ctx.dependant)), body))
    return routes, others


def call(w: World, key: str, who: str, **extra: Any):
    request = CASES[key].build(w, who)
    headers = {**w.headers[who], **request.pop("headers", {})}
    method = key.split(" ", 1)[0]
    browser = w.browsers.get(who) or w.desks.get(who)
    client = request.pop("client", None) or (browser.client if browser else w.client)
    if " /app" in key or " /regulator" in key:  # a page answers with redirects: the matrix looks at the first
        extra.setdefault("follow_redirects", False)
    return client.request(method, request.pop("url"), headers=headers, **request, **extra)


def expected(case: Case, who: str) -> str:
    role = ROLE_OF[who]
    if case.public:
        return "ok"
    if case.roles in (PERSON, STAFF):
        if role not in case.roles:  # a bearer token, nothing, or the other session: to sign-in (a form: 401)
            return "sign in"
    elif role in ("person", "staff"):  # a session cookie is no bearer token
        return "401"
    if role is None:
        return "401"
    if role not in case.roles:
        return "403"
    if case.owner is not None and who not in ({case.owner} if isinstance(case.owner, str) else case.owner):
        return "not yours"
    return "ok"


class TestEveryRouteDeclaresAPolicy:
    def test_exactly_one_policy_per_route(self, app):
        routes, _ = api_routes(app)
        wrong = {r.key: [type(p).__name__ for p in r.policies] for r in routes if len(r.policies) != 1}
        assert not wrong, f"routes without exactly one policy (Authorize, Public or PersonSession): {wrong}"

    def test_no_route_outside_the_api(self, app):
        _, others = api_routes(app)
        assert others == FRAMEWORK_ROUTES

    def test_every_route_is_in_the_matrix(self, app):
        keys = {r.key for r in api_routes(app)[0]}
        assert keys - set(CASES) == set(), "new routes: add each to CASES with the roles its policy admits"
        assert set(CASES) - keys == set(), "CASES names routes the app no longer has"

    def test_the_table_agrees_with_the_policies(self, app):
        for route in api_routes(app)[0]:
            (policy,) = route.policies
            if isinstance(policy, Public):
                admitted = frozenset()
            elif isinstance(policy, PersonSession):
                admitted = PERSON
            elif isinstance(policy, StaffPolicy):
                admitted = STAFF
            else:  # AuthorizeAny admits a caller holding any of its permissions
                wanted = set(getattr(policy, "permissions", (policy.permission,)))
                admitted = frozenset(role.value for role, perms in GRANTS.items() if wanted & perms)
            assert CASES[route.key].roles == admitted, route.key


class TestMatrix:
    def test_every_route_as_every_principal(self, app, world):
        failures, calls = [], 0
        for route in api_routes(app)[0]:
            case = CASES[route.key]
            for who in PRINCIPALS:
                r = call(world, route.key, who)
                calls += 1
                want = expected(case, who)
                success = r.status_code in case.ok if case.ok else 200 <= r.status_code < (
                    400 if " /app" in route.key or " /regulator" in route.key else 300)
                sign_in_page = "/regulator/sign-in?next=" if " /regulator" in route.key else "/app/sign-in?next="
                to_sign_in = r.status_code == 303 and r.headers["location"].startswith(sign_in_page)
                ok = {"ok": success, "401": r.status_code == 401, "403": r.status_code == 403,
                      "not yours": r.status_code in (403, 404),
                      "sign in": to_sign_in if route.method == "GET" else r.status_code == 401}[want]
                if not ok:
                    failures.append(f"{route.key} as {who}: {r.status_code}, wanted {want}: {r.text[:160]}")
        print(f"\nauthorisation matrix: {len(CASES)} routes x {len(PRINCIPALS)} principals = {calls} calls")
        assert not failures, "\n".join(failures)

    def test_nobody_reaches_another_institutions_or_persons_objects(self, app, world):
        """Every object-bearing route as every other principal its role admits, plus the ways round a route:
        another person's consent, another's reference in one's own namespace, lists that must leave others out."""
        w = world
        attempts, successes = 0, []

        def attempt(label: str, breached: bool) -> None:
            nonlocal attempts
            attempts += 1
            if breached:
                successes.append(label)

        for route in api_routes(app)[0]:
            case = CASES[route.key]
            for who in PRINCIPALS:
                if expected(case, who) == "not yours":
                    r = call(w, route.key, who)
                    attempt(f"{route.key} as {who}: {r.status_code}", r.status_code < 400)
        # A holds X's consent: with it, A may not see Y.
        r = w.client.post("/v1/exposure", json=w.exposure_body(w.consent_xa, w.y), headers=w.a.headers)
        attempt("exposure of Y with X's consent", r.status_code != 403 or "totals" in r.text)
        # B reports under A's reference: it makes B's own obligation and leaves A's as it was.
        before = w.client.get(f"/v1/obligations/{w.ref_a}", headers=w.a.headers).json()
        w.client.put(f"/v1/obligations/{w.ref_a}", headers=w.b.headers,
                     json=obligation_body(debtors=[debtor(w.y)], balance=1, as_of="2026-11-20T00:00:00Z"))
        after = w.client.get(f"/v1/obligations/{w.ref_a}", headers=w.a.headers).json()
        attempt("PUT on A's reference as B", after["version"] != before["version"] or after["balance"] != before["balance"])
        # Lists show only one's own.
        for who in ("lender_b", "collector"):
            items = w.client.get("/v1/obligations", params={"limit": 1000}, headers=w.headers[who]).json()["items"]
            attempt(f"A's obligation in {who}'s list", any(o["id"] == w.obligation_a for o in items))
            items = w.client.get("/v1/consents", headers=w.headers[who]).json()["items"]
            attempt(f"X's consent to A in {who}'s list", any(c["id"] == w.consent_xa for c in items))
        for path, key, value in (("/v1/me/consents", "id", w.consent_xa), ("/v1/consents", "id", w.consent_xa),
                                 ("/v1/me/access-log", "id", w.event_x)):
            items = w.client.get(path, headers=w.y.headers).json()["items"]
            attempt(f"X's {path} item in Y's view", any(i[key] == value for i in items))
        mine = w.client.get("/v1/me/obligations", headers=w.y.headers).json()
        attempt("X's debt in Y's /v1/me/obligations", w.obligation_a in json.dumps(mine))
        # Y's pages show none of X's objects.
        for path, value in (("/app/consents", w.consent_xa), ("/app/who-looked", w.event_x),
                            ("/app/debts", w.a.name), ("/app/", w.x.nid[:8])):
            page = w.browsers["person_y"].get(path)
            attempt(f"X's object on Y's page {path}", page.status_code != 200 or value in page.text)
        # Disputes: X's on A's line shows to neither Y nor another creditor; Y cannot dispute X's line.
        dispute = _x_dispute(w)
        attempt("X's dispute in Y's /v1/me/disputes",
                dispute in w.client.get("/v1/me/disputes", headers=w.y.headers).text)
        for who in ("lender_b", "collector"):
            for state in ("open", "overdue", None):
                params = {"state": state} if state else {}
                r = w.client.get("/v1/disputes", params=params, headers=w.headers[who])
                attempt(f"X's dispute in {who}'s /v1/disputes?state={state}", dispute in r.text)
        r = w.client.post("/v1/me/disputes", json={"obligation": w.obligation_a, "reason": "not_mine", "text": "x"},
                          headers=w.y.headers)
        attempt("Y disputes X's line", r.status_code != 404)
        print(f"\ncross-tenant attempts: {attempts}, successes: {len(successes)}")
        assert not successes, successes


# --- request bodies -------------------------------------------------------------------------------


def _nested_models(model: type[BaseModel], seen: set[type]) -> Iterator[type[BaseModel]]:
    if model in seen:
        return
    seen.add(model)
    yield model
    for f in model.model_fields.values():
        stack = [f.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                yield from _nested_models(t, seen)
            elif typing.get_origin(t) is not None or isinstance(t, UnionType):
                stack.extend(typing.get_args(t))


class TestRequestBodies:
    def test_every_body_model_forbids_unknown_fields(self, app):
        loose = []
        for route in api_routes(app)[0]:
            if route.body_model is not None:
                loose += [f"{route.key}: {m.__name__}" for m in _nested_models(route.body_model, set())
                          if m.model_config.get("extra") != "forbid"]
        assert not loose, loose

    def test_fields_a_caller_may_not_set_are_refused_and_change_nothing(self, app, world):
        body_routes = [r for r in api_routes(app)[0] if r.body_model is not None]
        assert len(body_routes) >= 6
        tried = 0
        for route in body_routes:
            case = CASES[route.key]
            who = next(p for p in PRINCIPALS if expected(case, p) == "ok")
            for name in (n for n in FORBIDDEN_FIELDS if n not in route.body_model.model_fields):
                request = case.build(world, who)
                request["json"] = {**request["json"], name: "f81d4fae-7dec-41d0-a765-00a0c91e6bf6"}
                r = world.client.request(route.method, request["url"], headers=world.headers[who],
                                         json=request["json"], params=request.get("params"))
                tried += 1
                assert r.status_code == 422 and r.json()["code"] == "validation_error", (route.key, name, r.text)
                assert name in json.dumps(r.json()["errors"]), (route.key, name)
                assert _events(app, r.headers["x-request-id"]) == 0, (route.key, name)
                if route.method == "PUT":
                    ref = request["url"].rsplit("/", 1)[1]
                    assert world.client.get(f"/v1/obligations/{ref}", headers=world.a.headers).status_code == 404
        print(f"\nunknown-field attempts: {tried} on {len(body_routes)} body routes, all 422")

    def test_nested_unknown_fields_are_refused(self, world):
        w = world
        ref = new_ref()
        body = obligation_body(debtors=[{**debtor(w.x), "owner": w.b.id}])
        assert w.client.put(f"/v1/obligations/{ref}", json=body, headers=w.a.headers).status_code == 422
        body = obligation_body(debtors=[debtor(w.x)], registration_consent={
            "reference": "R", "given_at": "2026-01-01T00:00:00Z", "method": "e_signature", "id": "x"})
        assert w.client.put(f"/v1/obligations/{ref}", json=body, headers=w.a.headers).status_code == 422
        assert w.client.get(f"/v1/obligations/{ref}", headers=w.a.headers).status_code == 404


def _events(app: FastAPI, request_id: str) -> int:
    with app.state.register.sessions() as s:
        return s.execute(select(func.count()).select_from(AccessEvent).where(AccessEvent.request_id == request_id)
                         ).scalar_one()
