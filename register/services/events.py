"""Recording access events: every look and every change, in the transaction of the work it records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.domain.permission import Principal
from register.storage.events import EventRecord, add_event


def record_event(
    session: Session,
    *,
    principal: Principal,
    action: str,
    now: datetime,
    outcome: str = "ok",
    subject: bytes | None = None,
    purpose: str | None = None,
    consent_id: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> EventRecord:
    """Add one event. It commits with the request's transaction or not at all: if it cannot be written,
    the request fails and returns nothing."""
    return add_event(session, {
        "id": str(uuid.uuid4()), "occurred_at": now, "actor_type": principal.actor_type,
        "actor_id": principal.institution_id, "actor_role": principal.role.value, "action": action,
        "subject": subject if subject is not None else principal.subject, "purpose": purpose,
        "consent_id": consent_id, "outcome": outcome, "reason": reason, "request_id": request_id,
        "details": details,
    })  # fmt: skip
