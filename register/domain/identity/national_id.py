"""The registry of countries, the validated `NationalId`, and the entry points that pick a country's rule.

Adding a country is a module beside this one that builds a `CountryRule`, and its name in `_RULES`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidLength,
    ValidationError,
)

from register.domain.identity import dk, fi, no, pl, se
from register.domain.identity.rule import (
    MIN_BIRTH_YEAR,
    REASON_BIRTH_DATE,
    REASON_CHECK_DIGIT,
    REASON_COUNTRY,
    REASON_FORMAT,
    REASON_LENGTH,
    REASON_TYPE,
    CountryRule,
    InvalidNationalId,
)

_RULES: dict[str, CountryRule] = {rule.code: rule for rule in (se.RULE, no.RULE, fi.RULE, dk.RULE, pl.RULE)}

SUPPORTED_COUNTRIES: frozenset[str] = frozenset(_RULES)

# Anything longer than this cannot be any supported spelling; refuse it before doing any work on it.
_MAX_INPUT_LENGTH = 32


def _today() -> date:
    """Today's date; a separate function so tests can pin the clock (century resolution depends on it)."""
    return date.today()


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
        if not isinstance(self.number, str) or not _RULES[self.country].canonical.fullmatch(self.number):
            raise InvalidNationalId(REASON_FORMAT, country=self.country)

    def blind_index_input(self) -> bytes:
        """The bytes to feed the keyed blind index (HMAC) that makes the number searchable."""
        return f"{self.country}:{self.number}".encode()

    def masked(self) -> str:
        """The birth-date part followed by stars: safe to show to a person who already knows who this is."""
        rule = _RULES[self.country]
        return self.number[: rule.masked_keep] + rule.masked_tail

    def __repr__(self) -> str:
        return f"NationalId({self.country}, {self.masked()})"

    __str__ = __repr__


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
        number = _RULES[code].parse(text, bool(allow_test), _today())
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
    return _RULES[nid.country].is_test(nid.number)


# Synthetic numbers: without a birth date, uniform over 1940-01-01..2006-12-31.
_DEFAULT_FIRST_BIRTH = date(1940, 1, 1).toordinal()
_DEFAULT_BIRTH_SPAN = date(2006, 12, 31).toordinal() - _DEFAULT_FIRST_BIRTH + 1


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
        if born.year < MIN_BIRTH_YEAR:
            raise ValueError("birth_date is too early")
    return _RULES[code].generate(rng, born)
