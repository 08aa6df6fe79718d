"""Canonical JSON: the one encoding the register hashes (leaves, obligation states, exposure answers).

Keys sorted, no insignificant whitespace, UTF-8, no NaN; times as RFC 3339 UTC with `Z`. For the values
the register hashes (strings, integers, null, booleans and objects and arrays of them) this is RFC 8785
(JCS).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not canonical JSON: {type(value).__name__}")


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_default).encode()
