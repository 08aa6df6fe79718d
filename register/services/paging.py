"""Opaque keyset cursors: (time, id) of the last item on a page."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from register.domain.types import parse_time
from register.errors import InvalidInput

MAX_PAGE = 1000


def encode_cursor(ts: datetime, item_id: str) -> str:
    raw = json.dumps({"u": ts.isoformat(), "i": item_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        # A cursor comes back from the client: its time is read like any other time a client sends.
        return parse_time(doc["u"]), str(doc["i"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("cursor is not one this API returned", code="invalid_cursor") from None
