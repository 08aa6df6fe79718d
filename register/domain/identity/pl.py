"""Poland: PESEL (century encoded in the month: +80 1800s, +0 1900s, +20 2000s, +40 2100s, +60 2200s).

Canonical form: 11 digits YYMMDDSSSSC.
"""

from __future__ import annotations

import random
import re
from datetime import date

from stdnum.pl import pesel

from register.domain.identity.rule import REASON_BIRTH_DATE, CountryRule, InvalidNationalId, pair_weights


def parse(text: str, allow_test: bool, today: date) -> str:
    number = pesel.validate(text)
    if pesel.get_birth_date(number) > today:  # stdnum does not refuse future dates
        raise InvalidNationalId(REASON_BIRTH_DATE, country="PL")
    return number


# Weights 1 3 7 9 1 3 7 9 1 3 over YY MM DD SSSS.
_WEIGHTS = (pair_weights(1, 3), pair_weights(7, 9), pair_weights(1, 3), pair_weights(7, 9), pair_weights(1, 3))
_MONTH_OFFSET = {18: 80, 19: 0, 20: 20, 21: 40, 22: 60}


def generate(rng: random.Random, born: date) -> str:
    """11 digits."""
    offset = _MONTH_OFFSET.get(born.year // 100)
    if offset is None:
        raise ValueError("birth_date outside the years a PESEL can encode")
    y, m, d = born.year % 100, born.month + offset, born.day
    serial = rng.randrange(10000)
    w_y, w_m, w_d, w_s1, w_s2 = _WEIGHTS
    total = w_y[y] + w_m[m] + w_d[d] + w_s1[serial // 100] + w_s2[serial % 100]
    return f"{y:02d}{m:02d}{d:02d}{serial:04d}{-total % 10}"


def with_serial(number: str, serial: int) -> str | None:
    """The canonical number with another serial (ZZZZ) and its check digit."""
    if not 0 <= serial <= 9999:
        return None
    body = f"{number[:6]}{serial:04d}"
    return body + pesel.calc_check_digit(body)


RULE = CountryRule(
    code="PL",
    canonical=re.compile(r"[0-9]{11}"),
    masked_keep=6,
    masked_tail="*****",  # YYMMDD*****
    parse=parse,
    generate=generate,
    serial=slice(6, 10),
    with_serial=with_serial,
)
