"""Errors that say what to do with a body: a JSON body sent as something else is `415 unsupported_media_type`
naming the type to send (once the caller is authenticated and authorised), and a body that does not parse
is `422` naming the line and column. On both databases."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from register.main import openapi_document
from tests.factories import Inst, Person, debtor, make_person, new_ref, obligation_body

ANY_ID = str(uuid.uuid4())
# Every operation with a JSON body, as a caller its policy admits, with a body it would accept.
JSON_ROUTES: dict[str, tuple[str, str, dict]] = {  # "METHOD path": (who, url, body)
    "POST /v1/institutions": ("admin", "/v1/institutions", {"name": "Media Bank", "role": "lender"}),
    "POST /v1/institutions/{institution_id}/keys": ("admin", f"/v1/institutions/{ANY_ID}/keys",
                                                    {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}),
    "PUT /v1/obligations/{external_ref}": ("lender", "/v1/obligations/MEDIA-1", obligation_body()),
    "POST /v1/consents": ("consumer", "/v1/consents", {"institution_id": ANY_ID, "purpose": "credit_application",
                                                       "expires_at": "2027-01-01T00:00:00Z"}),
    "POST /v1/consents/attested": ("lender", "/v1/consents/attested", {"country": "SE"}),
    "POST /v1/exposure": ("lender", "/v1/exposure", {"country": "SE", "purpose": "credit_application"}),
    "POST /v1/me/disputes": ("consumer", "/v1/me/disputes", {"obligation": ANY_ID, "reason": "repaid", "text": "x"}),
    "PUT /v1/me/disputes/{dispute_id}/statement": ("consumer", f"/v1/me/disputes/{ANY_ID}/statement",
                                                   {"statement": "I paid."}),
    "PUT /v1/me/credit-ban": ("consumer", "/v1/me/credit-ban", {"reason": "self_control"}),
    "PUT /v1/me/notifications": ("consumer", "/v1/me/notifications", {"email": "body@example.org"}),
    "POST /v1/disputes/{dispute_id}/answer": ("lender", f"/v1/disputes/{ANY_ID}/answer",
                                              {"outcome": "upheld", "explanation": "correct"}),
    "POST /v1/audit/events/search": ("regulator", "/v1/audit/events/search", {"country": "SE", "limit": 5}),
    "POST /v1/webhooks": ("lender", "/v1/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["consent"]}),
}
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x"]


@pytest.fixture
def callers(client: TestClient, admin_headers, lender: Inst, regulator: Inst, data_dir) -> dict[str, dict[str, str]]:
    person: Person = make_person(client, data_dir)
    return {"admin": admin_headers, "lender": lender.headers, "regulator": regulator.headers,
            "consumer": person.headers}


def send(client: TestClient, key: str, headers: dict[str, str], content_type: str | None, body: bytes | None = None):
    _, url, doc = JSON_ROUTES[key]
    if content_type is not None:
        headers = {**headers, "Content-Type": content_type}
    return client.request(key.split(" ", 1)[0], url, content=json.dumps(doc).encode() if body is None else body,
                          headers=headers)


class TestAJsonBodySentAsSomethingElse:
    def test_the_table_names_every_operation_with_a_json_body(self):
        doc = openapi_document()
        keys = {f"{method.upper()} {path}" for path, item in doc["paths"].items() for method, op in item.items()
                if "application/json" in op.get("requestBody", {}).get("content", {})}
        assert keys == set(JSON_ROUTES)

    @pytest.mark.parametrize("key", sorted(JSON_ROUTES))
    def test_is_415_naming_the_type_to_send(self, client, callers, key):
        headers = callers[JSON_ROUTES[key][0]]
        for content_type in NOT_JSON:
            r = send(client, key, headers, content_type)
            assert r.status_code == 415, (key, content_type, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert problem["code"] == "unsupported_media_type" and problem["status"] == 415
            assert "Content-Type: application/json" in problem["detail"]
            assert content_type.split(";")[0] in problem["detail"]  # and what it got instead

    def test_a_body_without_a_content_type_is_415_too(self, client, callers):
        r = send(client, "PUT /v1/me/credit-ban", callers["consumer"], None)
        assert r.status_code == 415, r.text
        assert r.json()["detail"] == ("send the body as JSON, with Content-Type: application/json "
                                      "(this request had none)")

    def test_a_content_type_that_is_not_a_media_type_is_not_quoted_back(self, client, callers):
        r = send(client, "POST /v1/institutions", callers["admin"], "<script>alert(1)</script>")
        assert r.status_code == 415
        assert "script" not in r.text and "not a media type" in r.json()["detail"]

    def test_changes_nothing(self, client, callers):
        before = client.get("/v1/institutions", headers=callers["admin"]).json()["items"]
        assert send(client, "POST /v1/institutions", callers["admin"], "text/plain").status_code == 415
        assert client.get("/v1/institutions", headers=callers["admin"]).json()["items"] == before
        ref = new_ref()
        r = client.put(f"/v1/obligations/{ref}", content=json.dumps(obligation_body()),
                       headers={**callers["lender"], "Content-Type": "text/plain"})
        assert r.status_code == 415
        assert client.get(f"/v1/obligations/{ref}", headers=callers["lender"]).status_code == 404
        send(client, "PUT /v1/me/credit-ban", callers["consumer"], "text/plain")
        assert client.get("/v1/me/credit-ban", headers=callers["consumer"]).json()["active"] is False

    def test_json_with_a_charset_or_a_json_suffix_type_is_json(self, client, callers):
        for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
            r = send(client, "PUT /v1/me/credit-ban", callers["consumer"], content_type)
            assert r.status_code == 200, (content_type, r.text)


class TestAuthenticationComesFirst:
    """The 415 is for a caller the route admits: anyone else learns nothing about what the route takes."""

    @pytest.mark.parametrize("key", sorted(JSON_ROUTES))
    def test_without_a_token_it_is_401(self, client, key):
        r = send(client, key, {}, "text/plain")
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated", (key, r.text)

    def test_with_an_unknown_token_it_is_401(self, client):
        r = send(client, "POST /v1/institutions", {"Authorization": "Bearer rgt_nobody"}, "text/plain")
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"

    def test_a_role_the_route_does_not_admit_gets_403(self, client, callers):
        r = send(client, "PUT /v1/obligations/{external_ref}", callers["regulator"], "text/plain")
        assert r.status_code == 403 and r.json()["code"] == "forbidden"


class TestABodyThatDoesNotParse:
    def test_names_the_line_and_column(self, client, admin_headers):
        body = b'{\n  "name": "Line Bank",\n  "role": "lender"\n  "country": "SE"\n}'
        r = client.post("/v1/institutions", content=body, headers={**admin_headers, "Content-Type": "application/json"})
        assert r.status_code == 422
        problem = r.json()
        assert problem["code"] == "validation_error"
        assert problem["detail"] == "body: invalid JSON at line 4 column 3: Expecting ',' delimiter"
        assert problem["errors"] == [{"loc": ["body"], "msg": "invalid JSON at line 4 column 3: Expecting ',' "
                                      "delimiter", "type": "json_invalid"}]

    def test_on_one_line_it_is_line_1(self, client, admin_headers):
        r = client.post("/v1/institutions", content=b'{"name": "X", "role": lender}',
                        headers={**admin_headers, "Content-Type": "application/json"})
        assert r.json()["detail"] == "body: invalid JSON at line 1 column 23: Expecting value"

    def test_does_not_quote_the_body(self, client, lender, data_dir):
        person = make_person(client, data_dir)
        text = json.dumps(obligation_body(debtors=[debtor(person)]))[:-1] + ',}'  # a trailing comma
        r = client.put(f"/v1/obligations/{new_ref()}", content=text.encode(),
                       headers={**lender.headers, "Content-Type": "application/json"})
        assert r.status_code == 422 and "line 1 column" in r.json()["detail"]
        assert person.nid not in r.text

    def test_the_sdk_shows_the_refusal_as_its_own_class(self, client, admin_headers):
        from register_client._exceptions import UnsupportedMediaType, api_error

        r = client.post("/v1/institutions", content=b"name=X", headers={**admin_headers,
                                                                        "Content-Type": "text/plain"})
        error = api_error(r)
        assert isinstance(error, UnsupportedMediaType) and error.code == "unsupported_media_type"

