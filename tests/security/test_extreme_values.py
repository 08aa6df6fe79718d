"""Extreme times and numbers, sent for real to every route, query parameter, cursor, batch line, form and
token claim that takes one, on both databases: each is refused with a 4xx (422 for input, 401 for an
assertion or an ID token), never a 5xx, and changes nothing.

Found by an outside attacker: a time in year 1 with `+14:00` (or the last day of 9999 with `-14:00`) has no
UTC equivalent and overflowed into a 500 on every route and cursor taking a time, and failed a whole batch
report; `NaN` in a client assertion's `iat` passed every comparison, so the 5-minute lifetime bound was
skipped and a token issued, and a `NaN` or 1e400 `exp` was a 500; an ID token without `iat`, or with an
`exp` decades ahead, signed its holder in until then.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import SQLModel

from register.crypto.dev_idp import DEV_ISSUER, DevIdentityProvider
from register.storage.models import OAuthAccessToken, OAuthJti
from tests.api.test_consents import evidence
from tests.api.test_oauth import add_key, claims_for, public_jwk, request_token, sign
from tests.api.test_reports import errors_of, process
from tests.factories import (
    Inst, debtor, in_days, make_institution, make_person, national_id, new_ref, obligation_body,
)
from tests.web.pages import sign_in

# Times the API refuses. The first two have no UTC equivalent at all (Python's datetime overflows).
BAD_TIMES = {
    "year-1-east": "0001-01-01T00:00:00+14:00",
    "year-9999-west": "9999-12-31T23:59:59-14:00",
    "year-1-utc": "0001-01-01T00:00:00Z",
    "before-1900": "1899-12-31T23:59:59Z",
    "last-day-of-9999": "9999-12-31T12:00:00Z",  # no room left to show it east of UTC
    "naive": "2026-11-01T00:00:00",
    "offset-24h": "2026-11-01T00:00:00+24:00",
}
BAD_DATES = {"year-1": "0001-01-01", "before-1900": "1899-12-31", "year-10000": "10000-01-01",
             "basic-format": "20991231"}
# Raw JSON number text: not JSON at all (NaN, Infinity), not an integer, beyond a BIGINT column
# (2^63-1) or beyond any integer Python's json will read (over 4,300 digits).
BAD_NUMBERS = {
    "nan": "NaN", "infinity": "Infinity", "-infinity": "-Infinity", "1e400": "1e400", "float": "1.5",
    "1e15-float": "1e15", "2^63": "9223372036854775808", "-2^63-1": "-9223372036854775809",
    "2^64": "18446744073709551616", "5000-digits": "9" * 5000,
}
BEYOND_INTEGER = "2147483648"  # 2^31: beyond an INTEGER column
# In free-form JSON (a JWK) any 64-bit integer or finite float is JSON; these are not.
BAD_JSON_NUMBERS = {k: BAD_NUMBERS[k] for k in ("nan", "infinity", "-infinity", "1e400", "-2^63-1", "2^64",
                                               "5000-digits")}
BAD_QUERY_NUMBERS = BAD_NUMBERS | {"empty": "", "text": "ten"}
# JWT time claims (encoded by PyJWT with Python's json, which writes NaN and Infinity as such).
BAD_CLAIMS = {
    "nan": float("nan"), "infinity": float("inf"), "-infinity": float("-inf"), "1e308": 1e308,
    "10^400": 10**400, "2^63": 2**63, "negative": -1, "string": "1796000000", "boolean": True,
}
PLACEHOLDER = "__VALUE__"
# What a refused request must leave as it was: everything but the logs of who did what.
UNTOUCHED = [t for t in SQLModel.metadata.sorted_tables
             if t.name not in {"access_events", "log_pending", "log_leaves", "log_nodes", "log_checkpoints",
                               "quota_usage", "web_sessions"}]


def rows(app) -> dict[str, int]:
    with app.state.register.sessions() as s:
        return {t.name: s.execute(select(func.count()).select_from(t)).scalar_one() for t in UNTOUCHED}


def raw_json(body: Any, raw: str) -> bytes:
    """`body` as JSON with PLACEHOLDER replaced by raw JSON text (a number json.dumps would not write)."""
    return json.dumps(body).replace(f'"{PLACEHOLDER}"', raw).encode()


def at(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the dotted `path` set to `value`."""
    doc = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[key]
    target[last] = value
    return doc


def refused(response, status: int = 422) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"


class Callers:
    def __init__(self, client, admin_headers, data_dir) -> None:
        self.lender = make_institution(client, admin_headers, "lender")
        self.regulator = make_institution(client, admin_headers, "regulator")
        self.person = make_person(client, data_dir)
        self.admin = admin_headers


@pytest.fixture
def callers(client, admin_headers, data_dir) -> Callers:
    return Callers(client, admin_headers, data_dir)


def _body_routes(c: Callers) -> dict[str, tuple[str, str, dict[str, str], dict[str, Any]]]:
    """Every JSON body that takes a time, date or number: (method, path, headers, a valid body)."""
    obligation = obligation_body(debtors=[debtor(c.person)], credit_limit=20_000_000)
    return {
        "obligation": ("put", f"/v1/obligations/{new_ref()}", c.lender.headers, obligation),
        "consent": ("post", "/v1/consents", c.person.headers,
                    {"institution_id": c.lender.id, "purpose": "credit_application", "expires_at": in_days(30)}),
        "attested-consent": ("post", "/v1/consents/attested", c.lender.headers,
                             {"country": "SE", "national_id": national_id(), "purpose": "credit_application",
                              "expires_at": in_days(30), "evidence": evidence()}),
        "credit-ban": ("put", "/v1/me/credit-ban", c.person.headers, {"reason": "other", "until": in_days(30)}),
        "event-search": ("post", "/v1/audit/events/search", c.regulator.headers,
                         {"country": "SE", "national_id": c.person.nid, "since": "2026-01-01T00:00:00Z",
                          "until": in_days(1), "limit": 10}),
        "as-of": ("post", "/v1/exposure", c.regulator.headers,
                  {"country": c.person.country, "national_id": c.person.nid, "purpose": "supervision",
                   "as_of": "2026-01-01T00:00:00Z"}),
        "institution-key": ("post", f"/v1/institutions/{c.lender.id}/keys", c.admin,
                            {"jwk": {**public_jwk(Ed25519PrivateKey.generate()), "ext": True}}),
    }


TIME_FIELDS = [("obligation", "as_of"), ("obligation", "registration_consent.given_at"),
               ("consent", "expires_at"), ("attested-consent", "expires_at"),
               ("attested-consent", "evidence.signed_at"), ("credit-ban", "until"),
               ("event-search", "since"), ("event-search", "until"), ("as-of", "as_of")]
DATE_FIELDS = [("obligation", "opened_on"), ("obligation", "matures_on")]
NUMBER_FIELDS = [("obligation", f) for f in ("original_amount", "balance", "credit_limit", "monthly_payment",
                                             "interest_rate_bp", "overdue_amount", "days_past_due")]
NUMBER_FIELDS += [("event-search", "limit")]
INTEGER_FIELDS = [("obligation", "interest_rate_bp"), ("obligation", "days_past_due"), ("event-search", "limit")]
ROUTES = ["obligation", "consent", "attested-consent", "credit-ban", "event-search", "as-of", "institution-key"]
NUMBER_QUERIES = [("/v1/obligations", "limit", {}), ("/v1/audit/events", "limit", {}),
                  ("/v1/audit/checkpoints", "since", {}), ("/v1/audit/checkpoints", "limit", {}),
                  ("/v1/audit/proof/inclusion", "tree_size", {"leaf_index": 0}),
                  ("/v1/audit/proof/inclusion", "leaf_index", {"tree_size": 1}),
                  ("/v1/audit/proof/consistency", "first", {"second": 1}),
                  ("/v1/audit/proof/consistency", "second", {"first": 1}),
                  ("/v1/audit/leaves", "start", {"end": 1}), ("/v1/audit/leaves", "end", {"start": 0}),
                  ("/v1/me/access-log", "limit", {}), ("/v1/events", "after", {}), ("/v1/events", "limit", {}),
                  ("/v1/webhooks/{webhook_id}/deliveries", "limit", {})]
TIME_QUERIES = [("/v1/obligations", "updated_since"), ("/v1/audit/events", "since"), ("/v1/audit/events", "until"),
                ("/v1/regulator/signals", "since"),
                ("/v1/regulator/institutions/{institution_id}/activity", "from"),
                ("/v1/regulator/institutions/{institution_id}/activity", "to")]


def _query_headers(c: Callers, path: str) -> dict[str, str]:
    if path.startswith("/v1/me/"):
        return c.person.headers
    if path.startswith(("/v1/events", "/v1/webhooks")):
        return c.lender.headers
    return c.lender.headers if path == "/v1/obligations" else c.regulator.headers


def _send(client, c: Callers, route: str, body_of) -> Any:
    method, path, headers, valid = _body_routes(c)[route]
    return client.request(method, path, content=body_of(valid), headers={**headers,
                                                                          "Content-Type": "application/json"})


class TestTimesInBodies:
    @pytest.mark.parametrize("value", BAD_TIMES.values(), ids=BAD_TIMES.keys())
    @pytest.mark.parametrize(("route", "field"), TIME_FIELDS, ids=[f"{r}.{f}" for r, f in TIME_FIELDS])
    def test_is_422_and_changes_nothing(self, app, client, callers, route, field, value):
        before = rows(app)
        r = _send(client, callers, route, lambda valid: json.dumps(at(valid, field, value)).encode())
        refused(r)
        assert r.json()["code"] == "validation_error" and field.split(".")[-1] in r.json()["detail"]
        assert rows(app) == before


class TestValidBodies:
    @pytest.mark.parametrize("route", ROUTES)
    def test_are_accepted(self, client, callers, route):
        """The bodies the refused ones are made from succeed: each refusal is the extreme value's doing."""
        r = _send(client, callers, route, lambda valid: json.dumps(valid).encode())
        assert r.status_code in (200, 201), r.text


class TestDatesInBodies:
    @pytest.mark.parametrize("value", BAD_DATES.values(), ids=BAD_DATES.keys())
    @pytest.mark.parametrize(("route", "field"), DATE_FIELDS, ids=[f for _, f in DATE_FIELDS])
    def test_is_422_and_changes_nothing(self, app, client, callers, route, field, value):
        before = rows(app)
        r = _send(client, callers, route, lambda valid: json.dumps(at(valid, field, value)).encode())
        refused(r)
        assert rows(app) == before

    def test_the_range_ends_are_accepted(self, client, callers):
        body = obligation_body(debtors=[debtor(callers.person)], opened_on="1900-01-01", matures_on="9999-12-31",
                               registration_consent={"reference": "A-1", "given_at": "1900-01-01T00:00:00Z",
                                                     "method": "paper"})
        r = client.put(f"/v1/obligations/{new_ref()}", json=body, headers=callers.lender.headers)
        assert r.status_code == 201, r.text
        assert (r.json()["opened_on"], r.json()["matures_on"]) == ("1900-01-01", "9999-12-31")


class TestNumbersInBodies:
    @pytest.mark.parametrize("value", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
    @pytest.mark.parametrize(("route", "field"), NUMBER_FIELDS, ids=[f"{r}.{f}" for r, f in NUMBER_FIELDS])
    def test_is_422_and_changes_nothing(self, app, client, callers, route, field, value):
        before = rows(app)
        r = _send(client, callers, route, lambda valid: raw_json(at(valid, field, PLACEHOLDER), value))
        refused(r)
        assert r.json()["code"] == "validation_error"
        assert rows(app) == before

    @pytest.mark.parametrize(("route", "field"), INTEGER_FIELDS, ids=[f"{r}.{f}" for r, f in INTEGER_FIELDS])
    def test_beyond_an_integer_column_is_422(self, app, client, callers, route, field):
        before = rows(app)
        refused(_send(client, callers, route, lambda valid: raw_json(at(valid, field, PLACEHOLDER), BEYOND_INTEGER)))
        assert rows(app) == before

    @pytest.mark.parametrize("value", BAD_JSON_NUMBERS.values(), ids=BAD_JSON_NUMBERS.keys())
    def test_in_a_jwk_is_422_and_registers_nothing(self, app, client, callers, value):
        before = rows(app)
        r = _send(client, callers, "institution-key", lambda valid: raw_json(at(valid, "jwk.ext", PLACEHOLDER), value))
        refused(r)
        assert r.json()["code"] == "validation_error"
        assert rows(app) == before


class TestQueries:
    @pytest.mark.parametrize("value", BAD_TIMES.values(), ids=BAD_TIMES.keys())
    @pytest.mark.parametrize(("path", "name"), TIME_QUERIES, ids=[f"{p}?{n}" for p, n in TIME_QUERIES])
    def test_a_time_is_422(self, app, client, callers, path, name, value):
        before = rows(app)
        refused(client.get(path, params={name: value}, headers=_query_headers(callers, path)))
        assert rows(app) == before

    @pytest.mark.parametrize("value", BAD_QUERY_NUMBERS.values(), ids=BAD_QUERY_NUMBERS.keys())
    @pytest.mark.parametrize(("path", "name", "others"), NUMBER_QUERIES,
                             ids=[f"{p}?{n}" for p, n, _ in NUMBER_QUERIES])
    def test_a_number_is_422(self, app, client, callers, path, name, others, value):
        before = rows(app)
        refused(client.get(path, params={**others, name: value}, headers=_query_headers(callers, path)))
        assert rows(app) == before

    @pytest.mark.parametrize("value", BAD_TIMES.values(), ids=BAD_TIMES.keys())
    @pytest.mark.parametrize("path", ["/v1/obligations", "/v1/audit/events", "/v1/me/access-log"])
    def test_a_cursor_with_such_a_time_is_invalid_cursor(self, client, callers, path, value):
        """A cursor is opaque but comes back from the client: its time is read like any other."""
        raw = json.dumps({"u": value, "i": str(uuid.uuid4())}).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        r = client.get(path, params={"cursor": cursor}, headers=_query_headers(callers, path))
        refused(r)
        assert r.json()["code"] == "invalid_cursor"


class TestBatchLines:
    """Each such line is rejected by number with its reason; the others are applied; the report finishes."""

    def test_ndjson(self, app, client, callers):
        good = new_ref()
        cases = ([("as_of", json.dumps(v)) for v in BAD_TIMES.values()]
                 + [("opened_on", json.dumps(v)) for v in BAD_DATES.values()]
                 + [("balance", v) for v in BAD_NUMBERS.values()])
        lines = [raw_json({**obligation_body(), "external_ref": new_ref(), field: PLACEHOLDER}, value).decode()
                 for field, value in cases]
        lines.append(json.dumps({**obligation_body(), "external_ref": good}))
        r = client.post("/v1/reports", content="\n".join(lines).encode(),
                        headers={**callers.lender.headers, "Content-Type": "application/x-ndjson"})
        assert r.status_code == 202, r.text
        process(app)
        doc = client.get(f"/v1/reports/{r.json()['id']}", headers=callers.lender.headers).json()
        assert (doc["status"], doc["accepted"], doc["rejected"]) == ("done", 1, len(cases))
        errors = errors_of(client, callers.lender, r.json()["id"])
        assert [(e["line"], e["code"]) for e in errors] == [(n, "validation_error") for n in range(1, len(cases) + 1)]
        for error, (field, _) in zip(errors, cases, strict=True):
            assert field in error["detail"] or "not valid JSON" in error["detail"], error
        assert client.get(f"/v1/obligations/{good}", headers=callers.lender.headers).status_code == 200

    def test_csv(self, app, client, callers):
        header = ("external_ref,kind,currency,balance,credit_limit,status,debtors,registration_consent_reference,"
                  "registration_consent_given_at,registration_consent_method,as_of,opened_on")
        nid = national_id()

        def row(balance="1500", as_of="2026-11-01T00:00:00Z", opened_on="2024-01-01") -> str:
            return (f"{new_ref()},credit_card,SEK,{balance},50000,current,SE:{nid}:primary,A-1,2026-01-01T00:00:00Z,"
                    f"e_signature,{as_of},{opened_on}")

        bad = ([row(as_of=v) for v in BAD_TIMES.values()] + [row(opened_on=v) for v in BAD_DATES.values()]
               + [row(balance=v) for v in BAD_NUMBERS.values()])
        r = client.post("/v1/reports", content="\n".join([header, *bad, row()]).encode(),
                        headers={**callers.lender.headers, "Content-Type": "text/csv"})
        assert r.status_code == 202, r.text
        process(app)
        doc = client.get(f"/v1/reports/{r.json()['id']}", headers=callers.lender.headers).json()
        assert (doc["status"], doc["accepted"], doc["rejected"]) == ("done", 1, len(bad))
        codes = {e["code"] for e in errors_of(client, callers.lender, r.json()["id"])}
        assert codes <= {"validation_error", "malformed_line"}


class TestBanForm:
    @pytest.mark.parametrize("value", BAD_DATES.values(), ids=BAD_DATES.keys())
    def test_an_end_date_out_of_range_is_shown_again(self, app, client, callers, value):
        browser = sign_in(app, callers.person)
        before = rows(app)
        r = browser.post("/app/credit-ban", {"reason": "other", "until": value})
        assert r.status_code == 422, r.text[:300]
        assert rows(app) == before
        assert client.get("/v1/me/credit-ban", headers=callers.person.headers).json()["active"] is False


def _issued(client, inst: Inst) -> int:
    with client.app.state.register.sessions() as s:
        return sum(s.execute(select(func.count()).select_from(t).where(t.institution_id == inst.id)).scalar_one()
                   for t in (OAuthAccessToken, OAuthJti))


class TestClientAssertionTimes:
    @pytest.mark.parametrize("value", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    def test_is_401_and_issues_nothing(self, client, admin_headers, claim, value):
        bank = make_institution(client, admin_headers, "lender")
        signer = add_key(client, admin_headers, bank)
        r = request_token(client, sign(signer, claims_for(client, bank, **{claim: value})))
        refused(r, 401)
        assert r.json()["code"] == "invalid_client"
        assert _issued(client, bank) == 0

    def test_nan_iat_no_longer_skips_the_lifetime_bound(self, client, admin_headers):
        """The attack as found: iat NaN, exp a day ahead. Every comparison with NaN was false."""
        bank = make_institution(client, admin_headers, "lender")
        signer = add_key(client, admin_headers, bank)
        claims = claims_for(client, bank, iat=float("nan"), exp=int(time.time()) + 86400)
        r = request_token(client, sign(signer, claims))
        refused(r, 401)
        assert "iat" in r.json()["detail"] and _issued(client, bank) == 0


def _id_token(data_dir, **claims: Any) -> dict[str, str]:
    idp = DevIdentityProvider.load_or_create(data_dir)
    now = int(time.time())
    doc = {"iss": DEV_ISSUER, "sub": national_id(), "country": "SE", "aud": "register", "iat": now, "exp": now + 600,
           **claims}
    token = jwt.encode({k: v for k, v in doc.items() if v is not None}, idp._key, algorithm="EdDSA",
                       headers={"kid": idp.kid})
    return {"Authorization": f"Bearer {token}"}


class TestIdTokenTimes:
    @pytest.mark.parametrize("value", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    def test_is_401_and_changes_nothing(self, app, client, data_dir, claim, value):
        before = rows(app)
        r = client.put("/v1/me/credit-ban", json={"reason": "other"}, headers=_id_token(data_dir, **{claim: value}))
        refused(r, 401)
        assert r.json()["code"] == "invalid_id_token"
        assert rows(app) == before

    def test_without_iat_is_401(self, client, data_dir):
        r = client.get("/v1/me/obligations", headers=_id_token(data_dir, iat=None))
        refused(r, 401)
        assert r.json()["detail"] == "token lacks iat"

    def test_a_lifetime_over_the_setting_is_401(self, app, client, data_dir):
        limit = app.state.register.settings.id_token_max_seconds
        now = int(time.time())
        r = client.get("/v1/me/obligations", headers=_id_token(data_dir, iat=now, exp=now + limit + 1))
        refused(r, 401)
        assert "exp - iat" in r.json()["detail"]
        at_the_limit = _id_token(data_dir, iat=now, exp=now + limit)
        assert client.get("/v1/me/obligations", headers=at_the_limit).status_code == 200

    def test_a_far_exp_no_longer_signs_in_for_decades(self, client, data_dir):
        now = int(time.time())
        refused(client.get("/v1/me/obligations", headers=_id_token(data_dir, iat=now, exp=now + 30 * 365 * 86400)), 401)


class TestContentLength:
    """A declared length is a number the client sends too. Sent straight to the app: the HTTP servers
    refuse such a header themselves, but behind another one the app must not be the weak point."""

    @pytest.mark.parametrize("declared", ["9" * 5000, "9" * 19, str(2**64)])
    def test_a_huge_declared_length_is_413(self, app, declared):
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": "/v1/consents",
                 "raw_path": b"/v1/consents", "query_string": b"", "root_path": "", "scheme": "http",
                 "server": ("test", 80), "client": ("test", 1),
                 "headers": [(b"content-type", b"application/json"), (b"content-length", declared.encode())]}
        asyncio.run(app(scope, receive, send))
        assert sent[0]["status"] == 413


LOOKUPS = "/v1/audit/institutions/{institution_id}/lookups"
DATE_QUERIES = [(LOOKUPS, "from"), (LOOKUPS, "to")]


class TestDateQueries:
    @pytest.mark.parametrize("value", BAD_DATES.values(), ids=BAD_DATES.keys())
    @pytest.mark.parametrize(("path", "name"), DATE_QUERIES, ids=[n for _, n in DATE_QUERIES])
    def test_a_date_is_422(self, app, client, callers, path, name, value):
        before = rows(app)
        url = path.format(institution_id=callers.lender.id)
        refused(client.get(url, params={name: value}, headers=callers.regulator.headers))
        assert rows(app) == before


def _kinds(schema: dict[str, Any]) -> set[str]:
    """'integer', 'date-time' or 'date' wherever they appear in a parameter's schema (anyOf with null too)."""
    found = {schema[k] for k in ("type", "format") if schema.get(k) in ("integer", "date-time", "date")}
    for sub in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _kinds(sub)
    return found


class TestEveryQueryIsTried:
    def test_every_time_date_and_integer_query_parameter_is_in_a_list_above(self, app):
        """A route added later with a time, date or number in its query is tried here, or this fails."""
        tried = {(p, n) for p, n in TIME_QUERIES + DATE_QUERIES} | {(p, n) for p, n, _ in NUMBER_QUERIES}
        untried = set()
        for path, item in app.openapi()["paths"].items():
            for operation in item.values():
                for param in operation.get("parameters", []):
                    if param["in"] == "query" and _kinds(param.get("schema", {})) and (path, param["name"]) not in tried:
                        untried.add((path, param["name"]))
        assert untried == set()
