"""What the fuzzer (test_fuzz.py) found, pinned as plain regression tests on both databases."""

from __future__ import annotations

import pytest

from tests.factories import make_institution

JSON_ROUTES = [("post", "/v1/consents"), ("post", "/v1/exposure"), ("post", "/v1/institutions"),
               ("post", "/v1/audit/events/search"), ("put", "/v1/obligations/LOAN-1")]


class TestUndecodableBody:
    """A body that is not UTF-8 made FastAPI answer 400 `http_error`, a status the contract does not have."""

    @pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
    def test_is_a_validation_error(self, client, admin_headers, method, path):
        lender = make_institution(client, admin_headers, "lender")
        r = client.request(method, path, content=b"\xff\xfe", headers={**lender.headers,
                                                                     "Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "validation_error"


class TestAnonymousWithABadBody:
    """FastAPI parses a JSON body before the route's dependencies run, so an anonymous caller sending
    malformed JSON got 422 (or 400) instead of 401: the body was judged before the caller."""

    @pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""], ids=["malformed", "not-utf8", "empty"])
    @pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
    def test_is_401(self, client, method, path, body):
        r = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["code"] == "unauthenticated"

    def test_with_a_wrong_scheme_is_401_too(self, client):
        r = client.post("/v1/consents", content=b"{", headers={"Authorization": "Basic eDp5",
                                                               "Content-Type": "application/json"})
        assert r.status_code == 401, r.text

    def test_a_public_route_is_unaffected(self, client):
        assert client.get("/livez").status_code == 200


class TestEmptyLeafHash:
    """`?leaf_hash=` (empty) passed the one-of check as given, then was dropped as falsy: neither index
    nor hash reached the proof code, whose assertion made it a 500."""

    def test_is_invalid_hash(self, client, admin_headers):
        regulator = make_institution(client, admin_headers, "regulator")
        client.post("/v1/audit/checkpoints", headers=regulator.headers)  # a tree of at least one leaf
        r = client.get("/v1/audit/proof/inclusion", params={"tree_size": 1, "leaf_hash": ""}, headers=regulator.headers)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_hash"
