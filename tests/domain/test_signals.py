"""The signals' pure rules: the 24-hour window, the ban's interval, the follow-up threshold, `since`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from register.domain import signals as rules
from register.domain.signals import Lookup
from register.errors import InvalidInput

T0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def at(hours: float, asker: str, n: int) -> Lookup:
    return Lookup(at=T0 + timedelta(hours=hours), asker=asker, event_id=f"e{n}")


class TestManyLenders:
    def test_three_lenders_within_a_day_across_a_month_end(self):
        found = rules.many_lenders([at(0, "a", 1), at(5, "b", 2), at(23.9, "c", 3), at(40, "d", 4)])
        assert found == (T0 + timedelta(hours=23.9), ["e1", "e2", "e3"])

    def test_exactly_24_hours_apart_is_not_one_window(self):
        assert rules.many_lenders([at(0, "a", 1), at(1, "b", 2), at(24, "c", 3)]) is None

    def test_one_lender_many_times_is_one_lender(self):
        assert rules.many_lenders([at(h, "a", h) for h in range(10)] + [at(1, "b", 99)]) is None


class TestBan:
    def test_in_force_between_since_and_the_lift(self):
        since, lift = T0, T0 + timedelta(hours=2)
        assert rules.ban_in_force(T0 + timedelta(hours=1), since, None, lift)
        assert not rules.ban_in_force(lift, since, None, lift)
        assert not rules.ban_in_force(T0 - timedelta(seconds=1), since, None, None)
        assert not rules.ban_in_force(T0 + timedelta(days=2), since, T0 + timedelta(days=1), None)


class TestThresholds:
    @pytest.mark.parametrize(("without", "decided", "raised"), [(20, 40, True), (19, 19, False), (20, 41, False)])
    def test_at_least_20_and_half(self, without, decided, raised):
        assert rules.harvesting(without, decided) is raised

    def test_since_defaults_and_bounds(self):
        assert rules.check_since(None, T0) == T0 - timedelta(days=30)
        assert rules.check_since(T0 - timedelta(days=90), T0) == T0 - timedelta(days=90)
        for bad in (T0 - timedelta(days=90, seconds=1), T0 + timedelta(seconds=1)):
            with pytest.raises(InvalidInput):
                rules.check_since(bad, T0)
