"""National identity numbers: parsing, normalisation, masking and synthetic generation.

This is the one place in the register that knows the rules of each country's identity number
(SE personnummer/samordningsnummer, NO fødselsnummer/D-nummer, FI henkilötunnus, DK CPR, PL PESEL).
When a rule changes (Norway changes its check-digit rule in 2032) it changes here and nowhere else.

Identity numbers are the most sensitive data the register holds, so:

* `NationalId.__repr__`/`__str__` show only the country and the masked birth-date part;
* `InvalidNationalId` carries a short reason and the country, never the input;
* stdnum's exceptions are not chained into ours (their messages hold no number either, but a
  traceback should not need reading to be sure of that).

Pure module: stdlib and python-stdnum only.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from stdnum import luhn
from stdnum.dk import cpr
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidLength,
    ValidationError,
)
from stdnum.fi import hetu
from stdnum.no import fodselsnummer
from stdnum.pl import pesel
from stdnum.se import personnummer

__all__ = [
    "SUPPORTED_COUNTRIES",
    "InvalidNationalId",
    "NationalId",
    "generate_national_id",
    "is_test_number",
    "parse_national_id",
]

SUPPORTED_COUNTRIES: frozenset[str] = frozenset({"SE", "NO", "FI", "DK", "PL"})

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

# Anything longer than this cannot be any supported spelling; refuse it before doing any work on it.
_MAX_INPUT_LENGTH = 32

# Earliest birth year accepted from an explicit four-digit year (SE 12-digit spelling).
_MIN_BIRTH_YEAR = 1800


def _today() -> date:
    """Today's date; a separate function so tests can pin the clock (century resolution depends on it)."""
    return date.today()


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


@dataclass(frozen=True, slots=True, repr=False)
class NationalId:
    """A validated, normalised national identity number.

    Build it with `parse_national_id`; the constructor only checks the canonical shape (so that
    `masked()` can never reveal more than the birth-date part), not the check digits.
    """

    country: str
    number: str

    def __post_init__(self) -> None:
        if not isinstance(self.country, str) or self.country not in SUPPORTED_COUNTRIES:
            raise InvalidNationalId(REASON_COUNTRY)
        if not isinstance(self.number, str) or not _CANONICAL[self.country].fullmatch(self.number):
            raise InvalidNationalId(REASON_FORMAT, country=self.country)

    def blind_index_input(self) -> bytes:
        """The bytes to feed the keyed blind index (HMAC) that makes the number searchable."""
        return f"{self.country}:{self.number}".encode()

    def masked(self) -> str:
        """The birth-date part followed by stars: safe to show to a person who already knows who this is."""
        keep, tail = _MASKS[self.country]
        return self.number[:keep] + tail

    def __repr__(self) -> str:
        return f"NationalId({self.country}, {self.masked()})"

    __str__ = __repr__


_CANONICAL: dict[str, re.Pattern[str]] = {
    "SE": re.compile(r"[0-9]{12}"),
    "NO": re.compile(r"[0-9]{11}"),
    "FI": re.compile(r"[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-FHJ-NPR-Y]"),
    "DK": re.compile(r"[0-9]{10}"),
    "PL": re.compile(r"[0-9]{11}"),
}

# country -> (characters kept from the normalised number, replacement for the rest)
_MASKS: dict[str, tuple[int, str]] = {
    "SE": (8, "-****"),  # YYYYMMDD-****
    "NO": (6, "*****"),  # DDMMYY*****
    "FI": (7, "****"),  # DDMMYYC****
    "DK": (6, "-****"),  # DDMMYY-****
    "PL": (6, "*****"),  # YYMMDD*****
}

_DIGITS = re.compile(r"[0-9]+")


def _isdigits(text: str) -> bool:
    # str.isdigit() accepts non-ASCII digits; the canonical forms are ASCII only.
    return _DIGITS.fullmatch(text) is not None


def _country(country: object) -> str:
    # The refused value is not echoed: a caller that swapped its arguments would otherwise log a number.
    if not isinstance(country, str):
        raise InvalidNationalId(REASON_COUNTRY)
    code = country.strip().upper()
    if code not in SUPPORTED_COUNTRIES:
        raise InvalidNationalId(REASON_COUNTRY)
    return code


def _stdnum_reason(exc: ValidationError) -> str:
    if isinstance(exc, InvalidChecksum):
        return REASON_CHECK_DIGIT
    if isinstance(exc, InvalidLength):
        return REASON_LENGTH
    if isinstance(exc, InvalidComponent):
        return REASON_BIRTH_DATE
    return REASON_FORMAT


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Sweden: personnummer and samordningsnummer (coordination number, day + 60)
# --------------------------------------------------------------------------------------------
# stdnum.se.personnummer refuses coordination numbers (it reads day 61..91 as an invalid date), and
# resolves the century of the 10-digit spelling by year only, so the date, the century and the
# coordination offset are handled here; the separators are cleaned by stdnum's compact() and the
# check digit is stdnum's Luhn.

_SE_COMPACT = re.compile(r"([0-9]{2})?([0-9]{2})([0-9]{2})([0-9]{2})([-+])([0-9]{4})")
_SE_COORDINATION_OFFSET = 60


def _se_year(yy: int, month: int, day: int, sign: str, today: date) -> int:
    if sign == "+":
        # '+' is used from the start of the year the person turns 100 (Folkbokföringslagen 18 §).
        latest = today.year - 100
        return latest - (latest - yy) % 100
    year = today.year - (today.year - yy) % 100  # latest year <= this year ending in yy
    if year == today.year and (month, day) > (today.month, today.day):
        year -= 100  # would be born later this year: the previous century
    return year


def _parse_se(text: str, allow_test: bool) -> str:
    compact = personnummer.compact(text)
    match = _SE_COMPACT.fullmatch(compact)
    if match is None:
        digits = compact.replace("-", "").replace("+", "")
        if _isdigits(digits) and len(digits) not in (10, 12):
            raise InvalidNationalId(REASON_LENGTH, country="SE")
        raise InvalidNationalId(REASON_FORMAT, country="SE")
    cc, yy, mm, dd, sign, serial = match.groups()
    month, day_field = int(mm), int(dd)
    day = day_field - _SE_COORDINATION_OFFSET if day_field > _SE_COORDINATION_OFFSET else day_field
    today = _today()
    # With a four-digit year the sign carries no information and is ignored.
    year = int(cc + yy) if cc is not None else _se_year(int(yy), month, day, sign, today)
    born = _safe_date(year, month, day)
    if born is None or born > today or year < _MIN_BIRTH_YEAR:
        raise InvalidNationalId(REASON_BIRTH_DATE, country="SE")
    if not luhn.is_valid(yy + mm + dd + serial):
        raise InvalidNationalId(REASON_CHECK_DIGIT, country="SE")
    return f"{year:04d}{mm}{dd}{serial}"


# --------------------------------------------------------------------------------------------
# Norway: fødselsnummer, D-nummer (day + 40); synthetic test numbers (month + 80) in test mode
# --------------------------------------------------------------------------------------------
# stdnum also accepts H-numbers (month + 40, health-sector help numbers) and refuses FH-numbers
# (day >= 80) as an "invalid birth date"; neither identifies a person for the register, so both are
# refused here as an unsupported number type. Synthetic test numbers (Skatteetaten/Tenor, month + 80)
# have correct check digits but stdnum reads them as an invalid date.

_NO_TEST_MONTH_OFFSET = 80
_NO_H_MONTH_OFFSET = 40
_NO_D_DAY_OFFSET = 40
_NO_FH_MIN_DAY = 80


def _no_year(yy: int, individual: int) -> int | None:
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


def _no_check_digits_ok(number: str) -> bool:
    # The one place that knows Norway's check digits (the rule changes for numbers issued from 2032).
    return (
        number[9] == fodselsnummer.calc_check_digit1(number)
        and number[10] == fodselsnummer.calc_check_digit2(number)
    )


def _parse_no_test(number: str, allow_test: bool) -> str:
    if not _no_check_digits_ok(number):
        raise InvalidNationalId(REASON_CHECK_DIGIT, country="NO")
    if not allow_test:
        raise InvalidNationalId(REASON_TEST_NUMBER, country="NO")
    day = int(number[0:2])
    if day > _NO_D_DAY_OFFSET:
        day -= _NO_D_DAY_OFFSET
    year = _no_year(int(number[4:6]), int(number[6:9]))
    born = None if year is None else _safe_date(year, int(number[2:4]) - _NO_TEST_MONTH_OFFSET, day)
    if born is None or born > _today():
        raise InvalidNationalId(REASON_BIRTH_DATE, country="NO")
    return number


def _parse_no(text: str, allow_test: bool) -> str:
    number = fodselsnummer.compact(text)
    if not _isdigits(number):
        raise InvalidNationalId(REASON_FORMAT, country="NO")
    if len(number) != 11:
        raise InvalidNationalId(REASON_LENGTH, country="NO")
    if int(number[2:4]) > _NO_TEST_MONTH_OFFSET:
        return _parse_no_test(number, allow_test)
    try:
        fodselsnummer.validate(number)
    except InvalidComponent:
        if int(number[0:2]) >= _NO_FH_MIN_DAY:
            raise InvalidNationalId(REASON_NUMBER_TYPE, country="NO") from None
        raise
    if int(number[2:4]) > _NO_H_MONTH_OFFSET:
        raise InvalidNationalId(REASON_NUMBER_TYPE, country="NO")
    return number


# --------------------------------------------------------------------------------------------
# Finland: henkilötunnus (HETU); temporary numbers (individual 900-999) in test mode
# --------------------------------------------------------------------------------------------
# The century sign is part of the identifier: since 2023 the signs Y X W V U (1900s) and B C D E F
# (2000s) exist besides '-' and 'A', and 010190-123X and 010190Y123X are different people. So the
# sign is kept as written (stdnum's compact form), not canonicalised.

_FI_CENTURY = {"+": 1800, "-": 1900, "U": 1900, "V": 1900, "W": 1900, "X": 1900, "Y": 1900}
_FI_CENTURY.update(dict.fromkeys("ABCDEF", 2000))
_FI_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def _fi_component_reason(number: str) -> str:
    individual = number[7:10]
    if _isdigits(individual) and int(individual) < 2:
        return REASON_INDIVIDUAL
    return REASON_BIRTH_DATE


def _parse_fi(text: str, allow_test: bool) -> str:
    number = hetu.compact(text)
    if len(number) != 11:
        raise InvalidNationalId(REASON_LENGTH, country="FI")
    try:
        hetu.validate(number, allow_temporary=allow_test)
    except InvalidComponent:
        if allow_test:
            raise InvalidNationalId(_fi_component_reason(number), country="FI") from None
        # stdnum refuses temporary numbers before looking at the check character: find out which.
        try:
            hetu.validate(number, allow_temporary=True)
        except InvalidComponent:
            raise InvalidNationalId(_fi_component_reason(number), country="FI") from None
        raise InvalidNationalId(REASON_TEST_NUMBER, country="FI") from None
    # stdnum does not refuse birth dates in the future (e.g. sign 'A' with year 99).
    if date(_FI_CENTURY[number[6]] + int(number[4:6]), int(number[2:4]), int(number[0:2])) > _today():
        raise InvalidNationalId(REASON_BIRTH_DATE, country="FI")
    return number


# --------------------------------------------------------------------------------------------
# Denmark: CPR (no modulus-11 check since 2007; stdnum checks the date and refuses future dates)
# --------------------------------------------------------------------------------------------


def _parse_dk(text: str, allow_test: bool) -> str:
    return cpr.validate(text)


# --------------------------------------------------------------------------------------------
# Poland: PESEL (century encoded in the month: +80 1800s, +0 1900s, +20 2000s, +40 2100s, +60 2200s)
# --------------------------------------------------------------------------------------------


def _parse_pl(text: str, allow_test: bool) -> str:
    number = pesel.validate(text)
    if pesel.get_birth_date(number) > _today():  # stdnum does not refuse future dates
        raise InvalidNationalId(REASON_BIRTH_DATE, country="PL")
    return number


_PARSERS: dict[str, Callable[[str, bool], str]] = {
    "SE": _parse_se,
    "NO": _parse_no,
    "FI": _parse_fi,
    "DK": _parse_dk,
    "PL": _parse_pl,
}


def parse_national_id(country: str, raw: str, *, allow_test: bool = False) -> NationalId:
    """Validate `raw` as a national identity number of `country` and return it normalised.

    The country code is case-insensitive; surrounding whitespace is ignored, and the separators the
    country's common spellings use are accepted. Official test numbers (Norway's synthetic month+80
    numbers, Finland's temporary 900-999 range) are refused unless `allow_test` is true.
    Raises InvalidNationalId, whose message never contains the input.
    """
    code = _country(country)
    if not isinstance(raw, str):
        raise InvalidNationalId(REASON_TYPE, country=code)
    text = raw.strip()
    if not text:
        raise InvalidNationalId(REASON_LENGTH, country=code)
    if len(text) > _MAX_INPUT_LENGTH:
        raise InvalidNationalId(REASON_LENGTH, country=code)
    try:
        number = _PARSERS[code](text, bool(allow_test))
    except InvalidNationalId:
        raise
    except ValidationError as exc:
        raise InvalidNationalId(_stdnum_reason(exc), country=code) from None
    except (ValueError, TypeError, IndexError, KeyError):
        # Defensive: an unexpected failure inside a validator must not surface with the input in it.
        raise InvalidNationalId(REASON_FORMAT, country=code) from None
    return NationalId(code, number)


def is_test_number(nid: NationalId) -> bool:
    """True for numbers in an official test range (NO synthetic month+80, FI temporary 900-999)."""
    if nid.country == "NO":
        return int(nid.number[2:4]) > _NO_TEST_MONTH_OFFSET
    if nid.country == "FI":
        return int(nid.number[7:10]) >= 900
    return False


# --------------------------------------------------------------------------------------------
# Synthetic numbers
# --------------------------------------------------------------------------------------------
# Check digits are computed arithmetically from precomputed per-field weight tables (no
# validate-and-retry against stdnum). The only retries are for serials that are never issued: Norway's
# individual numbers whose check digit would be 10 (about one draw in six), and likewise Danish
# pre-2007 serials under modulus 11.

_DEFAULT_FIRST_BIRTH = date(1940, 1, 1).toordinal()
_DEFAULT_BIRTH_SPAN = date(2006, 12, 31).toordinal() - _DEFAULT_FIRST_BIRTH + 1


def _pair(w1: int, w2: int) -> tuple[int, ...]:
    """Weighted digit sum of a two-digit field 00..99."""
    return tuple(w1 * (v // 10) + w2 * (v % 10) for v in range(100))


def _triple(w1: int, w2: int, w3: int) -> tuple[int, ...]:
    """Weighted digit sum of a three-digit field 000..999."""
    return tuple(w1 * (v // 100) + w2 * (v // 10 % 10) + w3 * (v % 10) for v in range(1000))


# SE Luhn over YYMMDD NNN (+ check digit): digits in odd positions counted from the left are doubled.
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_SE_PAIR = tuple(_LUHN_DOUBLED[v // 10] + v % 10 for v in range(100))
_SE_SERIAL = tuple(_LUHN_DOUBLED[v // 100] + v // 10 % 10 + _LUHN_DOUBLED[v % 10] for v in range(1000))

# NO: k1 weights 3 7 6 1 8 9 4 5 2, k2 weights 5 4 3 2 7 6 5 4 3 2 over DD MM YY III (k1).
_NO_K1 = (_pair(3, 7), _pair(6, 1), _pair(8, 9), _triple(4, 5, 2))
_NO_K2 = (_pair(5, 4), _pair(3, 2), _pair(7, 6), _triple(5, 4, 3))

# DK: modulus-11 weights 4 3 2 7 6 5 4 3 2 1 over DD MM YY S SS C.
_DK_W = (_pair(4, 3), _pair(2, 7), _pair(6, 5), _pair(3, 2))
_DK_MOD11_UNTIL = date(2007, 1, 1)  # numbers of people born before this all satisfy modulus 11

# DK: the 7th digits that put a year in its century, as stdnum.dk.cpr reads them.
_DK_DIGIT7_1800S = (5, 6, 7, 8)  # years 58..99
_DK_DIGIT7_1900S_EARLY = (0, 1, 2, 3)  # years 00..36
_DK_DIGIT7_1900S_LATE = (0, 1, 2, 3, 4, 9)  # years 37..99
_DK_DIGIT7_2000S_EARLY = (4, 5, 6, 7, 8, 9)  # years 00..36
_DK_DIGIT7_2000S_LATE = (5, 6, 7, 8)  # years 37..57

# PL: weights 1 3 7 9 1 3 7 9 1 3 over YY MM DD SSSS.
_PL_W = (_pair(1, 3), _pair(7, 9), _pair(1, 3), _pair(7, 9), _pair(1, 3))
_PL_MONTH_OFFSET = {18: 80, 19: 0, 20: 20, 21: 40, 22: 60}


def _gen_se(rng: random.Random, born: date) -> str:
    serial = rng.randrange(1000)
    total = _SE_PAIR[born.year % 100] + _SE_PAIR[born.month] + _SE_PAIR[born.day] + _SE_SERIAL[serial]
    return f"{born.year:04d}{born.month:02d}{born.day:02d}-{serial:03d}{-total % 10}"


def _gen_no(rng: random.Random, born: date) -> str:
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
    w_day, w_month, w_year, w_ind = _NO_K1
    v_day, v_month, v_year, v_ind = _NO_K2
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


def _gen_fi(rng: random.Random, born: date) -> str:
    if not 1800 <= born.year <= 2099:
        raise ValueError("birth_date outside the years a Finnish HETU can encode")
    sign = "+" if born.year < 1900 else "-" if born.year < 2000 else "A"
    individual = 2 + rng.randrange(898)  # 002-899; 900-999 are temporary numbers
    d, m, y = born.day, born.month, born.year % 100
    check = _FI_CHECK_CHARS[(((d * 100 + m) * 100 + y) * 1000 + individual) % 31]
    return f"{d:02d}{m:02d}{y:02d}{sign}{individual:03d}{check}"


def _gen_dk(rng: random.Random, born: date) -> str:
    year, y = born.year, born.year % 100
    if 1858 <= year <= 1899:
        choices = _DK_DIGIT7_1800S
    elif 1900 <= year <= 1999:
        choices = _DK_DIGIT7_1900S_EARLY if y < 37 else _DK_DIGIT7_1900S_LATE
    elif 2000 <= year <= 2057:
        choices = _DK_DIGIT7_2000S_EARLY if y < 37 else _DK_DIGIT7_2000S_LATE
    else:
        raise ValueError("birth_date outside the years a Danish CPR number can encode")
    d, m = born.day, born.month
    w_day, w_month, w_year, w_89 = _DK_W
    base = w_day[d] + w_month[m] + w_year[y]
    while True:
        digit7 = choices[rng.randrange(len(choices))]
        digits89 = rng.randrange(100)
        if born >= _DK_MOD11_UNTIL:
            last = rng.randrange(10)
        else:
            last = -(base + 4 * digit7 + w_89[digits89]) % 11  # the last digit's weight is 1
            if last == 10:
                continue
        return f"{d:02d}{m:02d}{y:02d}-{digit7}{digits89:02d}{last}"


def _gen_pl(rng: random.Random, born: date) -> str:
    offset = _PL_MONTH_OFFSET.get(born.year // 100)
    if offset is None:
        raise ValueError("birth_date outside the years a PESEL can encode")
    y, m, d = born.year % 100, born.month + offset, born.day
    serial = rng.randrange(10000)
    w_y, w_m, w_d, w_s1, w_s2 = _PL_W
    total = w_y[y] + w_m[m] + w_d[d] + w_s1[serial // 100] + w_s2[serial % 100]
    return f"{y:02d}{m:02d}{d:02d}{serial:04d}{-total % 10}"


_GENERATORS: dict[str, Callable[[random.Random, date], str]] = {
    "SE": _gen_se,
    "NO": _gen_no,
    "FI": _gen_fi,
    "DK": _gen_dk,
    "PL": _gen_pl,
}


def generate_national_id(country: str, rng: random.Random, *, birth_date: date | None = None) -> str:
    """A synthetic, valid number for `country` in a common printed spelling, for test data.

    Spellings: SE `YYYYMMDD-NNNN`, NO `DDMMYYNNNNN`, FI `DDMMYYCNNNQ`, DK `DDMMYY-NNNN`, PL 11 digits.
    `parse_national_id(country, result)` accepts every result. Without `birth_date` the birth date is
    uniform over 1940-01-01..2006-12-31. Raises ValueError for a birth date in the future or outside
    what the country's number can encode, InvalidNationalId for an unsupported country.
    Synthetic numbers are valid numbers, so some will belong to real people: use them as test data only.
    """
    code = _country(country)
    if birth_date is None:
        born = date.fromordinal(_DEFAULT_FIRST_BIRTH + rng.randrange(_DEFAULT_BIRTH_SPAN))
    else:
        born = date(birth_date.year, birth_date.month, birth_date.day)  # a datetime is reduced to its date
        if born > _today():
            raise ValueError("birth_date is in the future")
        if born.year < _MIN_BIRTH_YEAR:
            raise ValueError("birth_date is too early")
    return _GENERATORS[code](rng, born)
