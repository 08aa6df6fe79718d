"""Signing in and out of the person's pages, and staying signed in.

In REGISTER_ENV=dev the sign-in page picks a demo person (or takes a typed test identity) and signs in
through the development identity provider: it issues an ID token that is verified exactly as an API
consumer's is (`register.api.deps`). With REGISTER_OIDC_ISSUER set, the national e-ID's OpenID Connect
flow (register.web.oidc). Either way a new session with a new token: nothing from before sign-in carries over.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from register.api.deps import AppState, Public, SessionDep, StateDep, _consumer
from register.demo import load_demo_info
from register.domain.identity import SUPPORTED_COUNTRIES, InvalidNationalId, NationalId, parse_national_id
from register.errors import NotFound, RegisterError
from register.web.labels import COUNTRIES
from register.web.oidc import FLOW_COOKIE, FLOW_COOKIE_PATH, FLOW_SECONDS, SignInFailed, open_flow, seal_flow
from register.web.render import PageRoute, redirect, render, safe_next
from register.web.session import (
    COOKIE_PATH, SESSION_COOKIE, SIGN_IN_COOKIE, FormDep, PersonReads, clear_session_cookie, cookie_secure,
    end_session, set_session_cookie, start_session,
)
from register.web.state import WebState, web_state

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)
log = logging.getLogger("register.web")
PublicPage = Annotated[None, Depends(Public())]
WebDep = Annotated[WebState, Depends(web_state)]


class InvalidSignInForm(RegisterError):
    status = 403
    code = "csrf_refused"
    title = "The form could not be accepted"


def sign_in_token(state: AppState, browser: str) -> str:
    """The sign-in form's CSRF token: keyed to this browser's pre-session cookie with a server key."""
    return state.cipher.blind_index(b"register/web/sign-in|" + browser.encode()).hex()


def _demo_persons(state: AppState) -> list[NationalId]:
    info = load_demo_info(state.settings)
    return [parse_national_id("SE", n, allow_test=True) for n in info.persons] if info else []


@router.get("/sign-in")
def sign_in_page(request: Request, state: StateDep, web: WebDep, _: PublicPage) -> Response:
    return _sign_in_page(request, state, web)


def _sign_in_page(request: Request, state: AppState, web: WebState, *, status: int = 200,
                  error: str | None = None) -> Response:
    browser = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request, "sign_in.html", status=status, demo=[n.masked() for n in _demo_persons(state)],
        dev_sign_in=web.dev_idp is not None, oidc=web.oidc is not None, token=sign_in_token(state, browser),
        countries=sorted(SUPPORTED_COUNTRIES), labels_countries=COUNTRIES,
        next=safe_next(request.query_params.get("next")),
        expired=request.query_params.get("expired") == "1", signed_out=request.query_params.get("signed_out") == "1",
        error=error,
    )  # fmt: skip
    response.set_cookie(SIGN_IN_COOKIE, browser, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=cookie_secure(state.settings))
    return response


@router.post("/sign-in")
def sign_in(request: Request, session: SessionDep, state: StateDep, web: WebDep, form: FormDep,
            _: PublicPage) -> Response:
    """Development sign-in: a demo person or a typed identity, through the development identity provider."""
    if web.dev_idp is None:
        raise NotFound("development sign-in is off")
    browser = request.cookies.get(SIGN_IN_COOKIE, "")
    if not browser or not hmac.compare_digest(form.get("csrf", ""), sign_in_token(state, browser)):
        raise InvalidSignInForm("the sign-in form's token is missing or belongs to another browser")
    choice = form.get("person", "")
    try:
        if choice.startswith("demo:") and choice[5:].isdigit():
            persons = _demo_persons(state)
            if int(choice[5:]) >= len(persons):
                raise InvalidNationalId("unknown demo person")
            nid = persons[int(choice[5:])]
        else:
            nid = parse_national_id(form.get("country", ""), form.get("national_id", "").strip(),
                                    allow_test=state.settings.accept_test_identities)
    except InvalidNationalId:
        return _sign_in_page(request, state, web, status=422, error="invalid_identity")
    # One path: the same ID token and verification as a consumer calling the API.
    token = web.dev_idp.issue(country=nid.country, national_id=nid.number, audience=state.settings.audience)
    principal = _consumer(state, token)
    assert principal.national_id is not None
    return _signed_in(request, session, state, principal.national_id, method="dev",
                      next_page=safe_next(form.get("next")), page=False)


@router.get("/sign-in/oidc")
def sign_in_oidc(request: Request, state: StateDep, web: WebDep, _: PublicPage) -> Response:
    """Start the e-ID sign-in: to the provider, with the flow's secrets in an encrypted cookie."""
    if web.oidc is None:
        raise NotFound("sign-in with e-ID is not configured")
    url, flow = web.oidc.begin(next_page=safe_next(request.query_params.get("next")))
    response = redirect(url)
    # Lax, not Strict: the provider's redirect back is a cross-site navigation, and must bring it.
    response.set_cookie(FLOW_COOKIE, seal_flow(state.cipher, flow), path=FLOW_COOKIE_PATH, max_age=FLOW_SECONDS,
                        httponly=True, samesite="lax", secure=cookie_secure(state.settings))
    return response


@router.get("/sign-in/callback")
def sign_in_callback(request: Request, session: SessionDep, state: StateDep, web: WebDep,
                     _: PublicPage) -> Response:
    """Where the provider sends the person back. Any doubt about the answer: refused, and no session."""
    if web.oidc is None:
        raise NotFound("sign-in with e-ID is not configured")
    try:
        flow = open_flow(state.cipher, request.cookies.get(FLOW_COOKIE))
        nid = web.oidc.finish(flow, dict(request.query_params))
    except SignInFailed as exc:
        log.info("e-ID sign-in refused", extra={"code": exc.code, "reason": exc.detail})
        response = render(request, "error.html", status=401, code=exc.code, expired=False)
        response.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH)
        return response
    response = _signed_in(request, session, state, nid, method="oidc", next_page=flow.next, page=True)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return response


def _signed_in(request: Request, session, state: AppState, nid: NationalId, *, method: str, next_page: str,
               page: bool) -> Response:
    end_session(session, request.cookies.get(SESSION_COOKIE))  # never reuse a session from before
    token = start_session(session, state, nid, method=method, now=state.clock())
    # After a cross-site redirect a browser withholds SameSite=Strict cookies from the next redirect too, so
    # the provider's callback answers with a page that moves on by itself (a same-site navigation).
    response = render(request, "signed_in.html", next=next_page) if page else redirect(next_page)
    set_session_cookie(response, token, state.settings)
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    end_session(session, request.cookies.get(SESSION_COOKIE))
    response = redirect("/app/sign-in?signed_out=1")
    clear_session_cookie(response, state.settings)
    return response


@router.post("/keep-alive")
def keep_alive(person: PersonReads) -> Response:
    """Stay signed in: the session's idle clock restarts (the policy touched it). The page's script asks
    with js=1 and gets 204; the button without script comes back to the page it was on."""
    if person.form.get("js") == "1":
        return Response(status_code=204)
    return redirect(safe_next(person.form.get("next")))
