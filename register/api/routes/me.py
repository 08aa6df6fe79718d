from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from register.api.deps import CanReadOwnData, CanWriteOwnData, SessionDep, StateDep
from register.api.openapi import errors
from register.api.presenters import consent_public, event_public
from register.api.schemas import (
    AccessEventsPublic, ConsentsPublic, CreditBanPublic, CreditBanSet, DisputeCreate,
    DisputePublic, DisputesPublic, DisputeStatement, EventProofPublic, MyObligationsPublic, MyRetentionPublic,
    NotificationsPublic, NotificationsSet,
)
from register.services import credit_ban, disputes, keeping, me, notices
from register.services.retention import policy_of
from register.services.paging import MAX_PAGE

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get("/obligations", response_model=MyObligationsPublic, responses=errors(401, 403))
def my_obligations(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """Every debt reported about me (own, joint, guaranteed, and closed ones), with creditor names and the
    totals a lender would see."""
    return me.my_obligations(session, state.cipher, principal=principal, now=state.clock(),
                             request_id=request.state.request_id)


@router.get("/access-log", response_model=AccessEventsPublic, responses=errors(401, 403, 422, "invalid_cursor"))
def my_access_log(
    request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
):
    """Every time an institution or regulator looked at or changed my data, granted or refused, newest
    first, a page at a time: `next_cursor` leads to older events until there are none."""
    rows, next_cursor = me.my_access_log(session, state.cipher, principal=principal, now=state.clock(),
                                         request_id=request.state.request_id, cursor=cursor, limit=limit)
    return AccessEventsPublic(items=[event_public(e, n, leaf) for e, n, leaf in rows], next_cursor=next_cursor)


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


@router.get("/retention", response_model=MyRetentionPublic, responses=errors(401, 403))
def my_retention(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """What the register keeps about me and until when: every line naming me with the rule that will
    delete it and when its period ends (null while it is live), and every rule's period."""
    return keeping.what_we_keep(session, state.cipher, principal=principal, policy=policy_of(state.settings),
                                now=state.clock(), run_interval_seconds=state.settings.retention_interval_seconds,
                                request_id=request.state.request_id)


# --- disputes --------------------------------------------------------------------------------------

DisputeId = Annotated[str, Path(max_length=36)]


@router.get("/disputes", response_model=DisputesPublic, responses=errors(401, 403))
def my_disputes(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """Every dispute I opened, newest first: its state (open, overdue, corrected, upheld, withdrawn), its
    deadline, and the creditor's answer."""
    return {"items": disputes.my_disputes(session, state.cipher, principal=principal, now=state.clock(),
                                          request_id=request.state.request_id)}


@router.post("/disputes", status_code=status.HTTP_201_CREATED, response_model=DisputePublic,
             responses=errors(401, 403, 404, "dispute_open", 413, 422))
def open_dispute(body: DisputeCreate, request: Request, session: SessionDep, state: StateDep,
                 principal: CanWriteOwnData):
    """Say that one of my lines is wrong. The creditor must answer within the deadline (30 days by
    default); until then the line is marked `disputed` in every exposure answer. A line that is not mine
    is 404, like one that does not exist."""
    now = state.clock()
    d = disputes.open_dispute(session, state.cipher, principal=principal, obligation_id=body.obligation,
                              reason=body.reason, text=body.text, now=now, days=state.settings.dispute_days,
                              request_id=request.state.request_id)  # fmt: skip
    return disputes.my_dispute(session, state.cipher, principal=principal, dispute_id=d.id, now=now)


@router.get("/disputes/{dispute_id}", response_model=DisputePublic, responses=errors(401, 403, 404, 422))
def my_dispute(dispute_id: DisputeId, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """One of my disputes."""
    return disputes.my_dispute(session, state.cipher, principal=principal, dispute_id=dispute_id, now=state.clock())


@router.post("/disputes/{dispute_id}/withdraw", response_model=DisputePublic,
             responses=errors(401, 403, 404, "dispute_closed", 422))
def withdraw_dispute(dispute_id: DisputeId, request: Request, session: SessionDep, state: StateDep,
                     principal: CanWriteOwnData):
    """Withdraw an open dispute: the line is no longer marked disputed."""
    now = state.clock()
    disputes.withdraw_dispute(session, state.cipher, principal=principal, dispute_id=dispute_id, now=now,
                              request_id=request.state.request_id)
    return disputes.my_dispute(session, state.cipher, principal=principal, dispute_id=dispute_id, now=now)


@router.put("/disputes/{dispute_id}/statement", response_model=DisputePublic,
            responses=errors(401, 403, 404, "dispute_not_upheld", 413, 422, "statement_too_long"))
def put_statement(dispute_id: DisputeId, body: DisputeStatement, request: Request, session: SessionDep,
                  state: StateDep, principal: CanWriteOwnData):
    """After the creditor upheld the line: my own statement (at most 200 words), shown with the line in
    every later exposure answer about me. A new statement replaces the old."""
    now = state.clock()
    disputes.add_statement(session, state.cipher, principal=principal, dispute_id=dispute_id,
                           statement=body.statement, now=now, request_id=request.state.request_id)
    return disputes.my_dispute(session, state.cipher, principal=principal, dispute_id=dispute_id, now=now)


# --- the credit ban --------------------------------------------------------------------------------


@router.get("/credit-ban", response_model=CreditBanPublic, responses=errors(401, 403))
def get_credit_ban(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """Whether my credit ban is on, since when and why, and when a requested lift takes effect."""
    return credit_ban.get_ban(session, state.cipher, principal=principal, now=state.clock(),
                              request_id=request.state.request_id)


@router.put("/credit-ban", response_model=CreditBanPublic,
            responses=errors(401, 403, 413, 422, "invalid_credit_ban"))
def put_credit_ban(body: CreditBanSet, request: Request, session: SessionDep, state: StateDep,
                   principal: CanWriteOwnData):
    """Set a credit ban on myself, at once (or change it; setting it again takes back a lift not yet in
    effect). Advisory: lenders still see my data, with the ban at the top of every answer, and every
    lookup while it is on is logged as such."""
    return credit_ban.set_ban(session, state.cipher, principal=principal, reason=body.reason, until=body.until,
                              now=state.clock(), request_id=request.state.request_id)


@router.delete("/credit-ban", status_code=status.HTTP_202_ACCEPTED, response_model=CreditBanPublic,
               responses=errors(401, 403, 404))
def delete_credit_ban(request: Request, session: SessionDep, state: StateDep, principal: CanWriteOwnData):
    """Ask to lift my credit ban. Accepted, not done: the ban stays on for one more hour (setting), so a
    lift made under pressure can be taken back by setting the ban again."""
    return credit_ban.request_lift(session, state.cipher, principal=principal, now=state.clock(),
                                   delay_seconds=state.settings.credit_ban_lift_seconds,
                                   request_id=request.state.request_id)


# --- notices ---------------------------------------------------------------------------------------


@router.get("/notifications", response_model=NotificationsPublic, responses=errors(401, 403))
def get_notifications(request: Request, session: SessionDep, state: StateDep, principal: CanReadOwnData):
    """How I am told of lookups: the address, whether it is confirmed, which events, a mail each or a daily
    digest, and how many notices wait to be sent."""
    return notices.get(session, state.cipher, principal=principal, now=state.clock(),
                       request_id=request.state.request_id)


@router.put("/notifications", response_model=NotificationsPublic, responses=errors(401, 403, 413, 422))
def put_notifications(body: NotificationsSet, request: Request, session: SessionDep, state: StateDep,
                      principal: CanWriteOwnData):
    """Be told by e-mail. A new address is stored unconfirmed and gets one mail with a link to
    /app/notifications/confirm, where a button confirms it; nothing else is sent to it until then.
    Notices never contain the identity number or amounts."""
    assert principal.national_id is not None
    language = body.language or notices.default_language(principal.national_id.country)
    return notices.put(session, state.cipher, principal=principal, email=body.email, events=list(body.events),
                       digest=body.digest, language=language, now=state.clock(),
                       request_id=request.state.request_id)


@router.delete("/notifications", response_model=NotificationsPublic, responses=errors(401, 403, 404))
def delete_notifications(request: Request, session: SessionDep, state: StateDep, principal: CanWriteOwnData):
    """Turn notices off: the address and every notice still waiting are deleted. The answer is the state
    now (off); 404 if they were not on."""
    notices.delete(session, principal=principal, now=state.clock(), request_id=request.state.request_id)
    return notices.state(state.cipher, None)
