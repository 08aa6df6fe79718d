"""Reporting over HTTP, on both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import Inst, make_institution, national_id, new_ref, obligation_body


@pytest.fixture
def other_lender(client: TestClient, admin_headers) -> Inst:
    return make_institution(client, admin_headers, "lender")


def put(client: TestClient, inst: Inst, ref: str, body: dict, **headers):
    return client.put(f"/v1/obligations/{ref}", json=body, headers={**inst.headers, **headers})


class TestCreate:
    def test_new_obligation_is_201_with_masked_debtor(self, client, lender):
        nid = national_id()
        ref = new_ref()
        r = put(client, lender, ref, obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}]))
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["external_ref"] == ref and doc["version"] == 1 and doc["balance"] == 8_500_000
        assert r.headers["Location"] == f"/v1/obligations/{ref}"
        assert r.headers["ETag"]
        masked = doc["debtors"][0]["national_id_masked"]
        assert masked.endswith("****") and nid[-4:] not in masked.replace("****", "")
        assert nid not in r.text

    def test_visible_at_once(self, client, lender):
        ref = new_ref()
        put(client, lender, ref, obligation_body(balance=123))
        r = client.get(f"/v1/obligations/{ref}", headers=lender.headers)
        assert r.status_code == 200 and r.json()["balance"] == 123

    def test_collector_reports_collection_claim_linked_to_loan(self, client, admin_headers, lender):
        collector = make_institution(client, admin_headers, "collector")
        body = obligation_body(
            kind="collection_claim", status="in_collection", original_creditor=lender.name,
            collects={"institution_id": lender.id, "external_ref": "LOAN-1"},
        )
        r = put(client, collector, new_ref(), body)
        assert r.status_code == 201, r.text
        assert r.json()["collects"] == {"institution_id": lender.id, "external_ref": "LOAN-1"}
        assert r.json()["collection_link"] == "unconfirmed" and r.json()["handed_to"] is None

    def test_the_creditors_handed_to_confirms_the_claim_in_every_answer_that_shows_it(self, client, admin_headers,
                                                                                       lender):
        collector = make_institution(client, admin_headers, "collector")
        loan_ref, claim_ref = new_ref(), new_ref()
        claim = obligation_body(kind="collection_claim", status="in_collection",
                                collects={"institution_id": lender.id, "external_ref": loan_ref})
        assert put(client, collector, claim_ref, claim).status_code == 201
        handed = {"institution_id": collector.id, "external_ref": claim_ref}
        r = put(client, lender, loan_ref, obligation_body(status="in_collection", handed_to=handed))
        assert r.status_code == 201 and r.json()["handed_to"] == handed and r.json()["collection_link"] is None
        versions = client.get(f"/v1/obligations/{loan_ref}/versions", headers=lender.headers).json()["versions"]
        assert versions[-1]["state"]["handed_to"] == handed
        assert client.get(f"/v1/obligations/{claim_ref}", headers=collector.headers).json()["collection_link"] == \
            "confirmed"
        items = client.get("/v1/obligations", headers=collector.headers).json()["items"]
        assert [o["collection_link"] for o in items if o["external_ref"] == claim_ref] == ["confirmed"]
        assert client.get(f"/v1/obligations/{claim_ref}/versions",
                          headers=collector.headers).json()["collection_link"] == "confirmed"
        # A retracted loan confirms nothing.
        client.delete(f"/v1/obligations/{loan_ref}", params={"reason": "error"}, headers=lender.headers)
        assert client.get(f"/v1/obligations/{claim_ref}", headers=collector.headers).json()["collection_link"] == \
            "unconfirmed"

    def test_a_claim_collecting_nothing_has_no_link(self, client, admin_headers):
        collector = make_institution(client, admin_headers, "collector")
        r = put(client, collector, new_ref(), obligation_body(kind="collection_claim", status="in_collection"))
        assert r.status_code == 201 and r.json()["collects"] is None and r.json()["collection_link"] is None

    def test_a_lender_may_not_report_collects(self, client, lender, other_lender):
        body = obligation_body(kind="collection_claim", status="in_collection", balance=0,
                               collects={"institution_id": other_lender.id, "external_ref": "LOAN-1"})
        ref = new_ref()
        r = put(client, lender, ref, body)
        assert (r.status_code, r.json()["code"]) == (403, "collector_only"), r.text
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 404

    def test_same_external_ref_at_two_institutions_are_two_obligations(self, client, lender, other_lender):
        ref = new_ref()
        assert put(client, lender, ref, obligation_body(balance=1)).status_code == 201
        assert put(client, other_lender, ref, obligation_body(balance=2)).status_code == 201
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()["balance"] == 1
        assert client.get(f"/v1/obligations/{ref}", headers=other_lender.headers).json()["balance"] == 2


class TestUpdate:
    def test_newer_state_is_200_and_new_version(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        r = put(client, lender, ref, {**body, "balance": 8_000_000, "as_of": "2026-11-02T00:00:00Z"})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2 and r.json()["balance"] == 8_000_000

    def test_limit_change_is_reflected(self, client, lender):
        ref = new_ref()
        body = obligation_body(kind="credit_card", credit_limit=2_000_000, balance=0)
        put(client, lender, ref, body)
        put(client, lender, ref, {**body, "credit_limit": 5_000_000, "as_of": "2026-11-05T00:00:00Z"})
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()["credit_limit"] == 5_000_000

    def test_stale_update_is_409_and_changes_nothing(self, client, lender):
        ref = new_ref()
        body = obligation_body(as_of="2026-11-10T00:00:00Z")
        put(client, lender, ref, body)
        r = put(client, lender, ref, {**body, "balance": 1, "as_of": "2026-11-09T23:59:59Z"})
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "stale_update"
        got = client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()
        assert got["balance"] == body["balance"] and got["version"] == 1

    def test_identical_repeat_is_idempotent(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        r = put(client, lender, ref, body)
        assert r.status_code == 200 and r.json()["version"] == 1

    def test_other_state_with_same_as_of_is_refused(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        r = put(client, lender, ref, {**body, "balance": 5})
        assert r.status_code == 409 and r.json()["code"] == "stale_update"

    def test_repaid_loan_reported_closed(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        r = put(client, lender, ref, {**body, "balance": 0, "monthly_payment": 0, "status": "closed",
                                       "as_of": "2026-11-20T00:00:00Z"})
        assert r.status_code == 200 and r.json()["status"] == "closed"

    def test_if_match_with_stale_etag_is_412(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        first = put(client, lender, ref, body)
        put(client, lender, ref, {**body, "balance": 7, "as_of": "2026-11-02T00:00:00Z"})
        r = put(client, lender, ref, {**body, "balance": 6, "as_of": "2026-11-03T00:00:00Z"},
                **{"If-Match": first.headers["ETag"]})
        assert r.status_code == 412
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()["balance"] == 7

    def test_debtors_can_change(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        co = {"country": "SE", "national_id": national_id(), "role": "co_debtor"}
        r = put(client, lender, ref, {**body, "debtors": [*body["debtors"], co], "as_of": "2026-11-02T00:00:00Z"})
        assert r.status_code == 200
        assert [d["role"] for d in r.json()["debtors"]] == ["primary", "co_debtor"]


class TestRetraction:
    def test_retracted_is_gone_and_out_of_lists(self, client, lender):
        ref = new_ref()
        put(client, lender, ref, obligation_body())
        r = client.delete(f"/v1/obligations/{ref}", params={"reason": "reported to the wrong person"},
                          headers=lender.headers)
        assert r.status_code == 200 and r.json()["retracted_at"]
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 410
        listed = client.get("/v1/obligations", params={"limit": 1000}, headers=lender.headers).json()["items"]
        assert ref not in {o["external_ref"] for o in listed}

    def test_retraction_needs_a_reason(self, client, lender):
        ref = new_ref()
        put(client, lender, ref, obligation_body())
        assert client.delete(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 422
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 200

    def test_retried_old_put_does_not_undo_retraction(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        client.delete(f"/v1/obligations/{ref}", params={"reason": "error"}, headers=lender.headers)
        assert put(client, lender, ref, body).status_code == 409
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 410

    def test_newer_report_reinstates(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        client.delete(f"/v1/obligations/{ref}", params={"reason": "error"}, headers=lender.headers)
        r = put(client, lender, ref, {**body, "as_of": "2026-11-05T00:00:00Z"})
        assert r.status_code == 200 and r.json()["retracted_at"] is None


class TestHistory:
    def test_every_change_is_a_version(self, client, lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        put(client, lender, ref, {**body, "balance": 1, "as_of": "2026-11-02T00:00:00Z"})
        put(client, lender, ref, {**body, "balance": 1, "as_of": "2026-11-02T00:00:00Z"})  # idempotent repeat
        client.delete(f"/v1/obligations/{ref}", params={"reason": "wrong person"}, headers=lender.headers)
        r = client.get(f"/v1/obligations/{ref}/versions", headers=lender.headers)
        assert r.status_code == 200
        versions = r.json()["versions"]
        assert [(v["version"], v["change"]) for v in versions] == [(1, "created"), (2, "updated"), (3, "retracted")]
        assert [v["state"]["balance"] for v in versions] == [body["balance"], 1, 1]
        assert versions[2]["state"]["retraction_reason"] == "wrong person"
        assert all(v["institution_id"] == lender.id and v["request_id"] for v in versions)
        assert body["debtors"][0]["national_id"] not in r.text
        assert versions[0]["state"]["debtors"][0]["national_id_masked"].endswith("****")


class TestOtherInstitutionsRecord:
    """Another institution's obligation is 404 on every verb, never 403, and is never changed."""

    def test_every_verb_is_404(self, client, lender, other_lender):
        ref = new_ref()
        body = obligation_body()
        put(client, lender, ref, body)
        assert client.get(f"/v1/obligations/{ref}", headers=other_lender.headers).status_code == 404
        assert client.get(f"/v1/obligations/{ref}/versions", headers=other_lender.headers).status_code == 404
        assert client.delete(f"/v1/obligations/{ref}", params={"reason": "x"},
                             headers=other_lender.headers).status_code == 404
        listed = client.get("/v1/obligations", headers=other_lender.headers).json()["items"]
        assert ref not in {o["external_ref"] for o in listed}
        # A PUT under the same reference creates the other lender's own record; the first is untouched.
        put(client, other_lender, ref, {**body, "balance": 1, "as_of": "2026-12-01T00:00:00Z"})
        got = client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()
        assert got["balance"] == body["balance"] and got["version"] == 1


class TestPagination:
    def test_cursor_walks_every_obligation_once(self, client, lender):
        refs = {new_ref() for _ in range(7)}
        for ref in refs:
            put(client, lender, ref, obligation_body())
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            doc = client.get("/v1/obligations", params=params, headers=lender.headers).json()
            seen += [o["external_ref"] for o in doc["items"]]
            pages += 1
            cursor = doc["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(refs) and pages == 3

    def test_status_and_updated_since_filter(self, client, lender):
        late = new_ref()
        put(client, lender, new_ref(), obligation_body())
        put(client, lender, late, obligation_body(status="overdue", overdue_amount=500, days_past_due=40))
        doc = client.get("/v1/obligations", params={"status": "overdue"}, headers=lender.headers).json()
        assert [o["external_ref"] for o in doc["items"]] == [late]
        future = client.get("/v1/obligations", params={"updated_since": "2999-01-01T00:00:00Z"},
                            headers=lender.headers).json()
        assert future["items"] == []

    def test_garbage_cursor_is_422(self, client, lender):
        r = client.get("/v1/obligations", params={"cursor": "not-a-cursor"}, headers=lender.headers)
        assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"


class TestRoles:
    def test_no_token_is_401(self, client):
        r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body())
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"

    def test_wrong_token_is_401(self, client):
        r = client.get("/v1/obligations", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401

    def test_regulator_cannot_report(self, client, admin_headers):
        regulator = make_institution(client, admin_headers, "regulator")
        r = put(client, regulator, new_ref(), obligation_body())
        assert r.status_code == 403 and r.json()["code"] == "forbidden"

    def test_admin_cannot_report(self, client, admin_headers):
        r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=admin_headers)
        assert r.status_code == 403


class TestValidation:
    def test_invalid_national_id_names_the_debtor(self, client, lender):
        good = {"country": "SE", "national_id": national_id(), "role": "primary"}
        bad_number = national_id()
        bad_number = bad_number[:-1] + str((int(bad_number[-1]) + 1) % 10)
        bad = {"country": "SE", "national_id": bad_number, "role": "co_debtor"}
        ref = new_ref()
        r = put(client, lender, ref, obligation_body(debtors=[good, bad]))
        assert r.status_code == 422
        doc = r.json()
        assert doc["code"] == "invalid_national_id"
        assert doc["errors"][0]["loc"] == ["body", "debtors", 1, "national_id"]
        assert bad_number not in r.text
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 404

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("balance", True),  # a boolean is not a number
            ("balance", "100"),  # nor is a string
            ("balance", 1.5),
            ("balance", -1),
            ("opened_on", 20240301),  # a number is not a date
            ("opened_on", "yesterday"),
            ("as_of", "2026-11-01T00:00:00"),  # a time needs an offset
            ("kind", "payday_loan"),
            ("owner", "someone-else"),  # unknown fields are refused
            ("version", 99),
        ],
    )
    def test_strict_body(self, client, lender, field, value):
        ref = new_ref()
        r = put(client, lender, ref, {**obligation_body(), field: value})
        assert r.status_code == 422, (field, value, r.text)
        assert r.json()["code"] == "validation_error"
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 404

    def test_validation_error_does_not_echo_identity(self, client, lender):
        nid = national_id()
        body = obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary", "extra": 1}])
        r = put(client, lender, new_ref(), body)
        assert r.status_code == 422 and nid not in r.text

    @pytest.mark.parametrize(
        "overrides",
        [
            {"kind": "credit_card"},  # revolving needs a limit
            {"currency": "XXY"},
            {"status": "closed"},  # closed with a balance
            {"collects": {"institution_id": "00000000-0000-0000-0000-000000000000", "external_ref": "X"}},
            {"as_of": "2999-01-01T00:00:00Z"},
            {"debtors": [{"country": "SE", "national_id": national_id(), "role": "co_debtor"}]},
        ],
    )
    def test_cross_field_rules(self, client, lender, overrides):
        r = put(client, lender, new_ref(), obligation_body(**overrides))
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_obligation"

    def test_same_person_twice_is_refused(self, client, lender):
        nid = national_id()
        debtors = [{"country": "SE", "national_id": nid, "role": "primary"},
                   {"country": "SE", "national_id": nid.replace("-", ""), "role": "co_debtor"}]
        r = put(client, lender, new_ref(), obligation_body(debtors=debtors))
        assert r.status_code == 422 and r.json()["code"] == "duplicate_debtor"

    def test_other_countries(self, client, lender):
        for country in ("NO", "FI", "DK", "PL"):
            nid = national_id(country)
            body = obligation_body(debtors=[{"country": country, "national_id": nid, "role": "primary"}])
            r = put(client, lender, new_ref(), body)
            assert r.status_code == 201, (country, r.text)
            assert nid not in r.text

    def test_oversized_body_is_413(self, client, lender):
        ref = new_ref()
        body = obligation_body(original_creditor="x" * 100, padding="y" * (1024 * 1024))
        r = put(client, lender, ref, body)
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 404
