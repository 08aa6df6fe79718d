"""An institution's feed (`GET /v1/events?after=SEQ&limit=N`): the outbox events that concern it (its
consents, disputes on its lines, its reports), oldest first, from any `seq` within the last
REGISTER_EVENT_FEED_DAYS (the retention run deletes older ones). `seq` grows in commit order, so a reader
that passes back `next_after` never misses an event and may replay from any earlier point."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from register.domain.permission import Principal
from register.storage import outbox


def feed(session: Session, *, principal: Principal, after: int, limit: int, now: datetime,
         days: int) -> dict[str, Any]:
    assert principal.institution_id is not None
    rows = outbox.events_after(session, after, limit=limit, institution_id=principal.institution_id,
                               since=now - timedelta(days=days))
    return {"items": [{"seq": e.seq, "id": e.id, "type": e.type, "occurred_at": e.occurred_at, "data": e.data}
                      for e in rows],
            "next_after": rows[-1].seq if rows else after}  # fmt: skip
