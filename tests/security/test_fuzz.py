"""Schemathesis, a third-party fuzzer, attacks every operation of the OpenAPI document the app serves,
in-process, on both databases, as a caller who holds the role the operation is for.

Checks: no 5xx (`not_a_server_error`), every response matches its documented status, media type and
schema, and every operation that needs a token answers 401 without one. Generation is seeded (SEED) and
bounded (MAX_EXAMPLES per operation and mode, positive and negative data), so a failure reproduces
with the same seed and the run fits CI.

Beyond schemathesis's own values, half the cases carry extremes an attacker sent
(test_extreme_values.py has each, route by route): `date-time` and `date` values are drawn half the time
from years 1, 1899, 1900 and 9999 with offsets up to +-23:59 or none, and every number in a JSON body or a
query is replaced, each with even odds, by NaN, Infinity, 1e308, 2^31, 2^63, 2^64, -2^63-1 or 10^400.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.formats import rfc3339_values, unregister_string_format
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from register.crypto.keys import StaticKeys
from register.main import create_app
from register.storage.migrate import upgrade
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database, make_settings
from tests.factories import consumer_headers, grant, make_institution, national_id, new_ref, obligation_body

SEED = 20261123
MAX_EXAMPLES = 8  # per operation and mode (positive, negative): ~16 requests each
AUTH_EXAMPLES = 3
CHECKED_IN = Path(__file__).resolve().parents[2] / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Who calls each operation: the role it is for. A new operation must be added here (a test checks).
ROLE = {
    "GET /healthz": None, "GET /livez": None, "GET /metrics": None, "GET /v1/audit/log-key": None,
    "GET /v1/audit/log-keys": None, "GET /v1/statistics": None,
    "GET /v1/audit/checkpoint": "regulator", "GET /v1/audit/checkpoints": "regulator",
    "POST /v1/audit/checkpoints": "regulator", "GET /v1/audit/events": "regulator",
    "POST /v1/audit/events/search": "regulator", "GET /v1/audit/leaves": "regulator",
    "GET /v1/audit/proof/consistency": "regulator", "GET /v1/audit/proof/inclusion": "regulator",
    "GET /v1/consents": "lender", "POST /v1/consents": "consumer", "POST /v1/consents/attested": "lender",
    "DELETE /v1/consents/{consent_id}": "consumer", "POST /v1/exposure": "lender",
    "GET /v1/exposure/{exposure_id}": "regulator",
    "GET /v1/institutions": "admin", "POST /v1/institutions": "admin",
    "POST /v1/institutions/{institution_id}/keys": "admin", "GET /v1/institutions/{institution_id}/keys": "admin",
    "DELETE /v1/institutions/{institution_id}/keys/{kid}": "admin",
    "DELETE /v1/institutions/{institution_id}/access-tokens": "admin",
    "POST /v1/institutions/{institution_id}/token": "admin",
    "POST /v1/oauth/token": None,  # public: the client assertion in the form body authenticates
    "GET /.well-known/oauth-authorization-server": None,  # public: how to sign in
    "GET /v1/me/access-log": "consumer", "GET /v1/me/access-log/{event_id}/proof": "consumer",
    "GET /v1/me/consents": "consumer", "GET /v1/me/obligations": "consumer", "GET /v1/me/retention": "consumer",
    "GET /v1/obligations": "lender", "DELETE /v1/obligations/{external_ref}": "lender",
    "GET /v1/obligations/{external_ref}": "lender", "PUT /v1/obligations/{external_ref}": "lender",
    "GET /v1/obligations/{external_ref}/versions": "lender", "POST /v1/reports": "lender",
    "GET /v1/reports/{report_id}": "lender", "GET /v1/reports/{report_id}/errors": "lender",
    "GET /v1/me/disputes": "consumer", "POST /v1/me/disputes": "consumer",
    "GET /v1/me/disputes/{dispute_id}": "consumer", "POST /v1/me/disputes/{dispute_id}/withdraw": "consumer",
    "PUT /v1/me/disputes/{dispute_id}/statement": "consumer", "GET /v1/me/credit-ban": "consumer",
    "PUT /v1/me/credit-ban": "consumer", "DELETE /v1/me/credit-ban": "consumer",
    "GET /v1/me/notifications": "consumer", "PUT /v1/me/notifications": "consumer",
    "DELETE /v1/me/notifications": "consumer",
    "GET /v1/disputes": "lender", "GET /v1/disputes/{dispute_id}": "lender",
    "POST /v1/disputes/{dispute_id}/answer": "lender", "GET /v1/audit/disputes": "regulator",
    "GET /v1/audit/institutions/{institution_id}/lookups": "regulator",
    "GET /v1/regulator/signals": "regulator",
    "GET /v1/events": "lender", "GET /v1/webhooks": "lender", "POST /v1/webhooks": "lender",
    "POST /v1/webhooks/{webhook_id}/secret": "lender", "GET /v1/webhooks/{webhook_id}/deliveries": "lender",
    "DELETE /v1/webhooks/{webhook_id}": "lender", "GET /v1/webhooks/{webhook_id}": "lender",
    "GET /v1/regulator/institutions/{institution_id}/activity": "regulator",
}  # fmt: skip


def checked_in_operations() -> list[str]:
    doc = json.loads(CHECKED_IN.read_text())
    return [f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item if m in METHODS]


OPERATIONS = checked_in_operations()
KNOWN = [label for label in OPERATIONS if label in ROLE]  # test_every_operation_has_a_caller names the rest
PROTECTED = [label for label in KNOWN if ROLE[label]]

# The extremes, drawn alongside schemathesis's own values (see the module docstring).
EXTREME_DAYS = ["0001-01-01", "1899-12-31", "1900-01-01", "9999-12-31"]
EXTREME_TIMES = st.builds("{}T{}{}".format, st.sampled_from(EXTREME_DAYS),
                          st.sampled_from(["00:00:00", "12:00:00", "23:59:59.999999"]),
                          st.sampled_from(["Z", "+14:00", "-14:00", "+23:59", "-23:59", ""]))
EXTREME_NUMBERS = [float("nan"), float("inf"), float("-inf"), 1e308, 2**31, 2**63, 2**64, -(2**63) - 1, 10**400]
EXTREME_QUERY_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", *map(str, EXTREME_NUMBERS[3:])]
FORMATS = {"date-time": st.one_of(rfc3339_values("date-time"), EXTREME_TIMES),
           "date": st.one_of(rfc3339_values("full-date"), st.sampled_from(EXTREME_DAYS))}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _spiked(value: Any, draw) -> Any:  # noqa: ANN001
    """`value` (a JSON document) with each number replaced, with even odds, by an extreme one."""
    if isinstance(value, dict):
        return {k: _spiked(v, draw) for k, v in value.items()}
    if isinstance(value, list):
        return [_spiked(v, draw) for v in value]
    if _is_number(value) and draw(st.booleans()):
        return draw(st.sampled_from(EXTREME_NUMBERS))
    return value


@st.composite
def with_extremes(draw, cases: st.SearchStrategy):  # noqa: ANN001
    """Half the cases as generated; the other half with extreme numbers in the JSON body and the query."""
    case = draw(cases)
    if draw(st.booleans()):
        if isinstance(case.body, dict | list):
            case.body = _spiked(copy.deepcopy(case.body), draw)
        if case.query:
            case.query = {k: draw(st.sampled_from(EXTREME_QUERY_NUMBERS)) if _is_number(v) and draw(st.booleans())
                          else v for k, v in case.query.items()}
    return case


@dataclass
class Fuzzed:
    app: FastAPI
    schema: schemathesis.BaseSchema
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def fuzzed(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """Its own database, so that what the fuzzer creates (institutions, consents, reports) is seen by no
    other test; a little real data, so that some generated requests find something."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{data_dir / 'fuzz.db'}" if backend == "sqlite" else create_pg_database()
    for name, strategy in FORMATS.items():
        schemathesis.openapi.format(name, strategy)
    try:
        upgrade(url)
        app = create_app(make_settings(url, data_dir, accept_test_identities=True), keys=StaticKeys.generate())
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with TestClient(app, raise_server_exceptions=False) as client:
            lender = make_institution(client, admin, "lender")
            regulator = make_institution(client, admin, "regulator")
            nid = national_id()
            consumer = consumer_headers(data_dir, "SE", nid, ttl=3600)
            body = obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}])
            assert client.put(f"/v1/obligations/{new_ref()}", json=body, headers=lender.headers).status_code == 201
            grant(client, consumer, lender.id)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield Fuzzed(app=app, schema=schema, headers={
            "admin": admin, "lender": lender.headers, "regulator": regulator.headers, "consumer": consumer})
        app.state.register.engine.dispose()
    finally:
        for name in FORMATS:
            unregister_string_format(name)
        if backend == "postgres":
            drop_pg_database(url)


def test_every_operation_has_a_caller():
    assert sorted(OPERATIONS) == sorted(ROLE), "add the new operation to ROLE (who calls it)"


def _run(fuzzed: Fuzzed, label: str, test, *, examples: int = MAX_EXAMPLES, headers: dict | None = None) -> None:
    """Seeded: a failure reproduces with the same SEED. `headers` are fixed (not generated or mutated)."""
    operation = fuzzed.schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served document"
    strategy = with_extremes(st.one_of(*(operation.as_strategy(mode, headers=headers or None)
                                         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))))

    @seed(SEED)
    @settings(max_examples=2 * examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(case=strategy)
    def run(case) -> None:
        test(case)

    run()


def send(case, app: FastAPI):  # noqa: ANN201
    """The case as schemathesis sends it, but a JSON body encoded by Python's json, which writes NaN and
    Infinity as such (requests refuses to): the extremes must reach the app."""
    if isinstance(case.body, dict | list) and case.media_type == "application/json":
        return case.call(app=app, data=json.dumps(case.body).encode())
    return case.call(app=app)


def without_auth(case) -> None:
    if case.headers is None:
        case.headers = {}
    for name in [h for h in case.headers if h.lower() == "authorization"]:
        del case.headers[name]


@pytest.mark.parametrize("label", KNOWN)
def test_fuzz(fuzzed: Fuzzed, label: str):
    role = ROLE[label]
    headers = fuzzed.headers[role] if role else {}

    def check(case) -> None:
        response = send(case, fuzzed.app)
        case.validate_response(response, checks=CHECKS)

    # The token is fixed, else negative mode spends half its cases leaving it out (test_missing_auth_is_401).
    _run(fuzzed, label, check, headers=headers)


@pytest.mark.parametrize("label", PROTECTED)
def test_missing_auth_is_401(fuzzed: Fuzzed, label: str):
    """Whatever the request looks like, without a token the answer is 401, before anything else."""

    def check(case) -> None:
        without_auth(case)
        response = send(case, fuzzed.app)
        assert response.status_code == 401, (response.status_code, response.text, case.as_curl_command())
        assert response.headers["content-type"] == ["application/problem+json"]
        assert response.headers["www-authenticate"] == ["Bearer"]
        assert response.json()["code"] == "unauthenticated"

    _run(fuzzed, label, check, examples=AUTH_EXAMPLES)
