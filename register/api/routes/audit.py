from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from register.api.deps import CanReadAudit, SessionDep, StateDep
from register.api.routes.me import event_public
from register.api.schemas import AccessEventsPublic, EventSearch
from register.domain.types import Timestamp, UUIDStr
from register.services.audit_events import search_events
from register.services.paging import MAX_PAGE
from register.storage.events import EventFilter

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/events", response_model=AccessEventsPublic)
def list_events(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: CanReadAudit,
    institution_id: UUIDStr | None = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[Timestamp | None, Query(description="RFC 3339, inclusive")] = None,
    until: Annotated[Timestamp | None, Query(description="RFC 3339, exclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
):
    """The access log in time order, filtered. To narrow to one person, use POST /v1/audit/events/search,
    so that identity numbers stay out of URLs."""
    flt = EventFilter(institution_id=institution_id, action=action, outcome=outcome, since=since, until=until)
    rows, next_cursor = search_events(
        session, state.cipher, principal=principal, flt=flt, identity=None, cursor=cursor, limit=limit,
        now=state.clock(), request_id=request.state.request_id, allow_test_ids=state.settings.accept_test_identities,
    )
    return AccessEventsPublic(items=[event_public(e, n) for e, n in rows], next_cursor=next_cursor)


@router.post("/events/search", response_model=AccessEventsPublic)
def search(body: EventSearch, request: Request, session: SessionDep, state: StateDep, principal: CanReadAudit):
    """The access-log events about one person (by blind index), with the same filters as GET /v1/audit/events."""
    flt = EventFilter(institution_id=body.institution_id, action=body.action, outcome=body.outcome,
                      since=body.since, until=body.until)
    rows, next_cursor = search_events(
        session, state.cipher, principal=principal, flt=flt, identity=(body.country, body.national_id),
        cursor=body.cursor, limit=body.limit, now=state.clock(), request_id=request.state.request_id,
        allow_test_ids=state.settings.accept_test_identities,
    )
    return AccessEventsPublic(items=[event_public(e, n) for e, n in rows], next_cursor=next_cursor)
