"""Retention: which rule keeps a thing, for how long, and whether it is due for deletion. Pure.

The register forgets on a schedule (SPEC.md, "Retention"). An obligation that ended or was retracted
falls under one rule; its period runs from the moment it ended (its last change: `updated_at` of a closed
line) or was retracted (`retracted_at`). Stored exposure answers, uploaded report files and access events
have rules of their own. A period can differ per country: the reporting institution's country.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Rule(StrEnum):
    """One retention case; its setting is `REGISTER_RETENTION_<RULE>_DAYS` (`REGISTER_REPORT_FILE_DAYS`)."""

    ended = "ended"  # closed (repaid) with no arrears in its history
    ended_arrears = "ended_arrears"  # closed after arrears
    retracted = "retracted"  # retracted as reported in error (or left out of a snapshot report)
    claim_closed = "claim_closed"  # a collection claim, closed
    exposure_answer = "exposure_answer"  # a stored exposure answer
    access_event = "access_event"  # an access event (pseudonymised after it, see SPEC)
    report_file = "report_file"  # an uploaded report file, once processed


OBLIGATION_RULES = (Rule.ended, Rule.ended_arrears, Rule.retracted, Rule.claim_closed)
# A version in one of these states, or with an overdue amount or days past due, is arrears in the history.
ARREARS_STATUSES = frozenset({"overdue", "in_collection", "enforcement", "payment_plan", "written_off"})


@dataclass(frozen=True, slots=True)
class Ended:
    """What the rules need of one obligation."""

    kind: str
    status: str
    updated_at: datetime
    retracted_at: datetime | None
    had_arrears: bool
    country: str | None  # the reporting institution's


def rule_of(ob: Ended) -> tuple[Rule, datetime] | None:
    """The rule an obligation falls under and the moment its period starts, or None while it is live.
    A retraction counts first (the line was never true); then a closed collection claim; then how it ended."""
    if ob.retracted_at is not None:
        return Rule.retracted, ob.retracted_at
    if ob.status != "closed":
        return None
    if ob.kind == "collection_claim":
        return Rule.claim_closed, ob.updated_at
    return (Rule.ended_arrears if ob.had_arrears else Rule.ended), ob.updated_at


@dataclass(frozen=True)
class Policy:
    """Days kept per rule, with per-country overrides (country code -> rule -> days)."""

    days: Mapping[Rule, int]
    by_country: Mapping[str, Mapping[Rule, int]] = field(default_factory=dict)
    # The feed's events (REGISTER_EVENT_FEED_DAYS) and finished webhook deliveries: kept this many days,
    # the same in every country (they name no person).
    event_feed_days: int = 30
    webhook_delivery_days: int = 30

    def days_for(self, rule: Rule, country: str | None = None) -> int:
        if country is not None and rule in self.by_country.get(country, {}):
            return self.by_country[country][rule]
        return self.days[rule]

    def cutoff(self, rule: Rule, now: datetime, country: str | None = None) -> datetime:
        """Things of this rule that started before this moment are due."""
        return now - timedelta(days=self.days_for(rule, country))

    def latest_cutoff(self, rules: tuple[Rule, ...], now: datetime) -> datetime:
        """The latest cutoff of any of these rules in any country: nothing that started after it is due,
        so storage reads only what started before it."""
        days = [self.days[r] for r in rules] + [d for c in self.by_country.values() for r, d in c.items() if r in rules]
        return now - timedelta(days=min(days))

    def earliest_cutoff(self, rule: Rule, now: datetime) -> datetime:
        """The cutoff of the country that keeps `rule` longest."""
        days = [self.days[rule]] + [c[rule] for c in self.by_country.values() if rule in c]
        return now - timedelta(days=max(days))


def due(ob: Ended, policy: Policy, now: datetime) -> Rule | None:
    """The rule under which this obligation is due for deletion at `now`, or None."""
    found = rule_of(ob)
    if found is None:
        return None
    rule, since = found
    return rule if since < policy.cutoff(rule, now, ob.country) else None


def parse_by_country(raw: Mapping[str, Mapping[str, int]]) -> dict[str, dict[Rule, int]]:
    """`{"NO": {"ended": 0}}` as typed overrides; an unknown rule or a negative period is an error."""
    out: dict[str, dict[Rule, int]] = {}
    for country, rules in raw.items():
        if len(country) != 2 or not country.isalpha() or not country.isupper():
            raise ValueError(f"not a country code: {country!r}")
        out[country] = {}
        for name, days in rules.items():
            try:
                rule = Rule(name.lower())
            except ValueError:
                raise ValueError(f"{country}: no retention rule {name!r}; rules: {', '.join(Rule)}") from None
            if not isinstance(days, int) or days < 0:
                raise ValueError(f"{country}.{name}: days must be a whole number, 0 or more")
            out[country][rule] = days
    return out
