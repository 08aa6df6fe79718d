"""The person's disputes and credit ban, as pages: the same services as /v1/me/disputes and
/v1/me/credit-ban, with the session's principal."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from register.api.deps import SessionDep, StateDep
from register.domain.permission import Permission
from register.domain.types import check_time, parse_date
from register.errors import Conflict, InvalidInput, NotFound
from register.services import credit_ban, disputes, me
from register.web import labels
from register.web.i18n import Formats
from register.web.render import PageRoute, redirect, render
from register.web.session import PersonReads, SignedIn, signed_in
from register.web.summary import ban_end

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)
PersonWrites = signed_in(Permission.me_write)
Id = Annotated[str, Path(max_length=36)]
MAX_TEXT = 4000  # as the API's FreeText


@router.get("/disputes")
def disputes_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    done = next((k for k in ("opened", "withdrawn", "statement", "already") if k in request.query_params), None)
    return _disputes(request, session, state, person, done=done)


def _disputes(request: Request, session, state, person: SignedIn, *, done: str | None = None,
              too_long: dict | None = None, status: int = 200) -> Response:
    """The disputes page; `too_long`: a statement over the word limit, shown again in its form, counted."""
    items = disputes.my_disputes(session, state.cipher, principal=person.principal, now=state.clock(),
                                 request_id=request.state.request_id)
    # Each dispute's debt by kind and reference: two debts at one creditor are told apart.
    debts = me.my_debts_named(session, state.cipher, principal=person.principal,
                              obligation_ids=[d["obligation"] for d in items])
    return render(request, "disputes.html", status=status, person=person, items=items, debts=debts, labels=labels,
                  done=done, max_words=disputes.STATEMENT_MAX_WORDS, count_words=disputes.count_words,
                  too_long=too_long)


def _line(request: Request, session, state, person: SignedIn, debt: str) -> dict:
    """One of the person's own open lines, from the same view as the debts page; anyone else's is 404."""
    doc = me.my_obligations(session, state.cipher, principal=person.principal, now=state.clock(),
                            request_id=request.state.request_id)
    line = next((ln for ln in doc["obligations"] if ln["id"] == debt and ln["status"] != "closed"), None)
    if line is None:
        raise NotFound("no debt of yours with that id")
    return line


@router.get("/disputes/new")
def new_dispute_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    line = _line(request, session, state, person, request.query_params.get("debt", "")[:36])
    return render(request, "dispute_new.html", person=person, line=line, labels=labels, error=None, text="",
                  reason=None)


@router.post("/disputes")
def open_dispute(request: Request, session: SessionDep, state: StateDep, person: PersonWrites) -> Response:
    """Open a dispute on one of the person's lines, as POST /v1/me/disputes does."""
    form = person.form
    debt, reason, text = form.get("debt", "")[:36], form.get("reason", ""), form.get("text", "").strip()
    if reason not in disputes.REASONS or not text or len(text) > MAX_TEXT:
        line = _line(request, session, state, person, debt)
        return render(request, "dispute_new.html", status=422, person=person, line=line, labels=labels,
                      error="reason" if reason not in disputes.REASONS else "text", text=text[:MAX_TEXT],
                      reason=reason)
    try:
        disputes.open_dispute(session, state.cipher, principal=person.principal, obligation_id=debt, reason=reason,
                              text=text, now=state.clock(), days=state.settings.dispute_days,
                              request_id=request.state.request_id)
    except Conflict as exc:
        if exc.code != "dispute_open":
            raise
        return redirect("/app/disputes?already=1")
    return redirect("/app/disputes?opened=1")


@router.post("/disputes/{dispute_id}/withdraw")
def withdraw_dispute(dispute_id: Id, request: Request, session: SessionDep, state: StateDep,
                     person: PersonWrites) -> Response:
    disputes.withdraw_dispute(session, state.cipher, principal=person.principal, dispute_id=dispute_id,
                              now=state.clock(), request_id=request.state.request_id)
    return redirect("/app/disputes?withdrawn=1")


@router.post("/disputes/{dispute_id}/statement")
def add_statement(dispute_id: Id, request: Request, session: SessionDep, state: StateDep,
                  person: PersonWrites) -> Response:
    """The person's own words beside a line whose dispute the creditor upheld, as the API's PUT."""
    statement = person.form.get("statement", "").strip()[:MAX_TEXT]
    if not statement:
        raise InvalidInput("the statement is empty", code="statement_empty")
    try:
        disputes.add_statement(session, state.cipher, principal=person.principal, dispute_id=dispute_id,
                               statement=statement, now=state.clock(), request_id=request.state.request_id)
    except InvalidInput as exc:
        if exc.code != "statement_too_long":
            raise
        # Shown again with the person's text and how many words it has, not lost behind an error page.
        return _disputes(request, session, state, person, status=422, too_long={
            "id": dispute_id, "text": statement, "words": disputes.count_words(statement)})
    return redirect("/app/disputes?statement=1")


@router.get("/credit-ban")
def credit_ban_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    ban = credit_ban.get_ban(session, state.cipher, principal=person.principal, now=state.clock(),
                             request_id=request.state.request_id)
    done = next((k for k in ("set", "lift") if k in request.query_params), None)
    return render(request, "credit_ban.html", person=person, ban=ban, ends=ban_end(ban), done=done, labels=labels,
                  lift_minutes=state.settings.credit_ban_lift_seconds // 60, error=None)


@router.post("/credit-ban")
def set_credit_ban(request: Request, session: SessionDep, state: StateDep, person: PersonWrites) -> Response:
    """Set the ban now, or keep it (setting it again takes back a lift not yet in effect)."""
    reason, until_text = person.form.get("reason", ""), person.form.get("until", "").strip()
    now = state.clock()
    until = _until(until_text, person) if until_text else None
    if reason not in credit_ban.REASONS or (until_text and (until is None or until <= now)):
        ban = credit_ban.get_ban(session, state.cipher, principal=person.principal, now=now,
                                 request_id=request.state.request_id)
        return render(request, "credit_ban.html", status=422, person=person, ban=ban, ends=ban_end(ban),
                      done=None, labels=labels,
                      lift_minutes=state.settings.credit_ban_lift_seconds // 60,
                      error="reason" if reason not in credit_ban.REASONS else "until")
    credit_ban.set_ban(session, state.cipher, principal=person.principal, reason=reason, until=until, now=now,
                       request_id=request.state.request_id, keep_until=person.form.get("keep") == "1")
    return redirect("/app/credit-ban?set=1")


def _until(text: str, person: SignedIn) -> datetime | None:
    """A date from the form: the ban ends at the start of that day in the person's own time zone. Read as
    the API reads dates and times (YYYY-MM-DD, within the accepted range); None when it is not one."""
    try:
        day = parse_date(text)
        return check_time(datetime.combine(day, time(0, 0), tzinfo=Formats("en", person.national_id.country).zone))
    except ValueError:
        return None


@router.post("/credit-ban/lift")
def lift_credit_ban(request: Request, session: SessionDep, state: StateDep, person: PersonWrites) -> Response:
    """Ask to lift the ban, as DELETE /v1/me/credit-ban: it stays on for the set delay, and can be kept."""
    try:
        credit_ban.request_lift(session, state.cipher, principal=person.principal, now=state.clock(),
                                delay_seconds=state.settings.credit_ban_lift_seconds,
                                request_id=request.state.request_id)
    except NotFound:  # a stale page or a second press after the lift took effect: nothing left to lift
        return redirect("/app/credit-ban")
    return redirect("/app/credit-ban?lift=1")
