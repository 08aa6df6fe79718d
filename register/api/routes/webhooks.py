"""An institution's webhooks: register, rotate the secret, list deliveries, delete (services.webhooks)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status

from register.api.deps import SessionDep, StateDep, policy
from register.api.openapi import errors
from register.api.schemas import DeliveriesPublic, WebhookCreate, WebhookPublic, WebhookSecretPublic, WebhooksPublic
from register.domain.permission import Permission
from register.services import webhooks
from register.services.paging import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
CanManageWebhooks = policy(Permission.events_read)
WebhookId = Annotated[str, Path(max_length=36)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookSecretPublic,
             responses=errors(401, 403, 413, 422, "webhook_url_refused", "invalid_events"))
def create_webhook(body: WebhookCreate, session: SessionDep, state: StateDep, principal: CanManageWebhooks):
    """Register an endpoint for my institution's events (types, or a prefix such as `consent`). The
    answer's `secret` (whsec_...) signs every delivery and is shown only here."""
    w, secret = webhooks.create_webhook(session, state.cipher, principal=principal, url=body.url, events=body.events,
                                        production=state.settings.env == "prod", now=state.clock())
    return {"id": w.id, "secret": secret}


@router.get("", response_model=WebhooksPublic, responses=errors(401, 403))
def list_webhooks(session: SessionDep, principal: CanManageWebhooks):
    """My institution's webhooks (never their secrets)."""
    return {"items": [_public(w) for w in webhooks.list_webhooks(session, principal=principal)]}


def _public(w: Any) -> dict[str, Any]:
    return {"id": w.id, "url": w.url, "events": w.events, "created_at": w.created_at,
            "previous_secret_until": w.previous_until}


@router.get("/{webhook_id}", response_model=WebhookPublic, responses=errors(401, 403, 404, 422))
def get_webhook(webhook_id: WebhookId, session: SessionDep, principal: CanManageWebhooks):
    """One of my institution's webhooks, as in the list (never its secret); 404 for another's."""
    return _public(webhooks.get_webhook(session, principal=principal, webhook_id=webhook_id))


@router.post("/{webhook_id}/secret", response_model=WebhookSecretPublic, responses=errors(401, 403, 404, 422))
def rotate_secret(webhook_id: WebhookId, session: SessionDep, state: StateDep, principal: CanManageWebhooks):
    """A new signing secret. The previous one signs too (a second signature) for 24 hours."""
    w, secret = webhooks.rotate_secret(session, state.cipher, principal=principal, webhook_id=webhook_id,
                                       now=state.clock())
    return {"id": w.id, "secret": secret}


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic,
            responses=errors(401, 403, 404, 422, "invalid_cursor"))
def list_deliveries(
    webhook_id: WebhookId, session: SessionDep, principal: CanManageWebhooks,
    delivery_state: Annotated[Literal["pending", "delivered", "dead"] | None, Query(alias="state")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    """Each event sent to this webhook, newest first: attempts, the last status or error, and whether it
    was delivered, is pending a retry, or is dead-lettered (given up after the last attempt)."""
    rows = webhooks.webhook_deliveries(session, principal=principal, webhook_id=webhook_id, state=delivery_state,
                                       before=decode_cursor(cursor) if cursor else None, limit=limit)
    items = [{"id": d.id, "event_id": d.event_id, "event_seq": d.event_seq, "event_type": d.event_type,
              "state": d.state, "attempts": d.attempts, "created_at": d.created_at,
              "last_attempt_at": d.last_attempt_at, "last_status": d.last_status, "last_error": d.last_error,
              "next_attempt_at": d.next_attempt_at if d.state == "pending" else None,
              "delivered_at": d.delivered_at} for d in rows]  # fmt: skip
    more = len(rows) == limit
    return {"items": items, "next_cursor": encode_cursor(rows[-1].created_at, rows[-1].id) if more else None}


@router.delete("/{webhook_id}", response_model=WebhookPublic, responses=errors(401, 403, 404, 422))
def delete_webhook(webhook_id: WebhookId, session: SessionDep, principal: CanManageWebhooks):
    """Stop deliveries to this webhook and forget it with its deliveries; the webhook as it was."""
    return _public(webhooks.delete_webhook(session, principal=principal, webhook_id=webhook_id))
