"""Debts: which credits a person with debts has, by age, appetite and partner, made by the kind families
(loans.py, credit_lines.py, purchases.py)."""

from __future__ import annotations

from bisect import bisect

from register.population.credit_lines import credit_line_makers
from register.population.figures import (
    _BNPL,
    _CARDS,
    _JOINT_VEHICLE,
    _LOANS,
    _OVERDRAFT,
    _OWN_MORTGAGE,
    _REVOLVING,
    _STUDENT,
    _VEHICLE,
)
from register.population.lines import doc_maker, emitter
from register.population.loans import loan_makers
from register.population.persons import OwnCredits, Person, debtors_maker
from register.population.purchases import bnpl_maker
from register.population.run import Run


def credits_maker(run: Run) -> OwnCredits:
    """`own_credits(person, partner, joint_mortgage, is_co_debtor)`: the lines of a person with debts,
    appended to the run's lines."""
    rand, out = run.rand, run.out
    emit, doc_of = emitter(run), doc_maker(run)
    amortised, mortgage, vehicle, instalment, student = loan_makers(run, emit, doc_of, debtors_maker(run))
    card, account_credit, overdraft = credit_line_makers(run, emit, doc_of)
    bnpl = bnpl_maker(run, emit, doc_of, amortised)
    fallbacks = (card, instalment, bnpl, account_credit, overdraft)

    def own_credits(person: Person, partner: Person | None, joint_mortgage: bool, is_co_debtor: bool) -> None:
        """The credits of a person with debts. A couple's joint mortgage comes from its first person
        (`partner` is the second); `is_co_debtor`: this person is the second of such a couple."""
        age, band, appetite = person[1], person[2], person[4]
        if joint_mortgage:
            mortgage(person, partner)
        elif not is_co_debtor and 25 <= age <= 80 and rand() < _OWN_MORTGAGE:
            mortgage(person, None)
        if 20 <= age <= 80 and rand() < _VEHICLE[appetite]:
            vehicle(person, partner if partner is not None and rand() < _JOINT_VEHICLE else None)
        if rand() < _STUDENT[band]:
            student(person)
        for _ in range(bisect(_CARDS[appetite], rand())):
            card(person)
        for _ in range(bisect(_LOANS[appetite], rand())):
            instalment(person)
        n_bnpl = bisect(_BNPL[appetite], rand())
        if age < 50 or rand() < 0.5:
            for _ in range(n_bnpl):
                bnpl(person)
        if rand() < _REVOLVING[appetite]:
            account_credit(person)
        if rand() < _OVERDRAFT[appetite]:
            overdraft(person)
        if not out and not is_co_debtor:  # a person with debts has at least one (a card if reported)
            for maker in fallbacks:
                maker(person)
                if out:
                    break

    return own_credits
