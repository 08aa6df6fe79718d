"""Norway: fødselsnummer, D-nummer (day + 40); synthetic test numbers (month + 80) in test mode.

stdnum also accepts H-numbers (month + 40, health-sector help numbers) and refuses FH-numbers
(day >= 80) as an "invalid birth date"; neither identifies a person for the register, so both are
refused here as an unsupported number type. Synthetic test numbers (Skatteetaten/Tenor, month + 80)
have correct check digits but stdnum reads them as an invalid date. Canonical form: 11 digits.

Norway issues numbers with a new check-digit rule from 2032: everything the register knows about
Norway's check digits (checking them and computing them for synthetic numbers) is in this module.
"""

from __future__ import annotations

import random
import re
from datetime import date

from stdnum.exceptions import InvalidComponent
from stdnum.no import fodselsnummer

from register.domain.identity.rule import (
    REASON_BIRTH_DATE,
    REASON_CHECK_DIGIT,
    REASON_FORMAT,
    REASON_LENGTH,
    REASON_NUMBER_TYPE,
    REASON_TEST_NUMBER,
    CountryRule,
    InvalidNationalId,
    isdigits,
    pair_weights,
    safe_date,
    triple_weights,
)

_TEST_MONTH_OFFSET = 80
_H_MONTH_OFFSET = 40
_D_DAY_OFFSET = 40
_FH_MIN_DAY = 80


def _year(yy: int, individual: int) -> int | None:
    """Birth year from the two-digit year and the individual number (same ranges as stdnum)."""
    if individual < 500:
        return 1900 + yy
    if individual < 750 and yy >= 54:
        return 1800 + yy
    if yy < 40:
        return 2000 + yy
    if individual >= 900:
        return 1900 + yy
    return None


def _check_digits_ok(number: str) -> bool:
    return (
        number[9] == fodselsnummer.calc_check_digit1(number)
        and number[10] == fodselsnummer.calc_check_digit2(number)
    )


def _parse_test(number: str, allow_test: bool, today: date) -> str:
    if not _check_digits_ok(number):
        raise InvalidNationalId(REASON_CHECK_DIGIT, country="NO")
    if not allow_test:
        raise InvalidNationalId(REASON_TEST_NUMBER, country="NO")
    day = int(number[0:2])
    if day > _D_DAY_OFFSET:
        day -= _D_DAY_OFFSET
    year = _year(int(number[4:6]), int(number[6:9]))
    born = None if year is None else safe_date(year, int(number[2:4]) - _TEST_MONTH_OFFSET, day)
    if born is None or born > today:
        raise InvalidNationalId(REASON_BIRTH_DATE, country="NO")
    return number


def parse(text: str, allow_test: bool, today: date) -> str:
    number = fodselsnummer.compact(text)
    if not isdigits(number):
        raise InvalidNationalId(REASON_FORMAT, country="NO")
    if len(number) != 11:
        raise InvalidNationalId(REASON_LENGTH, country="NO")
    if int(number[2:4]) > _TEST_MONTH_OFFSET:
        return _parse_test(number, allow_test, today)
    try:
        fodselsnummer.validate(number)
    except InvalidComponent:
        if int(number[0:2]) >= _FH_MIN_DAY:
            raise InvalidNationalId(REASON_NUMBER_TYPE, country="NO") from None
        raise
    if int(number[2:4]) > _H_MONTH_OFFSET:
        raise InvalidNationalId(REASON_NUMBER_TYPE, country="NO")
    return number


def is_test(number: str) -> bool:
    """Synthetic test numbers (month + 80)."""
    return int(number[2:4]) > _TEST_MONTH_OFFSET


# k1 weights 3 7 6 1 8 9 4 5 2, k2 weights 5 4 3 2 7 6 5 4 3 2 over DD MM YY III (k1).
_K1 = (pair_weights(3, 7), pair_weights(6, 1), pair_weights(8, 9), triple_weights(4, 5, 2))
_K2 = (pair_weights(5, 4), pair_weights(3, 2), pair_weights(7, 6), triple_weights(5, 4, 3))


def generate(rng: random.Random, born: date) -> str:
    """`DDMMYYNNNNN`; individual numbers whose check digit would be 10 are never issued, so redrawn."""
    year = born.year
    if 1854 <= year <= 1899:
        low, span = 500, 250
    elif 1900 <= year <= 1939:
        low, span = 0, 500
    elif 1940 <= year <= 1999:
        low, span = 0, 600  # 000-499 and (shifted below) 900-999
    elif 2000 <= year <= 2039:
        low, span = 500, 500
    else:
        raise ValueError("birth_date outside the years a Norwegian fødselsnummer can encode")
    w_day, w_month, w_year, w_ind = _K1
    v_day, v_month, v_year, v_ind = _K2
    d, m, y = born.day, born.month, year % 100
    base1 = w_day[d] + w_month[m] + w_year[y]
    base2 = v_day[d] + v_month[m] + v_year[y]
    while True:
        individual = low + rng.randrange(span)
        if low == 0 and individual >= 500:
            individual += 400  # 500-599 -> 900-999
        k1 = -(base1 + w_ind[individual]) % 11
        if k1 == 10:
            continue
        k2 = -(base2 + v_ind[individual] + 2 * k1) % 11
        if k2 == 10:
            continue
        return f"{d:02d}{m:02d}{y:02d}{individual:03d}{k1}{k2}"


def with_serial(number: str, serial: int) -> str | None:
    """The canonical number with another individual number and its two mod-11 check digits; "" when one
    would be 10 (never issued)."""
    if not 0 <= serial <= 999:
        return None
    body = f"{number[:6]}{serial:03d}"
    k1 = fodselsnummer.calc_check_digit1(body)
    k2 = fodselsnummer.calc_check_digit2(body + k1) if len(k1) == 1 else "10"
    return body + k1 + k2 if len(k2) == 1 else ""


RULE = CountryRule(
    code="NO",
    canonical=re.compile(r"[0-9]{11}"),
    masked_keep=6,
    masked_tail="*****",  # DDMMYY*****
    parse=parse,
    generate=generate,
    is_test=is_test,
    serial=slice(6, 9),
    with_serial=with_serial,
)
