"""Strict input types for JSON request bodies.

FastAPI validates bodies as Python objects, where pydantic's `strict=True` would refuse even ISO date
strings; these types give JSON-strict behaviour instead: integers must be JSON integers (not booleans,
not strings), dates and times must be ISO 8601 strings (not numbers), and times carry an offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt, StrictStr, StringConstraints

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})$")


def _iso_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date string YYYY-MM-DD")
    return date.fromisoformat(value)


def _iso_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _DATETIME.match(value):
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    else:
        raise ValueError("must be an RFC 3339 date-time string with an offset, e.g. 2026-11-23T10:00:00Z")
    if parsed.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    return parsed.astimezone(UTC)


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
