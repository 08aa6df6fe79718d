"""What the overview says, computed from the person's own view (`services.me.my_obligations`): pure."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from register.services import disputes
from register.web.labels import NEEDS_HELP

OWN_ROLES = frozenset({"primary", "co_debtor"})


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    balance: int
    monthly_payments: int
    overdue_amount: int
    unused_credit: int
    creditors: int


@dataclass(frozen=True)
class Overview:
    totals: list[CurrencyTotals]
    guaranteed: list[CurrencyTotals]  # other people's debts the person has guaranteed
    statuses: dict[str, int]  # status -> how many of the person's open debts have it
    collection_claims: int
    needs_help: bool
    stale: int
    disputed: int
    closed: int


def _totals(per_currency: dict[str, dict[str, int]]) -> list[CurrencyTotals]:
    return [CurrencyTotals(currency=cur, balance=t["balance"], monthly_payments=t["monthly_payments"],
                           overdue_amount=t["overdue_amount"], unused_credit=t["unused_credit"],
                           creditors=t["creditors"]) for cur, t in per_currency.items()]  # fmt: skip


def overview(doc: dict[str, Any]) -> Overview:
    lines = doc["obligations"]
    open_lines = [ln for ln in lines if ln["status"] != "closed"]
    # A loan a collector now holds is the collector's claim, counted once (as in the totals): the original
    # line, marked collected_by, does not add a second "with a debt collector".
    statuses = Counter(ln["status"] for ln in open_lines if ln["status"] != "current" and not ln.get("collected_by"))
    claims = sum(1 for ln in open_lines if ln["kind"] == "collection_claim")
    return Overview(
        totals=_totals(doc["totals"]), guaranteed=_totals(doc["contingent"]), statuses=dict(sorted(statuses.items())),
        collection_claims=claims,
        needs_help=claims > 0 or any(ln["status"] in NEEDS_HELP for ln in open_lines),
        stale=sum(1 for ln in open_lines if ln["stale"]), disputed=sum(1 for ln in lines if _own_dispute_open(ln)),
        closed=len(lines) - len(open_lines),
    )  # fmt: skip


@dataclass(frozen=True)
class HelpEntry:
    country: str
    name: str
    what: dict[str, str]
    url: str
    phone: str | None
    note: str | None
    checked: str  # when its facts were last looked at
    source: str  # the service's official page they are checked against
    # False until an operator has confirmed the phone number, address and description against `source`
    # (`unconfirmed` says what is missing; SPEC.md lists each entry's state). Only a confirmed entry's page
    # says "Checked on": an unconfirmed date would claim a check nobody made.
    confirmed: bool
    unconfirmed: str | None


@cache
def help_entries() -> tuple[HelpEntry, ...]:
    doc = json.loads((resources.files("register.web") / "help.json").read_text(encoding="utf-8"))
    return tuple(HelpEntry(country=e["country"], name=e["name"], what=e["what"], url=e["url"], phone=e["phone"],
                           note=e.get("note"), checked=e["checked"], source=e["source"], confirmed=e["confirmed"],
                           unconfirmed=e.get("unconfirmed")) for e in doc["entries"])  # fmt: skip


def help_for(country: str | None) -> tuple[list[HelpEntry], list[HelpEntry]]:
    """The person's own country's entries first, then the others."""
    entries = list(help_entries())
    return [e for e in entries if e.country == country], [e for e in entries if e.country != country]


def _own_dispute_open(line: dict[str, Any]) -> bool:
    """The person's own dispute of the line is open: a co-debtor's dispute sets `disputed` for everyone on
    the line, but "you have disputed" is said only to the one who did."""
    own = line.get("dispute")
    return bool(own) and own["state"] in disputes.PENDING


@dataclass(frozen=True)
class BanEnd:
    at: datetime
    lifted: bool  # the person asked to lift it (else: its own end date)


def ban_end(ban: dict[str, Any] | None) -> BanEnd | None:
    """When a credit ban in force ends, to be said once: at the time a lift takes effect, unless the ban's
    own end date comes first; None while it lasts until lifted."""
    if not ban or not ban.get("active"):
        return None
    lift, until = ban.get("lift_effective_at"), ban.get("until")
    if lift is not None and (until is None or lift < until):
        return BanEnd(at=lift, lifted=True)
    return BanEnd(at=until, lifted=False) if until is not None else None
