"""What one country's identity-number rule is, and the pieces every rule shares.

A country module builds one `CountryRule`; `register.domain.identity.national_id` keeps them in its
registry and is the only caller. Rules are pure: the date "today" is handed in, never read here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

# Reasons (the complete vocabulary of InvalidNationalId.reason).
REASON_CHECK_DIGIT = "invalid check digit"
REASON_BIRTH_DATE = "invalid birth date"
REASON_LENGTH = "invalid length"
REASON_FORMAT = "invalid format"
REASON_COUNTRY = "unsupported country"
REASON_TYPE = "not a string"
REASON_TEST_NUMBER = "test number not allowed"
REASON_INDIVIDUAL = "invalid individual number"
REASON_NUMBER_TYPE = "unsupported number type"

# Earliest birth year accepted from an explicit four-digit year (SE 12-digit spelling).
MIN_BIRTH_YEAR = 1800


class InvalidNationalId(ValueError):
    """A national identity number was refused.

    `reason` is a short human reason (one of the REASON_* constants) and `country` the upper-case
    country code when it is a supported one (else None). Neither the message nor `args` contain the
    input: the refused value is never stored on the exception.
    """

    def __init__(self, reason: str, *, country: str | None = None) -> None:
        self.reason = reason
        self.country = country
        super().__init__(f"{country} national id: {reason}" if country else f"national id: {reason}")


def _never_a_test_number(number: str) -> bool:
    return False


def _no_serials(number: str, serial: int) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class CountryRule:
    """One country's identity number.

    `parse(text, allow_test, today)` gets the input stripped and at most 32 characters long and
    returns the number in its canonical shape, or raises InvalidNationalId (or a stdnum
    ValidationError, which the caller turns into one). `generate(rng, born)` returns a valid number
    for someone born on `born` in a common printed spelling, or raises ValueError for a date the
    number cannot encode. `is_test(number)` says whether a canonical number is in an official test
    range. The number is masked as its first `masked_keep` characters followed by `masked_tail`, so
    the canonical shape must put the birth-date part first. `serial` and `with_serial` give a number's
    sequential neighbours (register.domain.identity.sequence).
    """

    code: str
    canonical: re.Pattern[str]
    masked_keep: int
    masked_tail: str
    parse: Callable[[str, bool, date], str]
    generate: Callable[[random.Random, date], str]
    is_test: Callable[[str], bool] = _never_a_test_number
    # The individual (serial) part of the canonical number, and the number with another serial and its
    # check part recomputed: None past the range, "" for a serial never issued (identity.sequence).
    serial: slice = field(default_factory=lambda: slice(0, 0))
    with_serial: Callable[[str, int], str | None] = _no_serials


_DIGITS = re.compile(r"[0-9]+")


def isdigits(text: str) -> bool:
    # str.isdigit() accepts non-ASCII digits; the canonical forms are ASCII only.
    return _DIGITS.fullmatch(text) is not None


def safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# Synthetic numbers: check digits are computed arithmetically from precomputed per-field weight tables
# (no validate-and-retry against stdnum).


def pair_weights(w1: int, w2: int) -> tuple[int, ...]:
    """Weighted digit sum of a two-digit field 00..99."""
    return tuple(w1 * (v // 10) + w2 * (v % 10) for v in range(100))


def triple_weights(w1: int, w2: int, w3: int) -> tuple[int, ...]:
    """Weighted digit sum of a three-digit field 000..999."""
    return tuple(w1 * (v // 100) + w2 * (v // 10 % 10) + w3 * (v % 10) for v in range(1000))
