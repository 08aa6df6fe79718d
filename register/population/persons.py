"""Persons: adults one at a time with unique identity numbers, couples, and guarantors among recent persons.

A person is a list `[national id, age, age band, has debts, appetite (0-2, -1 without debts)]`.
"""

from __future__ import annotations

import zlib
from bisect import bisect
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from register.domain.identity import generate_national_id
from register.population.figures import (
    _AGE_BANDS,
    _AGE_CUM,
    _AGE_STARTS,
    _APPETITE_CUM,
    _COUPLE,
    _GUARANTEE,
    _GUARANTEE_YOUNG,
    _HAS_DEBT,
    _JOINT_MORTGAGE,
    _RECENT,
    _YEAR,
)
from register.population.market import Line
from register.population.run import Run

Person = list[Any]
LoanDebtors = Callable[[str, str | None, int], list[dict[str, str]]]  # (primary, co-debtor, age) -> debtors
# (person, partner with debts or None, joint mortgage, is the co-debtor of its partner's joint mortgage)
OwnCredits = Callable[[Person, Person | None, bool, bool], None]


def person_maker(run: Run, persons: int) -> Callable[..., Person]:
    """`new_person(age=0)`: the next person (of that age, else of an age drawn by band), with an identity
    number unique within the run: a bitmap of 2^k >= 32 * persons bits over crc32 (a hit may be a false
    positive, at most one in 32; drawing again keeps every number distinct)."""
    rng, rand, country, asof_ord = run.rng, run.rand, run.country, run.asof_ord
    bits = 1 << max(16, min(32, (32 * max(persons, 1) - 1).bit_length()))
    seen = bytearray(bits >> 3)
    mask = bits - 1
    crc32 = zlib.crc32

    def new_person(age: int = 0) -> Person:
        """[national id, age, age band, has debts, appetite (0-2, -1 without debts)]"""
        if age:
            band = bisect(_AGE_STARTS, age) - 1
        else:
            band = bisect(_AGE_CUM, rand())
            lo, hi = _AGE_BANDS[band]
            age = lo + int(rand() * (hi - lo + 1))
        has_debt = rand() < _HAS_DEBT[band]
        appetite = bisect(_APPETITE_CUM, rand()) if has_debt else -1
        while True:
            born = date.fromordinal(asof_ord - int((age + rand()) * _YEAR))
            for _ in range(20):
                nid = generate_national_id(country, rng, birth_date=born)
                h = crc32(nid.encode()) & mask
                byte, bit = h >> 3, 1 << (h & 7)
                if not seen[byte] & bit:
                    seen[byte] |= bit
                    return [nid, age, band, has_debt, appetite]

    return new_person


def debtors_maker(run: Run) -> LoanDebtors:
    """`loan_debtors(primary, co, age)`: a loan's debtors, the primary, a co-debtor if any and (sometimes)
    a guarantor among the recent persons: a parent (45+) for a borrower under 30, else any other adult."""
    rand, country, recent = run.rand, run.country, run.recent

    def guarantor(primary_age: int, exclude: tuple[str, ...]) -> str | None:
        for _ in range(8 if recent else 0):
            nid, age = recent[int(rand() * len(recent))]
            if nid not in exclude and (primary_age >= 30 or age >= 45):
                return nid
        return None

    def loan_debtors(primary: str, co: str | None, age: int) -> list[dict[str, str]]:
        ds = [{"country": country, "national_id": primary, "role": "primary"}]
        if co is not None:
            ds.append({"country": country, "national_id": co, "role": "co_debtor"})
        if rand() < (_GUARANTEE_YOUNG if age < 30 else _GUARANTEE):
            g = guarantor(age, (primary, co) if co else (primary,))
            if g is not None:
                ds.append({"country": country, "national_id": g, "role": "guarantor"})
        return ds

    return loan_debtors


def walk(run: Run, persons: int, new_person: Callable[..., Person], own_credits: OwnCredits) -> Iterator[Line]:
    """The persons one at a time, each with the next as partner or not, and the lines of their debts."""
    rand, out, recent = run.rand, run.out, run.recent
    current = new_person() if persons else []
    partnered = False  # `current` is the partner of the previous person
    is_co_debtor = False  # ... and the co-debtor of its mortgage
    for i in range(persons):
        partner = None
        joint_mortgage = False
        if not partnered and i + 1 < persons and current[1] >= 22 and rand() < _COUPLE:
            partner = new_person(max(18, min(95, current[1] + int(rand() * 11) - 5)))
            joint_mortgage = (current[3] and partner[3] and 23 <= current[1] <= 80 and 23 <= partner[1] <= 80
                              and rand() < _JOINT_MORTGAGE)  # fmt: skip
        if current[3]:
            own_credits(current, partner if partner and partner[3] else None, joint_mortgage, is_co_debtor)
            if out:
                yield from out
                out.clear()
        recent.append((current[0], current[1]))
        if len(recent) > _RECENT:
            del recent[0]
        if partner is not None:
            current, partnered, is_co_debtor = partner, True, joint_mortgage
        else:
            current = new_person() if i + 1 < persons else []
            partnered = is_co_debtor = False
