"""Loans repaid by annuity: mortgages, vehicle loans, unsecured instalment loans, and student loans."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from register.population.figures import (
    _INSTALMENT_YEARS,
    _LN_INSTALMENT,
    _LN_MORTGAGE,
    _LN_STUDENT,
    _LN_VEHICLE,
    _LOAN_RATE,
    _MIN_OPEN_BACK,
    _MONTH,
    _MORTGAGE_YEARS,
    _YEAR,
)
from register.population.lines import DocOf, Emit
from register.population.persons import LoanDebtors, Person
from register.population.run import Run

# (key, kind, principal, rate in bp, term in months, at most this many days ago, debtors, appetite)
Amortised = Callable[[str, str, int, int, int, float, list[dict[str, str]], int], None]


class LoanMakers(NamedTuple):
    amortised: Amortised
    mortgage: Callable[[Person, Person | None], None]
    vehicle: Callable[[Person, Person | None], None]
    instalment: Callable[[Person], None]
    student: Callable[[Person], None]


def annuity(principal: int, rate_bp: int, months: int) -> float:
    r = rate_bp / 120_000
    if r == 0:
        return principal / months
    return principal * r / (1 - (1 + r) ** -months)


def remaining(principal: int, rate_bp: int, months: int, paid: int, payment: float) -> int:
    if paid >= months:
        return 0
    r = rate_bp / 120_000
    if r == 0:
        return round(principal * (months - paid) / months)
    f = (1 + r) ** paid
    return max(0, round(principal * f - payment * (f - 1) / r))


def loan_makers(run: Run, emit: Emit, doc_of: DocOf, loan_debtors: LoanDebtors) -> LoanMakers:
    """The makers of a person's loans; each emits its line (none when no lender reports the kind)."""
    rand, lognorm, lender, money, whole, rate = run.rand, run.lognorm, run.lender, run.money, run.whole, run.rate
    country, unit, shift, asof_ord, open_max = run.country, run.unit, run.shift, run.asof_ord, run.open_max

    def amortised(key: str, kind: str, principal: int, rate_bp: int, term: int, back_max: float,
                  debtors: list[dict[str, str]], appetite: int) -> None:  # fmt: skip
        """A loan repaid by annuity, opened 0..term months ago (at most back_max days)."""
        back = _MIN_OPEN_BACK + int(rand() * min(term * _MONTH, back_max))
        opened_ord = asof_ord - back
        pay = annuity(principal, rate_bp, term)
        balance = remaining(principal, rate_bp, term, int(back / _MONTH), pay)
        payment = whole(pay)
        if balance <= 0:
            balance = min(principal, payment)
        doc = doc_of(kind, principal, balance, None, payment, rate_bp, debtors)
        emit(key, appetite, doc, opened_ord, opened_ord + round(term * _MONTH))

    def mortgage(person: Person, partner: Person | None) -> None:
        key = lender("mortgage")
        if key is None:
            return
        age = person[1] if partner is None else min(person[1], partner[1])
        principal = money(min(1.2e7, max(3e5, lognorm(_LN_MORTGAGE, 0.5))), 10_000)
        term = 12 * _MORTGAGE_YEARS[int(rand() * len(_MORTGAGE_YEARS))]
        debtors = loan_debtors(person[0], partner[0] if partner else None, age)
        appetite = max(person[4], partner[4]) if partner else person[4]
        amortised(key, "mortgage", principal, rate(250, 550), term, max(30.0, (age - 22) * _YEAR), debtors, appetite)

    def vehicle(person: Person, partner: Person | None) -> None:
        key = lender("vehicle_loan")
        if key is None:
            return
        age = person[1]
        principal = money(min(1.2e6, max(5e4, lognorm(_LN_VEHICLE, 0.4))), 1000)
        term = 12 * (3 + int(rand() * 5))
        debtors = loan_debtors(person[0], partner[0] if partner else None, age)
        appetite = max(person[4], partner[4]) if partner else person[4]
        amortised(key, "vehicle_loan", principal, rate(390, 990), term, (age - 18) * _YEAR + 30, debtors, appetite)

    def instalment(person: Person) -> None:
        key = lender("instalment_loan")
        if key is None:
            return
        nid, age, _, _, appetite = person
        sek = min(6e5, max(5e3, lognorm(_LN_INSTALMENT, 0.8)))
        principal = money(sek, 5000 if sek >= 1e5 else 1000)
        low, high = (0, 4) if sek < 3e4 else (2, 6) if sek < 1.5e5 else (3, 8)
        term = 12 * _INSTALMENT_YEARS[low + int(rand() * (high - low))]
        low_bp, high_bp = _LOAN_RATE[appetite]
        debtors = loan_debtors(nid, None, age)
        amortised(key, "instalment_loan", principal, rate(low_bp, high_bp), term, (age - 18) * _YEAR + 30, debtors,
                  appetite)  # fmt: skip

    def student(person: Person) -> None:
        key = lender("student_loan")
        if key is None:
            return
        nid, age, _, _, appetite = person
        principal = money(min(6e5, max(2e4, lognorm(_LN_STUDENT, 0.5))), 1000)
        start_age = min(age, 19 + int(rand() * 4))
        opened_ord = min(open_max, asof_ord - int((age - start_age + rand()) * _YEAR))
        study_days = int((3 + int(rand() * 3)) * _YEAR)
        repay_ord = opened_ord + study_days + 183
        term = 300
        rate_bp = max(0, rate(100, 250) - shift + shift // 4)  # follows the state's rate, not the market's
        pay = annuity(principal, rate_bp, term)
        if asof_ord < repay_ord:  # still studying: drawn so far, nothing to pay yet
            balance = max(unit, int(principal * min(1.0, max(0.1, (asof_ord - opened_ord) / study_days))))
            payment = 0
        else:
            balance = remaining(principal, rate_bp, term, int((asof_ord - repay_ord) / _MONTH), pay)
            if balance <= 0:
                return  # repaid
            payment = whole(pay)
        doc = doc_of("student_loan", principal, balance, None, payment, rate_bp,
                     [{"country": country, "national_id": nid, "role": "primary"}])
        emit(key, appetite, doc, opened_ord, repay_ord + round(term * _MONTH))

    return LoanMakers(amortised, mortgage, vehicle, instalment, student)
