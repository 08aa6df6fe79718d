"""Report lines: a current line of a kind, and its emission (reference, arrears, consent, as_of, claim)."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable
from typing import Any

from register.population.arrears import claim_maker, fall_behind_maker
from register.population.figures import _COLLECTED, _CONSENT_CUM, _CONSENT_METHOD, _SECONDS, _TIMES
from register.population.market import Line
from register.population.run import Run

# (kind, original amount, balance, credit limit, monthly payment, rate in bp, debtors) -> a current line
DocOf = Callable[[str, int | None, int, int | None, int | None, int, list[dict[str, str]]], dict[str, Any]]
# (institution key, appetite, doc, opened_on ordinal, matures_on ordinal or None)
Emit = Callable[[str, int, dict[str, Any], int, int | None], None]


def doc_maker(run: Run) -> DocOf:
    """`doc_of(...)`: a current line of the run's currency; `emit` fills in the reference, the dates, the
    consent and as_of."""
    currency = run.currency

    def doc_of(kind: str, original: int | None, balance: int, limit: int | None, payment: int | None,
               rate_bp: int, debtors: list[dict[str, str]]) -> dict[str, Any]:  # fmt: skip
        """A current line; emit() fills in the reference, the dates, the consent and as_of."""
        return {
            "external_ref": "",
            "kind": kind,
            "currency": currency,
            "original_amount": original,
            "balance": balance,
            "credit_limit": limit,
            "monthly_payment": payment,
            "interest_rate_bp": rate_bp,
            "opened_on": None,
            "matures_on": None,
            "status": "current",
            "overdue_amount": 0,
            "days_past_due": 0,
            "original_creditor": None,
            "collects": None,
            "handed_to": None,
            "debtors": debtors,
            "registration_consent": None,
            "as_of": "",
        }

    return doc_of


def emitter(run: Run) -> Emit:
    """`emit(key, appetite, doc, opened_ord, matures_ord)`: the line, completed, appended to the run's lines
    (and a collector's claim after it if it went to one)."""
    rand, counters, prefixes, trouble_p = run.rand, run.counters, run.prefixes, run.trouble_p
    day_of, day, as_ofs, out = run.day_of, run.day, run.as_ofs, run.out
    n_as_ofs = len(as_ofs)
    fall_behind = fall_behind_maker(run)
    claim = claim_maker(run)

    def emit(key: str, appetite: int, doc: dict[str, Any], opened_ord: int, matures_ord: int | None) -> None:
        """Give the line its reference and (rarely) trouble, and append it, and a collector's claim."""
        n = counters[key] + 1
        counters[key] = n
        ref = doc["external_ref"] = f"{prefixes[key]}{n:08d}"
        if rand() < trouble_p[appetite][doc["kind"]] and (doc["monthly_payment"] != 0 or doc["credit_limit"]):
            opened_ord, matures_ord = fall_behind(doc, opened_ord, matures_ord)
        opened = doc["opened_on"] = day_of(opened_ord) or day(opened_ord)
        if matures_ord is not None:
            doc["matures_on"] = day_of(matures_ord) or day(matures_ord)
        secs = int(rand() * 50_400)
        doc["registration_consent"] = {
            "reference": f"AGR-{n:08d}",
            "given_at": opened + _TIMES[secs // 60] + _SECONDS[secs % 60],
            "method": _CONSENT_METHOD[bisect(_CONSENT_CUM, rand())],
        }
        doc["as_of"] = as_ofs[int(rand() * n_as_ofs)]
        out.append(Line(key, doc))
        if doc["status"] in _COLLECTED:
            claim(key, ref, doc, opened_ord)

    return emit
