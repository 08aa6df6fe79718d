"""Strict input types for JSON request bodies.

FastAPI validates bodies as Python objects, where pydantic's `strict=True` would refuse even ISO date
strings; these types give JSON-strict behaviour instead: integers must be JSON integers (not booleans,
not strings), dates and times must be ISO 8601 strings (not numbers), and times carry an offset.

Every date and time a client sends (bodies, query parameters, cursors, batch lines, the pages' forms) is
read by the functions here, which also refuse what lies outside a sane range: a date from 1900-01-01 to
9999-12-31, a time from 1900-01-01T00:00:00Z up to (not including) 9999-12-31T00:00:00Z once converted to
UTC. A time in year 1 with `+14:00`, or on the last day of 9999 with `-14:00`, has no UTC equivalent
(Python's datetime overflows); and a day below the largest time leaves room to show any accepted time in
any time zone, or add a day to it, without overflowing.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator, BeforeValidator, Field, GetCoreSchemaHandler, StrictInt, StrictStr, StringConstraints,
)  # fmt: skip
from pydantic_core import CoreSchema, core_schema

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})$")


EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9999, 12, 31)
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)  # exclusive
_BAD_DATE = "must be a date string YYYY-MM-DD"
_DATE_RANGE = f"must be a date from {EARLIEST_DATE} to {LATEST_DATE}"
_TIME_RANGE = "must be a time from 1900-01-01T00:00:00Z to before 9999-12-31T00:00:00Z (in UTC)"


def _iso_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return _in_range(value)
    if not isinstance(value, str):
        raise ValueError(_BAD_DATE)
    return _date_of(value)


def _iso_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    if not isinstance(value, str):
        raise ValueError(_BAD_DATETIME)
    return _datetime_of(value)


def parse_date(text: str) -> date:
    """A date as the API reads one (YYYY-MM-DD, within range); ValueError otherwise."""
    return _iso_date(text)


def parse_time(text: str) -> datetime:
    """A time as the API reads one (RFC 3339 with an offset, within range), in UTC; ValueError otherwise."""
    return _iso_datetime(text)


def check_time(value: datetime) -> datetime:
    """An aware datetime made from what a client sent (e.g. a form's date at local midnight), in UTC and
    within range; ValueError otherwise."""
    return _utc(value)


# A batch file repeats the same few dates and times on millions of lines: parsing each string once saves
# 5 % of a line's processing. The results are immutable; failures are not cached (they raise).
@functools.lru_cache(maxsize=8192)
def _date_of(value: str) -> date:
    if not _DATE.match(value):
        raise ValueError(_BAD_DATE)
    return _in_range(date.fromisoformat(value))


def _in_range(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(_DATE_RANGE)
    return value


_BAD_DATETIME = "must be an RFC 3339 date-time string with an offset, e.g. 2026-11-23T10:00:00Z"


@functools.lru_cache(maxsize=8192)
def _datetime_of(value: str) -> datetime:
    if not _DATETIME.match(value):
        raise ValueError(_BAD_DATETIME)
    return _utc(datetime.fromisoformat(value.replace("z", "Z")))


def _utc(parsed: datetime) -> datetime:
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must carry a UTC offset")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before the first representable time in UTC
        raise ValueError(_TIME_RANGE) from None
    if not EARLIEST_TIME <= utc < END_OF_TIME:
        raise ValueError(_TIME_RANGE)
    return utc


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON in a body (a JWK) as RFC 8259 has it: Python's json also reads NaN, Infinity and
    -Infinity, which are not JSON, and integers of any size. Refused, with integers beyond 64 bits."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not JSON numbers")
        elif isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**64:
            raise ValueError("integers beyond 64 bits are not accepted")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_plain_json)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Timestamp = Annotated[datetime, BeforeValidator(_iso_datetime)]
Money = Annotated[StrictInt, Field(ge=0, le=10**15, description="Minor units (öre, grosz, cent)")]
NonNegInt = Annotated[StrictInt, Field(ge=0, le=100_000)]
ShortText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
ExternalRef = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")
]
CountryCode = Annotated[StrictStr, StringConstraints(pattern=r"^[A-Z]{2}$")]
UUIDStr = Annotated[
    StrictStr, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


# --- the batch path's fast forms --------------------------------------------------------------------------
# A daily file has four dates and times on each of millions of lines. IsoDate and Timestamp call into Python
# for each (1-1.5 us a call, mostly pydantic's call itself: BENCHMARKS.md, ingest, tenth round). These two
# check the same spelling (the same expressions), calendar and range inside pydantic-core, with no call into
# Python. They accept nothing IsoDate and Timestamp refuse (tests/test_types.py), but they are not the
# contract: a time keeps its offset (it is not converted to UTC) and their errors are pydantic's own. So only
# services.lines uses them, as a first try: it converts the times to UTC, and validates a line they refuse
# again with IsoDate and Timestamp, whose result (SPEC's error, or a value they accept and these do not)
# is what counts.


class FastIsoDate:
    """IsoDate's spelling (the same expression), calendar and range, checked in pydantic-core (see above)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.chain_schema([core_schema.str_schema(pattern=_DATE.pattern, strict=True),
                                         core_schema.date_schema(ge=EARLIEST_DATE, le=LATEST_DATE)])


class FastTimestamp:
    """Timestamp's spelling, calendar and range (compared in UTC), checked in pydantic-core, its offset kept."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.chain_schema([
            core_schema.str_schema(pattern=_DATETIME.pattern, strict=True),
            core_schema.datetime_schema(ge=EARLIEST_TIME, lt=END_OF_TIME, tz_constraint="aware"),
        ])  # fmt: skip
