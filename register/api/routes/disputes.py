"""Disputes on a creditor's own lines: list them, read one, answer it. Another institution's is 404."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from register.api.deps import CanAnswerDisputes, SessionDep, StateDep
from register.api.openapi import errors
from register.api.schemas import DisputeAnswer, DisputePublic, DisputesPublic
from register.services import disputes

router = APIRouter(prefix="/v1/disputes", tags=["disputes"])
DisputeId = Annotated[str, Path(max_length=36)]
StateFilter = Literal["open", "overdue", "corrected", "upheld", "withdrawn"]


@router.get("", response_model=DisputesPublic, responses=errors(401, 403, 422))
def list_disputes(
    request: Request, session: SessionDep, state: StateDep, principal: CanAnswerDisputes,
    dispute_state: Annotated[StateFilter | None, Query(alias="state", description="open includes overdue")] = None,
):
    """Disputes on my institution's lines, earliest deadline first, with the person's words."""
    return {"items": disputes.creditor_disputes(session, state.cipher, principal=principal, state=dispute_state,
                                                now=state.clock(), request_id=request.state.request_id)}


@router.get("/{dispute_id}", response_model=DisputePublic, responses=errors(401, 403, 404, 422))
def get_dispute(dispute_id: DisputeId, request: Request, session: SessionDep, state: StateDep,
                principal: CanAnswerDisputes):
    """One dispute on my institution's lines."""
    return disputes.creditor_dispute(session, state.cipher, principal=principal, dispute_id=dispute_id,
                                     now=state.clock(), request_id=request.state.request_id)


@router.post("/{dispute_id}/answer", response_model=DisputePublic,
             responses=errors(401, 403, 404, "dispute_closed", 413, 422))
def answer_dispute(dispute_id: DisputeId, body: DisputeAnswer, request: Request, session: SessionDep,
                   state: StateDep, principal: CanAnswerDisputes):
    """Answer a dispute: `corrected` (report the corrected line too) or `upheld` with the explanation the
    person will read. An answer after the deadline is taken, and logged as late."""
    return disputes.answer_dispute(session, state.cipher, principal=principal, dispute_id=dispute_id,
                                   outcome=body.outcome, explanation=body.explanation, now=state.clock(),
                                   request_id=request.state.request_id)
