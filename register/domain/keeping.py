"""What the register keeps about a person, and until when: the retention rules (`domain.retention`)
read forward, for the person's own view ("what we keep about you"). Pure.

An obligation that is live has no end yet: it is kept while it is reported. One that ended or was
retracted is kept until its period ends (`kept_until`); the next retention run after that moment
deletes it (SPEC.md, "Retention").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from register.domain.retention import Ended, Policy, Rule, rule_of


@dataclass(frozen=True, slots=True)
class Kept:
    """Under which rule an obligation is kept, and the moment its period ends."""

    rule: Rule
    since: datetime
    until: datetime


def kept_until(ob: Ended, policy: Policy) -> Kept | None:
    """When an ended or retracted obligation's period ends, under its country's rule; None while it is live."""
    found = rule_of(ob)
    if found is None:
        return None
    rule, since = found
    return Kept(rule=rule, since=since, until=since + timedelta(days=policy.days_for(rule, ob.country)))


def periods(policy: Policy, countries: list[str | None]) -> dict[Rule, dict[str, int]]:
    """Each rule's period in days, by the countries given (`"*"` for the default), the default first:
    what the person's page lists beside their own lines."""
    out: dict[Rule, dict[str, int]] = {}
    for rule in Rule:
        days = {"*": policy.days_for(rule)}
        for country in sorted(c for c in set(countries) if c is not None):
            if policy.days_for(rule, country) != days["*"]:
                days[country] = policy.days_for(rule, country)
        out[rule] = days
    return out
