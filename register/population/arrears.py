"""Arrears: a credit that falls behind (overdue, payment plan, enforcement, with a collector), and the
collector's claim that collects it."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable
from typing import Any

from register.population.figures import (
    _CLAIM_CUM,
    _CLAIM_STATUS,
    _COLLECTED,
    _MIN_OPEN_BACK,
    _NOT_SOLD,
    _TERMINATED_DPD,
    _TROUBLE_CUM,
    _TROUBLE_STATUS,
)
from register.population.market import Line
from register.population.run import Run

FallBehind = Callable[[dict[str, Any], int, int | None], tuple[int, int | None]]
Claim = Callable[[str, str, dict[str, Any], int], None]


def fall_behind_maker(run: Run) -> FallBehind:
    """`fall_behind(doc, opened_ord, matures_ord)`: the line's status, balance, payment and arrears once it has
    fallen behind; returns its dates, moved back if it was drawn too young to be that late."""
    rand, whole, has_collector, asof_ord = run.rand, run.whole, run.has_collector, run.asof_ord
    small_debt = run.money(1000, 100)  # a troubled credit owes at least this

    def fall_behind(doc: dict[str, Any], opened_ord: int, matures_ord: int | None) -> tuple[int, int | None]:
        status = _TROUBLE_STATUS[bisect(_TROUBLE_CUM, rand())]
        kind, limit = doc["kind"], doc["credit_limit"]
        if status in _COLLECTED and (kind in _NOT_SOLD or not has_collector):
            status = "overdue" if kind == "mortgage" else "enforcement"
        balance, payment = doc["balance"], doc["monthly_payment"]
        if limit is not None:  # troubled revolving credit is (nearly) maxed out
            balance = max(balance, int(limit * (0.85 + 0.20 * rand())))
            if payment is not None:
                payment = max(payment, min(balance, whole(balance * 0.03)))
        if balance <= 0:
            balance = min(doc["original_amount"] or small_debt, small_debt)
        dpd = overdue = 0
        if status == "overdue":
            r = rand()
            dpd = 30 + int(rand() * 30) if r < 0.5 else 60 + int(rand() * 30) if r < 0.75 else 90 + int(rand() * 91)
            overdue = min(balance, (payment or whole(balance * 0.05)) * -(-dpd // 30))
        elif status == "payment_plan":
            if payment:
                payment = whole(payment * (0.5 + 0.3 * rand()))
        else:  # in_collection, written_off, enforcement: terminated, the whole balance is due
            low, span = _TERMINATED_DPD[status]
            dpd = low + int(rand() * span)
            overdue = balance
            if payment is not None:
                payment = 0
        # A credit falls behind only after its first payment was due: a young one is older than drawn.
        late = dpd + 30 - (asof_ord - opened_ord)
        if late > 0:
            opened_ord -= late
            if matures_ord is not None:
                matures_ord -= late
        doc["status"], doc["balance"], doc["monthly_payment"] = status, balance, payment
        doc["overdue_amount"], doc["days_past_due"] = overdue, dpd
        return opened_ord, matures_ord

    return fall_behind


def claim_maker(run: Run) -> Claim:
    """`claim(lender_key, lender_ref, collected, opened_ord)`: a collector's claim on the collected line, which
    names the claim back in its `handed_to`; appended to the run's lines."""
    rand, whole, collectors, counters, prefixes = run.rand, run.whole, run.collectors, run.counters, run.prefixes
    names, currency, late_bp, asof_ord = run.names, run.currency, run.late_bp, run.asof_ord
    day_of, day, as_ofs, out = run.day_of, run.day, run.as_ofs, run.out
    n_as_ofs = len(as_ofs)
    collection_fee = run.money(240, 10)  # reminder and collection fees on a claim

    def claim(lender_key: str, lender_ref: str, collected: dict[str, Any], opened_ord: int) -> None:
        keys, cum = collectors
        key = keys[bisect(cum, rand())] if cum else keys[0]
        n = counters[key] + 1
        counters[key] = n
        status = _CLAIM_STATUS[bisect(_CLAIM_CUM, rand())]
        claim_ref = f"{prefixes[key]}{n:08d}"
        collected["handed_to"] = {"institution_id": key, "external_ref": claim_ref}  # the lender names it back
        handed_over = collected["balance"]
        balance = int(handed_over * (1.02 + 0.13 * rand())) + collection_fee  # interest and fees
        dpd = collected["days_past_due"]
        opened = max(opened_ord + 30, asof_ord - max(_MIN_OPEN_BACK, dpd - 60))
        if status == "payment_plan":
            payment, overdue, claim_dpd = whole(balance / (6 + int(rand() * 55))), 0, 0
        else:
            payment, overdue, claim_dpd = None, balance, dpd
        out.append(Line(key, {
            "external_ref": claim_ref,
            "kind": "collection_claim",
            "currency": currency,
            "original_amount": handed_over,
            "balance": balance,
            "credit_limit": None,
            "monthly_payment": payment,
            "interest_rate_bp": late_bp,
            "opened_on": day_of(opened) or day(opened),
            "matures_on": None,
            "status": status,
            "overdue_amount": overdue,
            "days_past_due": claim_dpd,
            "original_creditor": names[lender_key],
            "collects": {"institution_id": lender_key, "external_ref": lender_ref},
            "handed_to": None,
            "debtors": [dict(d) for d in collected["debtors"]],
            "registration_consent": dict(collected["registration_consent"]),
            "as_of": as_ofs[int(rand() * n_as_ofs)],
        }))  # fmt: skip

    return claim
