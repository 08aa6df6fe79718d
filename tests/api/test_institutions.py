from __future__ import annotations

from tests.factories import make_institution


class TestInstitutions:
    def test_admin_creates_and_token_works(self, client, admin_headers):
        lender = make_institution(client, admin_headers, "lender", org_number="556677-8899", country="SE")
        assert lender.token.startswith("rgt_") and len(lender.token) >= 4 + 43  # 32 random bytes, base64url
        assert client.get("/v1/obligations", headers=lender.headers).status_code == 200

    def test_token_is_not_listed(self, client, admin_headers):
        lender = make_institution(client, admin_headers, "lender")
        r = client.get("/v1/institutions", headers=admin_headers)
        assert r.status_code == 200
        assert lender.id in {i["id"] for i in r.json()["items"]}
        assert lender.token not in r.text

    def test_regulator_lists_but_cannot_create(self, client, admin_headers):
        regulator = make_institution(client, admin_headers, "regulator")
        assert client.get("/v1/institutions", headers=regulator.headers).status_code == 200
        r = client.post("/v1/institutions", json={"name": "X", "role": "lender"}, headers=regulator.headers)
        assert r.status_code == 403

    def test_lender_can_neither_list_nor_create(self, client, admin_headers):
        lender = make_institution(client, admin_headers, "lender")
        assert client.get("/v1/institutions", headers=lender.headers).status_code == 403
        assert client.post("/v1/institutions", json={"name": "X", "role": "lender"},
                           headers=lender.headers).status_code == 403

    def test_anonymous_is_401(self, client):
        assert client.get("/v1/institutions").status_code == 401
        assert client.post("/v1/institutions", json={"name": "X", "role": "lender"}).status_code == 401

    def test_consumer_or_admin_role_cannot_be_issued(self, client, admin_headers):
        for role in ("admin", "consumer"):
            r = client.post("/v1/institutions", json={"name": "X", "role": role}, headers=admin_headers)
            assert r.status_code == 422

    def test_unknown_field_is_refused(self, client, admin_headers):
        r = client.post("/v1/institutions", json={"name": "X", "role": "lender", "token_hash": "0" * 64},
                        headers=admin_headers)
        assert r.status_code == 422
