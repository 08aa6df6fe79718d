"""The retention rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from register.domain.retention import Ended, Policy, Rule, due, parse_by_country, rule_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = {Rule.ended: 98, Rule.ended_arrears: 365, Rule.retracted: 30, Rule.claim_closed: 365,
        Rule.exposure_answer: 365, Rule.access_event: 1825, Rule.report_file: 14}


def ended(**kw) -> Ended:  # noqa: ANN003
    base = {"kind": "instalment_loan", "status": "closed", "updated_at": T0, "retracted_at": None,
            "had_arrears": False, "country": "SE"}
    return Ended(**{**base, **kw})


class TestRuleOf:
    def test_a_live_line_has_no_rule(self):
        assert rule_of(ended(status="overdue")) is None

    @pytest.mark.parametrize(("kw", "rule"), [
        ({}, Rule.ended),
        ({"had_arrears": True}, Rule.ended_arrears),
        ({"kind": "collection_claim", "had_arrears": True}, Rule.claim_closed),
        ({"status": "current", "retracted_at": T0}, Rule.retracted),
        ({"retracted_at": T0, "kind": "collection_claim"}, Rule.retracted),  # never true: retraction first
    ])  # fmt: skip
    def test_each_case(self, kw, rule):  # noqa: ANN001
        assert rule_of(ended(**kw)) == (rule, T0)


class TestDue:
    def test_after_its_period_and_not_before(self):
        policy = Policy(days=DAYS)
        assert due(ended(), policy, T0 + timedelta(days=98)) is None
        assert due(ended(), policy, T0 + timedelta(days=98, seconds=1)) is Rule.ended

    def test_a_country_of_its_own(self):
        policy = Policy(days=DAYS, by_country={"NO": {Rule.ended: 0}})
        assert due(ended(country="NO"), policy, T0 + timedelta(seconds=1)) is Rule.ended
        assert due(ended(country="SE"), policy, T0 + timedelta(seconds=1)) is None
        assert policy.latest_cutoff((Rule.ended,), T0) == T0
        assert policy.earliest_cutoff(Rule.ended, T0) == T0 - timedelta(days=98)

    def test_bad_overrides_are_named(self):
        with pytest.raises(ValueError, match="no retention rule 'forever'"):
            parse_by_country({"NO": {"forever": 1}})
        with pytest.raises(ValueError, match="not a country code"):
            parse_by_country({"norway": {"ended": 1}})
        with pytest.raises(ValueError, match="0 or more"):
            parse_by_country({"NO": {"ended": -1}})
        assert parse_by_country({"NO": {"ENDED": 0}}) == {"NO": {Rule.ended: 0}}
