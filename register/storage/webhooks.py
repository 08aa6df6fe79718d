"""SQL for institutions' webhooks and their deliveries (tables in storage.event_tables).

A delivery is claimed by pushing its `next_attempt_at` past the attempt (its lease): a dispatcher that
dies mid-send leaves it due again later, so delivery is at least once. Claims take rows with SKIP LOCKED
on PostgreSQL (storage.dialect), so several dispatchers share the due deliveries without waiting on one
another; SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from register.storage.dialect import statements
from register.storage.event_tables import Webhook, WebhookDelivery

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def add_webhook(session: Session, webhook: Webhook) -> Webhook:
    session.add(webhook)
    session.flush()
    return webhook


def get_webhook(session: Session, webhook_id: str, *, institution_id: str | None = None,
                for_update: bool = False) -> Webhook | None:
    stmt = select(Webhook).where(Webhook.id == webhook_id)
    if institution_id is not None:
        stmt = stmt.where(Webhook.institution_id == institution_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def webhooks_of(session: Session, institution_ids: Iterable[str]) -> list[Webhook]:
    ids = list(set(institution_ids))
    if not ids:
        return []
    return list(session.scalars(select(Webhook).where(Webhook.institution_id.in_(ids))
                                .order_by(Webhook.created_at, Webhook.id)))


def delete_webhook(session: Session, webhook_id: str) -> None:
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.execute(delete(Webhook).where(Webhook.id == webhook_id))


def add_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(WebhookDelivery), rows)


def any_due(session: Session, *, now: datetime) -> bool:
    return session.execute(select(WebhookDelivery.id).where(
        WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now).limit(1)).first() is not None


def claim_due(session: Session, *, now: datetime, limit: int, lease_until: Any) -> list[WebhookDelivery]:
    """Up to `limit` pending deliveries due at `now`, oldest first, each counted as one more attempt and
    leased until `lease_until(attempts)` (its next attempt, should this one not report back)."""
    stmt = statements(session).skip_locked(
        select(WebhookDelivery).where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))  # fmt: skip
    rows = list(session.scalars(stmt))
    for d in rows:
        d.attempts += 1
        d.last_attempt_at = now
        d.next_attempt_at = lease_until(d.attempts)
    session.flush()
    return rows


def finish_attempt(session: Session, delivery_id: str, *, attempts: int, state: str, status: int | None,
                   error: str | None, now: datetime, next_attempt_at: datetime | None = None) -> None:
    """Record one attempt's outcome, unless the row moved on meanwhile (another attempt claimed it)."""
    values: dict[str, Any] = {"state": state, "last_status": status, "last_error": (error or None) and error[:300]}
    if state == DELIVERED:
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    session.execute(update(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempts,
        WebhookDelivery.state == PENDING).values(**values))  # fmt: skip


def deliveries(session: Session, *, webhook_id: str | None = None, state: str | None = None,
               before: tuple[datetime, str] | None = None, limit: int) -> list[WebhookDelivery]:
    """Newest first, paged by (created_at, id)."""
    stmt = select(WebhookDelivery)
    if webhook_id is not None:
        stmt = stmt.where(WebhookDelivery.webhook_id == webhook_id)
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    if before is not None:
        at, did = before
        stmt = stmt.where((WebhookDelivery.created_at < at)
                          | ((WebhookDelivery.created_at == at) & (WebhookDelivery.id < did)))
    order = (WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return list(session.scalars(stmt.order_by(*order).limit(limit)))


def retry_dead(session: Session, *, now: datetime, delivery_id: str | None = None) -> int:
    """Put dead deliveries (one, or all) back to pending, due now, with a fresh count of attempts."""
    stmt = update(WebhookDelivery).where(WebhookDelivery.state == DEAD)
    if delivery_id is not None:
        stmt = stmt.where(WebhookDelivery.id == delivery_id)
    return session.execute(stmt.values(state=PENDING, attempts=0, next_attempt_at=now)).rowcount or 0


def delete_finished_before(session: Session, cutoff: datetime, *, limit: int = 5000) -> int:
    """Delete up to `limit` delivered or dead deliveries created before `cutoff` (the retention run)."""
    ids = list(session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.state != PENDING, WebhookDelivery.created_at < cutoff).limit(limit)))
    if ids:
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)


def count_by_state(session: Session) -> dict[str, int]:
    found = dict(session.execute(select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)).all())
    return {k: found.get(k, 0) for k in (PENDING, DELIVERED, DEAD)}
