"""Exposure: everything a lender needs for a responsible decision about one person, computed from the
lines of debt that name that person. Pure: no storage, no I/O.

Rules:
- Own debt is where the person is primary or co-debtor; a joint debt (more than one such debtor) counts
  in full for each of them, flagged `joint`. Guarantees are contingent and counted apart.
- Closed (repaid) and retracted obligations are not exposure.
- A collection claim that `collects` another line of the same person counts that debt once, at the claim's
  amount, only when the link is confirmed: that line's creditor names the claim back in `handed_to`. Both
  lines are shown, linked; the collected line has `counted: false`. Until then both lines count and the
  claim says `collection_link: "unconfirmed"`, so no institution's report lowers what another reported.
- Revolving credit counts with its limit: `unused_credit` = limit - balance (never below zero).
- A line is `stale` when its `as_of` is more than 35 days old.
- A line is `disputed` while a dispute on it is open; it is still counted (the creditor has not agreed
  yet), and the lender sees the flag. An upheld dispute's statement by this person goes with the line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from register.domain.obligation import CollectionLink, collection_link

STALE_AFTER = timedelta(days=35)
OWN_ROLES = frozenset({"primary", "co_debtor"})
REVOLVING = frozenset({"credit_card", "revolving_credit", "overdraft"})


@dataclass(frozen=True, slots=True)
class Line:
    """One obligation naming the person, as the exposure sees it."""

    obligation_id: str
    institution_id: str
    creditor_name: str
    external_ref: str
    kind: str
    role: str  # this person's role
    own_debtors: int  # how many primary/co-debtors the obligation has
    currency: str
    balance: int
    credit_limit: int | None
    monthly_payment: int | None
    overdue_amount: int
    days_past_due: int
    status: str
    as_of: datetime
    collects: tuple[str, str] | None = None  # (institution_id, external_ref)
    handed_to: tuple[str, str] | None = None  # (institution_id, external_ref) of the claim holding it now
    disputed: bool = False  # an open (or overdue) dispute on the line, by any of its debtors
    statement: str | None = None  # this person's statement on the line after an upheld dispute


@dataclass
class Totals:
    balance: int = 0
    credit_limit: int = 0
    unused_credit: int = 0
    monthly_payments: int = 0
    overdue_amount: int = 0
    obligations: int = 0
    creditors: set[str] = field(default_factory=set)

    def add(self, line: Line) -> None:
        self.balance += line.balance
        if line.kind in REVOLVING and line.credit_limit is not None:
            self.credit_limit += line.credit_limit
            self.unused_credit += max(line.credit_limit - line.balance, 0)
        self.monthly_payments += line.monthly_payment or 0
        self.overdue_amount += line.overdue_amount
        self.obligations += 1
        self.creditors.add(line.institution_id)

    def as_dict(self) -> dict[str, int]:
        return {
            "balance": self.balance, "credit_limit": self.credit_limit, "unused_credit": self.unused_credit,
            "monthly_payments": self.monthly_payments, "overdue_amount": self.overdue_amount,
            "obligations": self.obligations, "creditors": len(self.creditors),
        }  # fmt: skip


def _per_currency(groups: dict[str, Totals]) -> dict[str, dict[str, int]]:
    return {cur: t.as_dict() for cur, t in sorted(groups.items())}


def compute_exposure(lines: list[Line], *, now: datetime, include_closed: bool = False) -> dict[str, Any]:
    """Totals, by kind, contingent liabilities, collections and annotated lines. With `include_closed`
    (the person's own view) closed lines are listed too, never counted."""
    active = [ln for ln in lines if ln.status != "closed"]
    closed = [ln for ln in lines if ln.status == "closed"] if include_closed else []
    by_ref = {(ln.institution_id, ln.external_ref): ln for ln in lines}
    links: dict[str, CollectionLink | None] = {}
    collected_by: dict[str, str] = {}
    for ln in lines:
        target = by_ref.get(ln.collects) if ln.collects else None
        link = collection_link((ln.institution_id, ln.external_ref), ln.collects, target.handed_to if target else None)
        links[ln.obligation_id] = link
        # A confirmed claim, still open, counts an open collected line's debt instead of it.
        if link is CollectionLink.confirmed and target is not None and "closed" not in (ln.status, target.status):
            collected_by[target.obligation_id] = ln.obligation_id
    shown = {ln.obligation_id for ln in active + closed}

    totals: dict[str, Totals] = defaultdict(Totals)
    by_kind: dict[str, dict[str, Totals]] = defaultdict(lambda: defaultdict(Totals))
    contingent: dict[str, Totals] = defaultdict(Totals)
    collections_count = 0
    collections_amount: dict[str, int] = defaultdict(int)
    out_lines: list[dict[str, Any]] = []

    for ln in sorted(active + closed, key=lambda x: (x.status == "closed", x.role not in OWN_ROLES, x.kind,
                                                       x.creditor_name, x.obligation_id)):
        counted = ln.obligation_id not in collected_by and ln.status != "closed"
        if counted:
            if ln.role in OWN_ROLES:
                totals[ln.currency].add(ln)
                by_kind[ln.kind][ln.currency].add(ln)
                if ln.kind == "collection_claim":
                    collections_count += 1
                    collections_amount[ln.currency] += ln.balance
            else:
                contingent[ln.currency].add(ln)
        target = by_ref.get(ln.collects) if ln.collects else None
        collects_id = target.obligation_id if target is not None and target.obligation_id in shown else None
        link = links[ln.obligation_id]
        out_lines.append({
            "id": ln.obligation_id,
            "creditor": {"id": ln.institution_id, "name": ln.creditor_name},
            "kind": ln.kind,
            "role": ln.role,
            "joint": ln.own_debtors > 1,
            "currency": ln.currency,
            "balance": ln.balance,
            "credit_limit": ln.credit_limit,
            "monthly_payment": ln.monthly_payment,
            "overdue_amount": ln.overdue_amount,
            "status": ln.status,
            "days_past_due": ln.days_past_due,
            "as_of": ln.as_of,
            "stale": now - ln.as_of > STALE_AFTER,
            "disputed": ln.disputed,
            "statement": ln.statement,
            "counted": counted,
            "collects": collects_id,
            "collected_by": collected_by.get(ln.obligation_id),
            "collection_link": link.value if link is not None else None,
        })  # fmt: skip

    return {
        "totals": _per_currency(totals),
        "by_kind": {kind: _per_currency(groups) for kind, groups in sorted(by_kind.items())},
        "contingent": _per_currency(contingent),
        "collections": {"count": collections_count, "amount": dict(sorted(collections_amount.items()))},
        "obligations": out_lines,
    }
