"""Buy now, pay later: invoices due in 30 days, purchases split in 3 months, and part payment."""

from __future__ import annotations

from collections.abc import Callable

from register.population.figures import _LN_BNPL, _MIN_OPEN_BACK, _MONTH
from register.population.lines import DocOf, Emit
from register.population.loans import Amortised
from register.population.persons import Person
from register.population.run import Run



def bnpl_maker(run: Run, emit: Emit, doc_of: DocOf, amortised: Amortised) -> Callable[[Person], None]:
    """`bnpl(person)`: one purchase, emitted (none when no lender reports buy now, pay later)."""
    rand, lognorm, lender, rate = run.rand, run.lognorm, run.lender, run.rate
    country, unit, factor, asof_ord = run.country, run.unit, run.factor, run.asof_ord

    def bnpl(person: Person) -> None:
        key = lender("buy_now_pay_later")
        if key is None:
            return
        nid, appetite = person[0], person[4]
        sek = min(25_000.0, max(99.0, lognorm(_LN_BNPL, 0.9)))
        amount = max(unit, round(sek * factor) * unit)
        debtors = [{"country": country, "national_id": nid, "role": "primary"}]
        r = rand()
        if r < 0.55:  # an invoice, due in 30 days
            opened_ord = asof_ord - _MIN_OPEN_BACK - int(rand() * 26)
            emit(key, appetite, doc_of("buy_now_pay_later", amount, amount, None, amount, 0, debtors),
                 opened_ord, opened_ord + 30)
        elif r < 0.80 or sek < 1500:  # split in 3 monthly payments, interest-free
            back = _MIN_OPEN_BACK + int(rand() * 85)
            pay = -(-amount // 3)
            balance = amount - pay * min(2, int(back / _MONTH))
            opened_ord = asof_ord - back
            emit(key, appetite, doc_of("buy_now_pay_later", amount, balance, None, pay, 0, debtors),
                 opened_ord, opened_ord + round(3 * _MONTH))
        else:  # part payment
            term = (12, 24, 36)[int(rand() * 3)]
            amortised(key, "buy_now_pay_later", amount, rate(1990, 2490), term, 3650.0, debtors, appetite)

    return bnpl
