"""Denmark: CPR (no modulus-11 check since 2007; stdnum checks the date and refuses future dates).

Canonical form: 10 digits DDMMYYSSSS.
"""

from __future__ import annotations

import random
import re
from datetime import date

from stdnum.dk import cpr

from register.domain.identity.rule import CountryRule, pair_weights


def parse(text: str, allow_test: bool, today: date) -> str:
    return cpr.validate(text)


# Modulus-11 weights 4 3 2 7 6 5 4 3 2 1 over DD MM YY S SS C.
_WEIGHTS = (pair_weights(4, 3), pair_weights(2, 7), pair_weights(6, 5), pair_weights(3, 2))
_MOD11_UNTIL = date(2007, 1, 1)  # numbers of people born before this all satisfy modulus 11

# The 7th digits that put a year in its century, as stdnum.dk.cpr reads them.
_DIGIT7_1800S = (5, 6, 7, 8)  # years 58..99
_DIGIT7_1900S_EARLY = (0, 1, 2, 3)  # years 00..36
_DIGIT7_1900S_LATE = (0, 1, 2, 3, 4, 9)  # years 37..99
_DIGIT7_2000S_EARLY = (4, 5, 6, 7, 8, 9)  # years 00..36
_DIGIT7_2000S_LATE = (5, 6, 7, 8)  # years 37..57


def generate(rng: random.Random, born: date) -> str:
    """`DDMMYY-NNNN`; pre-2007 serials that modulus 11 cannot complete are never issued, so redrawn."""
    year, y = born.year, born.year % 100
    if 1858 <= year <= 1899:
        choices = _DIGIT7_1800S
    elif 1900 <= year <= 1999:
        choices = _DIGIT7_1900S_EARLY if y < 37 else _DIGIT7_1900S_LATE
    elif 2000 <= year <= 2057:
        choices = _DIGIT7_2000S_EARLY if y < 37 else _DIGIT7_2000S_LATE
    else:
        raise ValueError("birth_date outside the years a Danish CPR number can encode")
    d, m = born.day, born.month
    w_day, w_month, w_year, w_89 = _WEIGHTS
    base = w_day[d] + w_month[m] + w_year[y]
    while True:
        digit7 = choices[rng.randrange(len(choices))]
        digits89 = rng.randrange(100)
        if born >= _MOD11_UNTIL:
            last = rng.randrange(10)
        else:
            last = -(base + 4 * digit7 + w_89[digits89]) % 11  # the last digit's weight is 1
            if last == 10:
                continue
        return f"{d:02d}{m:02d}{y:02d}-{digit7}{digits89:02d}{last}"


def with_serial(number: str, serial: int) -> str | None:
    """The canonical number with another serial (SSSS; no check digit since 2007)."""
    return f"{number[:6]}{serial:04d}" if 0 <= serial <= 9999 else None


RULE = CountryRule(
    code="DK",
    canonical=re.compile(r"[0-9]{10}"),
    masked_keep=6,
    masked_tail="-****",  # DDMMYY-****
    parse=parse,
    generate=generate,
    serial=slice(6, 10),
    with_serial=with_serial,
)
