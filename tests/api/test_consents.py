from __future__ import annotations

import hashlib


from tests.factories import grant, in_days, make_institution, make_person, national_id


def evidence() -> dict:
    return {"method": "signed_application", "reference": "APP-7781", "signed_at": "2026-11-20T10:00:00Z",
            "document_sha256": hashlib.sha256(b"application.pdf").hexdigest()}


class TestGrant:
    def test_person_grants_and_sees_it(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        mine = client.get("/v1/me/consents", headers=person.headers).json()["items"]
        assert [c["id"] for c in mine] == [cid]
        assert mine[0]["institution_name"] == lender.name and mine[0]["active"] and not mine[0]["attested"]
        assert client.get("/v1/consents", headers=person.headers).json()["items"][0]["id"] == cid

    def test_lender_sees_consents_granted_to_it_masked(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        r = client.get("/v1/consents", headers=lender.headers)
        assert r.status_code == 200
        item = next(c for c in r.json()["items"] if c["id"] == cid)
        assert item["subject"]["national_id_masked"].endswith("****")
        assert person.nid not in r.text

    def test_other_lender_does_not_see_it(self, client, admin_headers, data_dir, lender):
        other = make_institution(client, admin_headers, "lender")
        cid = grant(client, make_person(client, data_dir).headers, lender.id)
        assert cid not in {c["id"] for c in client.get("/v1/consents", headers=other.headers).json()["items"]}

    def test_more_than_90_days_is_refused(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        r = client.post("/v1/consents", json={"institution_id": lender.id, "purpose": "credit_application",
                                              "expires_at": in_days(91)}, headers=person.headers)
        assert r.status_code == 422 and r.json()["code"] == "invalid_consent"
        assert client.get("/v1/me/consents", headers=person.headers).json()["items"] == []

    def test_past_expiry_and_unknown_purpose_are_refused(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        for body in ({"institution_id": lender.id, "purpose": "credit_application", "expires_at": in_days(-1)},
                     {"institution_id": lender.id, "purpose": "marketing", "expires_at": in_days(1)}):
            assert client.post("/v1/consents", json=body, headers=person.headers).status_code == 422

    def test_unknown_or_regulator_institution_is_refused(self, client, admin_headers, data_dir):
        person = make_person(client, data_dir)
        regulator = make_institution(client, admin_headers, "regulator")
        for iid in (regulator.id, "00000000-0000-4000-8000-000000000000"):
            r = client.post("/v1/consents", json={"institution_id": iid, "purpose": "credit_application",
                                                  "expires_at": in_days(1)}, headers=person.headers)
            assert r.status_code == 422 and r.json()["code"] == "unknown_institution"

    def test_institutions_cannot_grant(self, client, lender):
        r = client.post("/v1/consents", json={"institution_id": lender.id, "purpose": "credit_application",
                                              "expires_at": in_days(1)}, headers=lender.headers)
        assert r.status_code == 403


class TestRevoke:
    def test_revoked_at_once(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        r = client.delete(f"/v1/consents/{cid}", headers=person.headers)
        assert r.status_code == 200 and r.json()["revoked_at"] and not r.json()["active"]
        again = client.delete(f"/v1/consents/{cid}", headers=person.headers)
        assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]

    def test_another_person_cannot_revoke(self, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        cid = grant(client, x.headers, lender.id)
        assert client.delete(f"/v1/consents/{cid}", headers=y.headers).status_code == 404
        assert client.get("/v1/me/consents", headers=x.headers).json()["items"][0]["active"]

    def test_lender_cannot_revoke(self, client, data_dir, lender):
        cid = grant(client, make_person(client, data_dir).headers, lender.id)
        assert client.delete(f"/v1/consents/{cid}", headers=lender.headers).status_code == 403


class TestAttested:
    def test_lender_records_and_person_sees_and_revokes(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        r = client.post("/v1/consents/attested", json={
            "country": "SE", "national_id": person.nid, "purpose": "credit_application",
            "expires_at": in_days(28), "evidence": evidence()}, headers=lender.headers)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        assert r.json()["attested"] and r.json()["source"] == "attested" and person.nid not in r.text
        mine = client.get("/v1/me/consents", headers=person.headers).json()["items"]
        assert mine[0]["id"] == cid and mine[0]["attested"] and mine[0]["evidence"]["reference"] == "APP-7781"
        assert client.delete(f"/v1/consents/{cid}", headers=person.headers).status_code == 200

    def test_evidence_is_required_and_strict(self, client, lender):
        body = {"country": "SE", "national_id": national_id(), "purpose": "credit_application",
                "expires_at": in_days(1), "evidence": {**evidence(), "document_sha256": "not-a-hash"}}
        assert client.post("/v1/consents/attested", json=body, headers=lender.headers).status_code == 422
        del body["evidence"]
        assert client.post("/v1/consents/attested", json=body, headers=lender.headers).status_code == 422

    def test_consumer_and_regulator_cannot_attest(self, client, admin_headers, data_dir):
        regulator = make_institution(client, admin_headers, "regulator")
        body = {"country": "SE", "national_id": national_id(), "purpose": "credit_application",
                "expires_at": in_days(1), "evidence": evidence()}
        assert client.post("/v1/consents/attested", json=body, headers=regulator.headers).status_code == 403
        person = make_person(client, data_dir)
        assert client.post("/v1/consents/attested", json=body, headers=person.headers).status_code == 403
