"""The regulator's desk API (`/v1/regulator/...`): where to look, with evidence from the access log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from register.api.deps import CanReadAudit, SessionDep, StateDep
from register.api.openapi import errors
from register.api.schemas.regulator import SignalsPublic
from register.domain.signals import SignalKind
from register.domain.types import Timestamp
from register.services import signals

router = APIRouter(prefix="/v1/regulator", tags=["audit"])


@router.get("/signals", response_model=SignalsPublic, responses=errors(401, 403, 422, "invalid_range"))
def list_signals(
    request: Request, session: SessionDep, state: StateDep, principal: CanReadAudit,
    kind: Annotated[SignalKind | None, Query(description="One kind; all when unset")] = None,
    since: Annotated[Timestamp | None, Query(description="RFC 3339; default 30 days back, at most 90")] = None,
):
    """Signals (SPEC.md, "Signals"): a person looked up by three or more lenders within 24 hours, lookups
    while the person's credit ban was on, creditors with disputes open past their deadline, and
    institutions whose granted lookups are mostly without follow-up. Each lists the access events that
    show it. Computed on request; the read is itself recorded (`regulator:signals:read`)."""
    return signals.list_signals(session, principal=principal, kind=kind, since=since, now=state.clock(),
                                follow_up_days=state.settings.follow_up_days,
                                report_deadline_days=state.settings.report_deadline_days, request_id=request.state.request_id)
