"""The person's notices, as pages: /app/notifications sets them up (the same service as
PUT/GET/DELETE /v1/me/notifications), and /app/notifications/confirm is the link the confirmation mail
carries. That page needs no sign-in and changes nothing when fetched: it shows a Confirm button, a form
with the token and a CSRF token derived from it, and only the POST confirms (a mail scanner fetching
links turns nothing on)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from register.api.deps import AppState, Public, SessionDep, StateDep
from register.domain.permission import Permission
from register.errors import InvalidInput, NotFound, RegisterError
from register.services import notices
from register.web.i18n import LANGUAGES, choose_language
from register.web.render import PageRoute, redirect, render
from register.web.session import FormDep, PersonReads, signed_in

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)
PersonWrites = signed_in(Permission.me_write)
PublicPage = Annotated[None, Depends(Public())]
MAX_TOKEN = 100


class ConfirmRefused(RegisterError):
    status = 403
    code = "csrf_refused"
    title = "The form could not be accepted"


def confirm_csrf(state: AppState, token: str) -> str:
    """The confirm form's CSRF token: bound to the mailed token with a server key."""
    return state.cipher.blind_index(b"register/web/notices-confirm|" + token.encode()).hex()


@router.get("/notifications")
def notifications_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    current = notices.get(session, state.cipher, principal=person.principal, now=state.clock(),
                          request_id=request.state.request_id)
    done = next((k for k in ("saved", "off") if k in request.query_params), None)
    return render(request, "notifications.html", person=person, current=current, done=done, error=None,
                  email=current["email"] or "", events=notices.EVENTS, wired=notices.WIRED)


@router.post("/notifications")
def save_notifications(request: Request, session: SessionDep, state: StateDep, person: PersonWrites) -> Response:
    form = person.form
    email, digest = form.get("email", "").strip()[:254], form.get("digest", "none")
    # Checkboxes: each checked kind arrives as its own field, `event-<kind>`.
    kinds = [k for k in notices.EVENTS if form.get(f"event-{k}") == "1"]
    lang = choose_language(request)
    try:
        notices.put(session, state.cipher, principal=person.principal, email=email, events=kinds or ["lookup"],
                    digest=digest if digest in notices.DIGESTS else "none", language=lang,
                    now=state.clock(), request_id=request.state.request_id)  # fmt: skip
    except InvalidInput:
        current = notices.get(session, state.cipher, principal=person.principal, now=state.clock(),
                              request_id=request.state.request_id)
        return render(request, "notifications.html", status=422, person=person, current=current, done=None,
                      error="email", email=email, events=notices.EVENTS, wired=notices.WIRED)
    return redirect("/app/notifications?saved=1")


@router.post("/notifications/off")
def turn_off(request: Request, session: SessionDep, state: StateDep, person: PersonWrites) -> Response:
    try:
        notices.delete(session, principal=person.principal, now=state.clock(), request_id=request.state.request_id)
    except NotFound:  # a second press: already off
        pass
    return redirect("/app/notifications?off=1")


@router.get("/notifications/confirm")
def confirm_page(request: Request, session: SessionDep, state: StateDep, _: PublicPage) -> Response:
    token = request.query_params.get("token", "")[:MAX_TOKEN]
    valid = notices.pending_confirmation(session, token=token, now=state.clock())
    return render(request, "notifications_confirm.html", status=200 if valid else 404, token=token,
                  token_csrf=confirm_csrf(state, token) if valid else "", valid=valid, done=False)


@router.post("/notifications/confirm")
def confirm(request: Request, session: SessionDep, state: StateDep, form: FormDep, _: PublicPage) -> Response:
    token = form.get("token", "")[:MAX_TOKEN]
    if not token or not hmac.compare_digest(form.get("csrf", ""), confirm_csrf(state, token)):
        raise ConfirmRefused("the confirmation form's token is missing or does not match its link")
    try:
        notices.confirm(session, token=token, now=state.clock())
    except NotFound:
        return render(request, "notifications_confirm.html", status=404, token="", token_csrf="", valid=False,
                      done=False)
    return render(request, "notifications_confirm.html", token="", token_csrf="", valid=True, done=True)


__all__ = ["LANGUAGES", "router"]
