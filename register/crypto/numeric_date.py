"""JWT time claims (`exp`, `iat`, `nbf`: RFC 7519 NumericDate, seconds since the epoch) as the register
accepts them: a JSON number, not a boolean, finite, from 0 (1970) to before 9999-12-31T00:00:00Z, the end
of the times the API accepts anywhere (register.domain.types).

Python's json reads `NaN`, `Infinity` and integers of any size, and every comparison with NaN is false:
unchecked, a NaN `iat` skips an `exp - iat` bound, and an `exp` of 1e400, Infinity or 10**400 overflows
where it becomes a float or a datetime. (math.isfinite itself overflows on such an integer: floats only.)
"""

from __future__ import annotations

import math
from typing import Any

END_OF_TIME = 253_402_214_400  # 9999-12-31T00:00:00Z, exclusive


def numeric_date(claims: dict[str, Any], name: str) -> int | float | None:
    """The claim's value, None when it is absent. ValueError (safe to show: it names the claim, never its
    value) when it is not a NumericDate in range."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number (seconds since the epoch)")
    if isinstance(value, float) and not math.isfinite(value) or not 0 <= value < END_OF_TIME:
        raise ValueError(f"{name} must be a finite number of seconds from 1970 to before 9999-12-31")
    return value


def required_numeric_date(claims: dict[str, Any], name: str) -> int | float:
    value = numeric_date(claims, name)
    if value is None:
        raise ValueError(f"{name} is missing")
    return value
