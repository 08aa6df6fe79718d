"""Finland: henkilötunnus (HETU); temporary numbers (individual 900-999) in test mode.

The century sign is part of the identifier: since 2023 the signs Y X W V U (1900s) and B C D E F
(2000s) exist besides '-' and 'A', and 010190-123X and 010190Y123X are different people. So the
sign is kept as written (stdnum's compact form), not canonicalised. Canonical form: DDMMYYCNNNQ.
"""

from __future__ import annotations

import random
import re
from datetime import date

from stdnum.exceptions import InvalidComponent
from stdnum.fi import hetu

from register.domain.identity.rule import (
    REASON_BIRTH_DATE,
    REASON_INDIVIDUAL,
    REASON_LENGTH,
    REASON_TEST_NUMBER,
    CountryRule,
    InvalidNationalId,
    isdigits,
)

_CENTURY = {"+": 1800, "-": 1900, "U": 1900, "V": 1900, "W": 1900, "X": 1900, "Y": 1900}
_CENTURY.update(dict.fromkeys("ABCDEF", 2000))
_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_FIRST_TEMPORARY = 900


def _component_reason(number: str) -> str:
    individual = number[7:10]
    if isdigits(individual) and int(individual) < 2:
        return REASON_INDIVIDUAL
    return REASON_BIRTH_DATE


def parse(text: str, allow_test: bool, today: date) -> str:
    number = hetu.compact(text)
    if len(number) != 11:
        raise InvalidNationalId(REASON_LENGTH, country="FI")
    try:
        hetu.validate(number, allow_temporary=allow_test)
    except InvalidComponent:
        if allow_test:
            raise InvalidNationalId(_component_reason(number), country="FI") from None
        # stdnum refuses temporary numbers before looking at the check character: find out which.
        try:
            hetu.validate(number, allow_temporary=True)
        except InvalidComponent:
            raise InvalidNationalId(_component_reason(number), country="FI") from None
        raise InvalidNationalId(REASON_TEST_NUMBER, country="FI") from None
    # stdnum does not refuse birth dates in the future (e.g. sign 'A' with year 99).
    if date(_CENTURY[number[6]] + int(number[4:6]), int(number[2:4]), int(number[0:2])) > today:
        raise InvalidNationalId(REASON_BIRTH_DATE, country="FI")
    return number


def is_test(number: str) -> bool:
    """Temporary numbers (individual number 900-999)."""
    return int(number[7:10]) >= _FIRST_TEMPORARY


def generate(rng: random.Random, born: date) -> str:
    """`DDMMYYCNNNQ` with individual number 002-899 (900-999 are temporary numbers)."""
    if not 1800 <= born.year <= 2099:
        raise ValueError("birth_date outside the years a Finnish HETU can encode")
    sign = "+" if born.year < 1900 else "-" if born.year < 2000 else "A"
    individual = 2 + rng.randrange(898)
    d, m, y = born.day, born.month, born.year % 100
    check = _CHECK_CHARS[(((d * 100 + m) * 100 + y) * 1000 + individual) % 31]
    return f"{d:02d}{m:02d}{y:02d}{sign}{individual:03d}{check}"


def with_serial(number: str, serial: int) -> str | None:
    """The canonical number with another individual number (002-999) and its check character."""
    if not 2 <= serial <= 999:
        return None
    return f"{number[:7]}{serial:03d}{_CHECK_CHARS[int(number[:6] + f'{serial:03d}') % 31]}"


RULE = CountryRule(
    code="FI",
    canonical=re.compile(r"[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]"),
    masked_keep=7,
    masked_tail="****",  # DDMMYYC****
    parse=parse,
    generate=generate,
    is_test=is_test,
    serial=slice(7, 10),
    with_serial=with_serial,
)
