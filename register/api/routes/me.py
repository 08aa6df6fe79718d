from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from register.api.deps import CanReadOwnData, SessionDep, StateDep
from register.api.openapi import errors
from register.api.routes.consents import consent_public
from register.api.schemas import (
    AccessEventPublic, AccessEventsPublic, ConsentsPublic, EventProofPublic, MyObligationsPublic,
)
from register.services import me

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get("/obligations", response_model=MyObligationsPublic, responses=errors(401, 403))
def my_obligations(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """Every debt reported about me (own, joint, guaranteed, and closed ones), with creditor names and the
    totals a lender would see."""
    return me.my_obligations(session, state.cipher, principal=principal, now=state.clock(),
                             request_id=request.state.request_id)


@router.get("/access-log", response_model=AccessEventsPublic, responses=errors(401, 403))
def my_access_log(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """Every time an institution or regulator looked at or changed my data, granted or refused, newest first."""
    rows = me.my_access_log(session, state.cipher, principal=principal, now=state.clock(),
                            request_id=request.state.request_id)
    return AccessEventsPublic(items=[event_public(e, n, leaf) for e, n, leaf in rows])


@router.get("/access-log/{event_id}/proof", response_model=EventProofPublic,
            responses=errors(401, 403, 404, "not_yet_integrated", 422))
def my_event_proof(
    event_id: Annotated[str, Path(max_length=36)], session: SessionDep, principal: CanReadOwnData
):
    """Proof that an access shown to me is in the verifiable log: the leaf (the event's canonical bytes),
    its inclusion proof, and the signed checkpoint it is proved against. 409 until it is integrated."""
    return me.my_event_proof(session, principal=principal, event_id=event_id)


@router.get("/consents", response_model=ConsentsPublic, responses=errors(401, 403))
def my_consents(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """Every consent I gave or that an institution recorded for me, active and past."""
    now = state.clock()
    rows = me.my_consents(session, state.cipher, principal=principal, now=now, request_id=request.state.request_id)
    return ConsentsPublic(items=[consent_public(c, now=now, name=n) for c, n in rows])


def event_public(e, name: str | None, leaf_index: int | None = None) -> AccessEventPublic:
    return AccessEventPublic(
        id=e.id, occurred_at=e.occurred_at, actor_type=e.actor_type, actor_id=e.actor_id, actor_name=name,
        actor_role=e.actor_role, action=e.action, purpose=e.purpose, consent_id=e.consent_id, outcome=e.outcome,
        reason=e.reason, request_id=e.request_id, details=e.details, leaf_index=leaf_index,
    )
