"""An institution's feed of the changes that concern it (services.events_feed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from register.api.deps import SessionDep, StateDep, policy
from register.api.openapi import errors
from register.api.schemas import EventsPublic
from register.domain.permission import Permission
from register.services import events_feed

router = APIRouter(prefix="/v1/events", tags=["events"])
CanReadEvents = policy(Permission.events_read)


@router.get("", response_model=EventsPublic, responses=errors(401, 403, 422))
def list_events(
    session: SessionDep, state: StateDep, principal: CanReadEvents,
    after: Annotated[int, Query(ge=0, le=2**62, description="The last `seq` seen (0: from the oldest kept)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    """The changes that concern my institution after `after`, oldest first: its consents given and
    revoked, disputes on its lines, its reports finished. Replayable from any `seq` of the last
    REGISTER_EVENT_FEED_DAYS days (30 by default)."""
    return events_feed.feed(session, principal=principal, after=after, limit=limit, now=state.clock(),
                            days=state.settings.event_feed_days)
