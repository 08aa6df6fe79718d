"""Credit lines with a limit: credit cards, revolving (account) credit and overdrafts."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable
from typing import NamedTuple

from register.population.figures import _CARD_LIMIT_CUM, _CARD_LIMITS, _LN_REVOLVING, _OVERDRAFT_LIMITS, _YEAR
from register.population.lines import DocOf, Emit
from register.population.persons import Person
from register.population.run import Run



class CreditLineMakers(NamedTuple):
    card: Callable[[Person], None]
    account_credit: Callable[[Person], None]
    overdraft: Callable[[Person], None]


def credit_line_makers(run: Run, emit: Emit, doc_of: DocOf) -> CreditLineMakers:
    """The makers of a person's credit lines; each emits its line (none when no lender reports the kind)."""
    rand, lognorm, lender, money, whole, rate = run.rand, run.lognorm, run.lender, run.money, run.whole, run.rate
    country, unit, open_max = run.country, run.unit, run.open_max
    card_min_pay, credit_min_pay = money(200, 10), money(300, 10)  # minimum monthly payments

    def revolving(key: str, kind: str, person: Person, limit: int, used: float, rate_bp: int,
                  pay_share: float, min_pay: int) -> None:  # fmt: skip
        """A credit line; pay_share 0 means no fixed monthly payment (an overdraft)."""
        nid, age = person[0], person[1]
        opened_ord = open_max - int(rand() * min(20, age - 17) * _YEAR)
        balance = min(limit, int(limit * used) // unit * unit + int(rand() * unit)) if used else 0
        payment = None
        if pay_share:
            payment = min(balance, max(min_pay, whole(balance * pay_share))) if balance else 0
        doc = doc_of(kind, None, balance, limit, payment, rate_bp,
                     [{"country": country, "national_id": nid, "role": "primary"}])
        emit(key, person[4], doc, opened_ord, None)

    def card(person: Person) -> None:
        key = lender("credit_card")
        if key is None:
            return
        limit = money(_CARD_LIMITS[bisect(_CARD_LIMIT_CUM, rand())], 1000)
        used = 0.0 if rand() < 0.40 else min(1.0, rand() ** (1.6 - 0.4 * person[4]))
        revolving(key, "credit_card", person, limit, used, rate(1490, 2490), 0.03, card_min_pay)

    def account_credit(person: Person) -> None:
        key = lender("revolving_credit")
        if key is None:
            return
        limit = money(min(3e5, max(1e4, lognorm(_LN_REVOLVING, 0.6))), 5000)
        revolving(key, "revolving_credit", person, limit, 0.3 + 0.7 * rand(), rate(890, 1990), 0.02, credit_min_pay)

    def overdraft(person: Person) -> None:
        key = lender("overdraft")
        if key is None:
            return
        limit = money(_OVERDRAFT_LIMITS[int(rand() * len(_OVERDRAFT_LIMITS))], 1000)
        used = rand() if rand() < 0.7 else 0.0
        revolving(key, "overdraft", person, limit, used, rate(900, 1500), 0.0, 0)

    return CreditLineMakers(card, account_credit, overdraft)
