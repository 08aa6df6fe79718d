"""The feed of events (GET /v1/events) and webhooks (POST /v1/webhooks ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.domain.obligation import StrictModel

EXAMPLE_EVENT = {"seq": 1042, "id": "0b6f5a1e-4d1c-4a57-9d7e-3c8f2a9b6e10", "type": "consent.revoked",
                 "occurred_at": "2026-12-04T10:15:00Z",
                 "data": {"consent_id": "5f1c9e2a-7b3d-4c8e-a1f0-2d6b9e4c7a31", "purpose": "credit_application",
                          "source": "consumer", "expires_at": "2027-01-03T10:00:00Z"}}  # fmt: skip
EventName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)]


class EventPublic(BaseModel):
    seq: int = Field(description="Grows in commit order; pass the last one seen as `after`")
    id: str = Field(description="Stable: the same in the feed and in every delivery of this event (webhook-id)")
    type: str = Field(description="consent.given, consent.revoked, dispute.opened, dispute.answered, "
                                  "dispute.withdrawn, dispute.overdue, report.finished, ...")
    occurred_at: datetime
    data: dict[str, Any] = Field(description="Ids and states, never an identity number")


class EventsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EXAMPLE_EVENT], "next_after": 1042}]})

    items: list[EventPublic]
    next_after: int = Field(description="Pass as `after` for the next page (the same value when nothing is new)")


class WebhookCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"url": "https://lender.example/hooks/register", "events": ["consent", "dispute.opened"]}]})

    url: Annotated[StrictStr, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="https, to a public address (in development also http to loopback)")
    events: list[EventName] = Field(min_length=1, max_length=20,
                                    description="Event types, or a prefix: `consent` means every `consent.*`")


class WebhookSecretPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "8d3e2f1a-6b5c-4d7e-9f0a-1b2c3d4e5f60", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]})

    id: str
    secret: str = Field(description="Shown once. After a rotation the previous secret signs too, for 24 hours")


EXAMPLE_WEBHOOK = {"id": "8d3e2f1a-6b5c-4d7e-9f0a-1b2c3d4e5f60", "url": "https://lender.example/hooks/register",
                   "events": ["consent", "dispute.opened"], "created_at": "2026-12-01T09:00:00Z",
                   "previous_secret_until": None}
EXAMPLE_DELIVERY = {"id": "3a9c4e2b-1d7f-4b6a-8e5c-0f2d9b7a6c41", "event_id": EXAMPLE_EVENT["id"], "event_seq": 1042,
                    "event_type": "consent.revoked", "state": "pending", "attempts": 3,
                    "created_at": "2026-12-04T10:15:01Z", "last_attempt_at": "2026-12-04T10:15:36Z",
                    "last_status": 500, "last_error": "answered 500", "next_attempt_at": "2026-12-04T10:15:52Z",
                    "delivered_at": None}  # fmt: skip


class WebhookPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_WEBHOOK]})

    id: str
    url: str
    events: list[str]
    created_at: datetime
    previous_secret_until: datetime | None = Field(description="Until when the previous secret signs too")


class WebhooksPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EXAMPLE_WEBHOOK]}]})

    items: list[WebhookPublic]


class DeliveryPublic(BaseModel):
    id: str
    event_id: str
    event_seq: int
    event_type: str
    state: Literal["pending", "delivered", "dead"] = Field(description="dead: given up after the last attempt")
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="The receiver's HTTP status at the last attempt")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next")
    delivered_at: datetime | None


class DeliveriesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EXAMPLE_DELIVERY], "next_cursor": None}]})

    items: list[DeliveryPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for older deliveries; null at the end")
