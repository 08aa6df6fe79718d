"""The feed of events, webhooks, and verifying a webhook delivery (Standard Webhooks).

A delivery carries three headers: `webhook-id` (the event's id, the same on every retry: keep the ids
you have handled and skip a repeat), `webhook-timestamp` (Unix seconds of this attempt) and
`webhook-signature` (`v1,<base64 HMAC-SHA256>` of `"{id}.{timestamp}.{body}"`, one per live secret,
space-separated: after a rotation the previous secret signs too for 24 hours). `verify_webhook` checks
all three against the raw body and returns the parsed event; a forged, altered, stale or replayed
delivery raises `WebhookVerificationError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StrictStr, StringConstraints

DEFAULT_TOLERANCE = 300  # seconds a delivery's timestamp may be from now, either way


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(_Response):
    """One change that concerns your institution: in the feed, and the body of a webhook delivery."""

    seq: int  # grows in commit order; pass the last one handled as `after`
    id: str  # stable: the same in the feed and in every delivery (webhook-id)
    type: str  # consent.given, consent.revoked, dispute.opened, dispute.answered, dispute.withdrawn, ...
    occurred_at: datetime
    data: dict[str, Any]


class EventPage(_Response):
    items: list[Event]
    next_after: int


class WebhookSecret(_Response):
    id: str
    secret: str  # whsec_...: shown once


class Webhook(_Response):
    id: str
    url: str
    events: list[str]
    created_at: datetime
    previous_secret_until: datetime | None


class WebhookList(_Response):
    items: list[Webhook]


class Delivery(_Response):
    id: str
    event_id: str
    event_seq: int
    event_type: str
    state: str  # pending, delivered, dead (given up after the last attempt)
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class DeliveryPage(_Response):
    items: list[Delivery]
    next_cursor: str | None


class WebhookCreate(BaseModel):
    """`POST /v1/webhooks`: where to send, and which event types (or prefixes such as `consent`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[StrictStr, StringConstraints(min_length=1, max_length=2000)]
    events: list[Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)]]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class WebhookVerificationError(Exception):
    """A delivery that is not the register's, was altered, is too old or too new, or was seen before."""


class WebhookEvent(_Response):
    """A verified delivery's body."""

    id: str
    seq: int
    type: str
    timestamp: datetime
    data: dict[str, Any]


def _expected(secret: str, msg_id: str, timestamp: str, body: bytes) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secrets: str | Iterable[str], *,
                   tolerance: int = DEFAULT_TOLERANCE, now: float | None = None,
                   seen: set[str] | None = None) -> WebhookEvent:
    """The delivery's event, if one of `secrets` signed exactly this body with these id and timestamp
    headers and the timestamp is within `tolerance` seconds of `now`. Pass every secret you hold while
    rotating (old and new). `seen`: ids already handled; a delivery whose id is in it is refused as a
    replay, and a verified one's id is added to it."""
    body = body.encode() if isinstance(body, str) else body
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp, signatures = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - sent) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance (a replay, or a wrong clock)")
    given = []
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        if version == "v1":
            try:
                given.append(base64.b64decode(value, validate=True))
            except binascii.Error:
                continue
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not any(hmac.compare_digest(_expected(k, msg_id, timestamp, body), g) for k in keys for g in given):
        raise WebhookVerificationError("no signature matches")
    if seen is not None:
        if msg_id in seen:
            raise WebhookVerificationError(f"event {msg_id} was delivered before")
        seen.add(msg_id)
    try:
        event = WebhookEvent.model_validate(json.loads(body))
    except ValueError:
        raise WebhookVerificationError("the body is not an event") from None
    if event.id != msg_id:
        raise WebhookVerificationError("webhook-id does not name the body's event")
    return event
