"""The exposure rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from register.domain.exposure import Line, compute_exposure

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def line(**kw) -> Line:
    base = dict(obligation_id="o1", institution_id="bank", creditor_name="Bank", external_ref="L1",
                kind="instalment_loan", role="primary", own_debtors=1, currency="SEK", balance=1000,
                credit_limit=None, monthly_payment=100, overdue_amount=0, days_past_due=0, status="current",
                as_of=NOW)
    return Line(**{**base, **kw})


class TestComputeExposure:
    def test_empty(self):
        doc = compute_exposure([], now=NOW)
        assert doc["totals"] == {} and doc["obligations"] == [] and doc["collections"] == {"count": 0, "amount": {}}

    def test_revolving_counts_unused_limit(self):
        doc = compute_exposure([line(kind="credit_card", credit_limit=5000, balance=6000)], now=NOW)
        assert doc["totals"]["SEK"]["credit_limit"] == 5000 and doc["totals"]["SEK"]["unused_credit"] == 0

    def test_guarantee_is_contingent(self):
        doc = compute_exposure([line(role="guarantor")], now=NOW)
        assert doc["totals"] == {} and doc["contingent"]["SEK"]["balance"] == 1000

    def test_collection_claim_counts_the_debt_once_when_its_creditor_names_it_back(self):
        loan = line(obligation_id="loan", external_ref="L1", balance=900, status="in_collection",
                    handed_to=("coll", "C1"))
        claim = line(obligation_id="claim", institution_id="coll", creditor_name="Coll", external_ref="C1",
                     kind="collection_claim", balance=1200, collects=("bank", "L1"))
        doc = compute_exposure([loan, claim], now=NOW)
        assert doc["totals"]["SEK"]["balance"] == 1200 and doc["totals"]["SEK"]["obligations"] == 1
        by_id = {ln["id"]: ln for ln in doc["obligations"]}
        assert by_id["loan"]["counted"] is False and by_id["loan"]["collected_by"] == "claim"
        assert by_id["claim"]["collects"] == "loan" and by_id["claim"]["collection_link"] == "confirmed"
        assert by_id["loan"]["collection_link"] is None

    def test_a_claim_its_target_does_not_name_back_counts_beside_it(self):
        loan = line(obligation_id="loan", external_ref="L1", balance=900, status="in_collection")
        claim = line(obligation_id="claim", institution_id="coll", creditor_name="Coll", external_ref="C1",
                     kind="collection_claim", balance=0, collects=("bank", "L1"))
        doc = compute_exposure([loan, claim], now=NOW)
        assert doc["totals"]["SEK"]["balance"] == 900 and doc["totals"]["SEK"]["obligations"] == 2
        by_id = {ln["id"]: ln for ln in doc["obligations"]}
        assert by_id["loan"]["counted"] is True and by_id["loan"]["collected_by"] is None
        assert by_id["claim"]["collects"] == "loan" and by_id["claim"]["collection_link"] == "unconfirmed"

    def test_a_loan_handed_to_another_claim_is_not_collected_by_this_one(self):
        loan = line(obligation_id="loan", external_ref="L1", balance=900, handed_to=("coll", "OTHER"))
        claim = line(obligation_id="claim", institution_id="coll", creditor_name="Coll", external_ref="C1",
                     kind="collection_claim", balance=0, collects=("bank", "L1"))
        doc = compute_exposure([loan, claim], now=NOW)
        assert doc["totals"]["SEK"]["balance"] == 900
        assert {ln["id"]: ln["collection_link"] for ln in doc["obligations"]}["claim"] == "unconfirmed"

    def test_a_line_naming_itself_both_ways_still_counts(self):
        claim = line(institution_id="coll", external_ref="C1", kind="collection_claim", balance=700,
                     collects=("coll", "C1"), handed_to=("coll", "C1"))
        doc = compute_exposure([claim], now=NOW)
        assert doc["totals"]["SEK"]["balance"] == 700 and doc["obligations"][0]["collection_link"] == "unconfirmed"

    def test_claim_on_an_unknown_loan_counts_alone(self):
        claim = line(kind="collection_claim", balance=1200, collects=("bank", "nope"))
        doc = compute_exposure([claim], now=NOW)
        assert doc["totals"]["SEK"]["balance"] == 1200
        assert doc["obligations"][0]["collects"] is None and doc["obligations"][0]["collection_link"] == "unconfirmed"

    def test_closed_is_not_exposure_but_the_person_sees_it(self):
        closed = line(status="closed", balance=0)
        assert compute_exposure([closed], now=NOW)["obligations"] == []
        mine = compute_exposure([closed], now=NOW, include_closed=True)
        assert mine["totals"] == {} and mine["obligations"][0]["counted"] is False

    def test_joint_and_stale_flags(self):
        doc = compute_exposure([line(own_debtors=2, as_of=NOW - timedelta(days=36))], now=NOW)
        assert doc["obligations"][0]["joint"] is True and doc["obligations"][0]["stale"] is True

    def test_currencies_are_kept_apart(self):
        doc = compute_exposure([line(), line(obligation_id="o2", external_ref="L2", currency="EUR", balance=7)],
                               now=NOW)
        assert doc["totals"]["SEK"]["balance"] == 1000 and doc["totals"]["EUR"]["balance"] == 7
