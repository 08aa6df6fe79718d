"""Sweden: personnummer and samordningsnummer (coordination number, day + 60).

stdnum.se.personnummer refuses coordination numbers (it reads day 61..91 as an invalid date), and
resolves the century of the 10-digit spelling by year only, so the date, the century and the
coordination offset are handled here; the separators are cleaned by stdnum's compact() and the
check digit is stdnum's Luhn. Canonical form: 12 digits YYYYMMDDNNNC.
"""

from __future__ import annotations

import random
import re
from datetime import date

from stdnum.se import personnummer

from register.domain.identity.rule import (
    MIN_BIRTH_YEAR,
    REASON_BIRTH_DATE,
    REASON_CHECK_DIGIT,
    REASON_FORMAT,
    REASON_LENGTH,
    CountryRule,
    InvalidNationalId,
    isdigits,
    safe_date,
)

_COMPACT = re.compile(r"([0-9]{2})?([0-9]{2})([0-9]{2})([0-9]{2})([-+])([0-9]{4})")
_COORDINATION_OFFSET = 60


def _year(yy: int, month: int, day: int, sign: str, today: date) -> int:
    if sign == "+":
        # '+' is used from the start of the year the person turns 100 (Folkbokföringslagen 18 §).
        latest = today.year - 100
        return latest - (latest - yy) % 100
    year = today.year - (today.year - yy) % 100  # latest year <= this year ending in yy
    if year == today.year and (month, day) > (today.month, today.day):
        year -= 100  # would be born later this year: the previous century
    return year


_PLAIN = re.compile(r"[0-9+-]*")  # nothing stdnum's clean() would change or delete (ASCII digits and signs)


def _compact(text: str) -> str:
    """`personnummer.compact(text)`, at a third of its cost for a number spelled with ASCII digits and signs
    only (the common case: stdnum's clean() maps every character through a table first)."""
    if _PLAIN.fullmatch(text) is None:
        return personnummer.compact(text)
    number = text  # what clean(text, ' :') returns for it; the rest is compact()'s own
    if len(number) in (10, 12) and number[-5] not in "-+":
        number = f"{number[:-4]}-{number[-4:]}"
    return number[:-5].replace("-", "").replace("+", "") + number[-5:]


def _luhn_valid(yy: str, mm: str, dd: str, serial: str) -> bool:
    """`luhn.is_valid(yy + mm + dd + serial)` for these ASCII digit fields (2, 2, 2 and 4), by the tables below."""
    total = PAIR[int(yy)] + PAIR[int(mm)] + PAIR[int(dd)] + SERIAL[int(serial[:3])] + int(serial[3])
    return total % 10 == 0


def parse(text: str, allow_test: bool, today: date) -> str:
    compact = _compact(text)
    match = _COMPACT.fullmatch(compact)
    if match is None:
        digits = compact.replace("-", "").replace("+", "")
        if isdigits(digits) and len(digits) not in (10, 12):
            raise InvalidNationalId(REASON_LENGTH, country="SE")
        raise InvalidNationalId(REASON_FORMAT, country="SE")
    cc, yy, mm, dd, sign, serial = match.groups()
    month, day_field = int(mm), int(dd)
    day = day_field - _COORDINATION_OFFSET if day_field > _COORDINATION_OFFSET else day_field
    # With a four-digit year the sign carries no information and is ignored.
    year = int(cc + yy) if cc is not None else _year(int(yy), month, day, sign, today)
    born = safe_date(year, month, day)
    if born is None or born > today or year < MIN_BIRTH_YEAR:
        raise InvalidNationalId(REASON_BIRTH_DATE, country="SE")
    if not _luhn_valid(yy, mm, dd, serial):
        raise InvalidNationalId(REASON_CHECK_DIGIT, country="SE")
    return f"{year:04d}{mm}{dd}{serial}"


# Luhn over YYMMDD NNN (+ check digit): digits in odd positions counted from the left are doubled.
# PAIR and SERIAL are the weighted sums of a two- and a three-digit field (also used by identity.sequence).
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
PAIR = tuple(_LUHN_DOUBLED[v // 10] + v % 10 for v in range(100))
SERIAL = tuple(_LUHN_DOUBLED[v // 100] + v // 10 % 10 + _LUHN_DOUBLED[v % 10] for v in range(1000))


def generate(rng: random.Random, born: date) -> str:
    """`YYYYMMDD-NNNN`."""
    serial = rng.randrange(1000)
    total = PAIR[born.year % 100] + PAIR[born.month] + PAIR[born.day] + SERIAL[serial]
    return f"{born.year:04d}{born.month:02d}{born.day:02d}-{serial:03d}{-total % 10}"


def with_serial(number: str, serial: int) -> str | None:
    """The canonical number with another serial (NNN) and its Luhn check digit; None past the range."""
    if not 0 <= serial <= 999:
        return None
    total = PAIR[int(number[2:4])] + PAIR[int(number[4:6])] + PAIR[int(number[6:8])] + SERIAL[serial]
    return f"{number[:8]}{serial:03d}{-total % 10}"


RULE = CountryRule(
    code="SE",
    canonical=re.compile(r"[0-9]{12}"),
    masked_keep=8,
    masked_tail="-****",  # YYYYMMDD-****
    parse=parse,
    generate=generate,
    serial=slice(8, 11),
    with_serial=with_serial,
)
