from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response

from register.api import examples as ex
from register.api.deps import CanReadObligations, CanWriteObligations, SessionDep, StateDep
from register.api.openapi import errors
from register.api.schemas import ObligationHistory, ObligationPublic, ObligationsPublic, ObligationVersionPublic
from register.domain.obligation import ObligationReport, Status
from register.domain.types import Timestamp
from register.services import obligations as svc
from register.services.paging import MAX_PAGE

router = APIRouter(prefix="/v1/obligations", tags=["obligations"])

RefPath = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$", description="The reporter's own reference")
]
IfMatch = Annotated[str | None, Header(description="Optional ETag from an earlier answer; 412 if it has changed")]


@router.put(
    "/{external_ref}",
    response_model=ObligationPublic,
    responses={
        201: {"model": ObligationPublic, "description": "Created"},
        **errors(401, 403, "collector_only", "stale_update", 412, 413, 422, "invalid_national_id",
                 "duplicate_debtor", "invalid_obligation"),
    },
)
def put_obligation(
    external_ref: RefPath,
    body: Annotated[ObligationReport, Body(openapi_examples=ex.OBLIGATION_REPORTS)],
    request: Request,
    response: Response,
    session: SessionDep,
    state: StateDep,
    principal: CanWriteObligations,
    if_match: IfMatch = None,
):
    """Report the current state of a debt this institution holds: creates it (201) or records a new
    version (200). A state older than the stored one is refused with 409 and changes nothing. Only a
    collector may report `collects` (403 collector_only); the claim counts the collected debt once only
    when that line's creditor names it back in `handed_to` (`collection_link`)."""
    outcome = svc.report_obligation(
        session, state.cipher, principal=principal, external_ref=external_ref, report=body, now=state.clock(),
        allow_test_ids=state.settings.accept_test_identities, request_id=request.state.request_id,
        if_match=if_match,
    )
    response.status_code = 201 if outcome.created else 200
    response.headers["ETag"] = outcome.view.etag
    if outcome.created:
        response.headers["Location"] = f"/v1/obligations/{external_ref}"
    return ObligationPublic.of(outcome.view)


@router.get("/{external_ref}", response_model=ObligationPublic, responses=errors(401, 403, 404, 410, 422))
def get_obligation(
    external_ref: RefPath, request: Request, response: Response, session: SessionDep, state: StateDep,
    principal: CanReadObligations,
):
    """One obligation this institution reported. Another institution's is 404, as if it did not exist.
    Each debtor it names finds the read in their access log."""
    view = svc.get_obligation(session, state.cipher, principal=principal, external_ref=external_ref,
                              now=state.clock(), request_id=request.state.request_id)
    response.headers["ETag"] = view.etag
    return ObligationPublic.of(view)


@router.get("/{external_ref}/versions", response_model=ObligationHistory, responses=errors(401, 403, 404, 422))
def get_obligation_versions(
    external_ref: RefPath, request: Request, session: SessionDep, state: StateDep, principal: CanReadObligations
):
    """Every accepted change to one of this institution's obligations: who, when, and the state it made.
    Each person any version names finds the read in their access log."""
    views, link = svc.obligation_history(session, state.cipher, principal=principal, external_ref=external_ref,
                                         now=state.clock(), request_id=request.state.request_id)
    return ObligationHistory(external_ref=external_ref, collection_link=link,
                             versions=[ObligationVersionPublic.of(v) for v in views])


@router.get("", response_model=ObligationsPublic, responses=errors(401, 403, 422, "invalid_cursor"))
def list_obligations(
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: CanReadObligations,
    status: Status | None = None,
    updated_since: Annotated[Timestamp | None, Query(description="RFC 3339 with offset")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
):
    """This institution's obligations, oldest change first, in pages (retracted ones left out). Each person
    a page names finds one read in their access log."""
    views, next_cursor = svc.list_obligations(
        session, state.cipher, principal=principal, status=status.value if status else None,
        updated_since=updated_since, cursor=cursor, limit=limit, now=state.clock(),
        request_id=request.state.request_id,
    )
    return ObligationsPublic(items=[ObligationPublic.of(v) for v in views], next_cursor=next_cursor)


@router.delete("/{external_ref}", response_model=ObligationPublic, responses=errors(401, 403, 404, 410, 412, 422))
def retract_obligation(
    external_ref: RefPath,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="Why the report was wrong")],
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: CanWriteObligations,
    if_match: IfMatch = None,
):
    """Retract a report made in error. It disappears from every later answer and stays in the history."""
    view = svc.retract_obligation(
        session, state.cipher, principal=principal, external_ref=external_ref, reason=reason, now=state.clock(),
        request_id=request.state.request_id, if_match=if_match,
    )
    return ObligationPublic.of(view)
