"""The leaf: one access event, as canonical bytes.

Definition: a leaf is the RFC 8785 (JCS) canonical JSON of the event's fields below and `v`, its
version. Every value is a string, an integer, null, or an object of those (`details`), for which JCS is
exactly: keys sorted, no insignificant whitespace, UTF-8, strings escaped as JSON requires. Times are
RFC 3339 UTC with exactly six fractional digits and `Z`; the subject is the lowercase hex of its bytes:
in version 1 the person's blind index, in version 2 a random pseudonym of the person for the month the
event happened in (not derivable from the identity number; SPEC.md section 4, "Leaves"). The stored
event row re-encodes to exactly these bytes, in the version it was written in (`leaf_version`, absent
or NULL for version 1): `register audit verify` relies on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from register.canonical import canonical_json

LEAF_VERSION = 2  # the version new events are written in
FIELDS = (
    "id", "occurred_at", "actor_type", "actor_id", "actor_role", "action", "subject", "purpose",
    "consent_id", "outcome", "reason", "request_id", "details",
)  # fmt: skip


class EventLike(Protocol):
    id: str
    occurred_at: datetime
    subject: bytes | None
    details: dict[str, Any] | None


def format_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaf_fields(event: EventLike) -> dict[str, Any]:
    doc: dict[str, Any] = {f: getattr(event, f) for f in FIELDS}
    doc["occurred_at"] = format_time(event.occurred_at)
    doc["subject"] = event.subject.hex() if event.subject is not None else None
    doc["v"] = getattr(event, "leaf_version", None) or 1
    return doc


def encode_leaf(event: EventLike) -> bytes:
    return canonical_json(leaf_fields(event))
