"""Signing in and out of the regulator's desk under /regulator/.

With REGISTER_STAFF_OIDC_ISSUER set: the staff provider's OpenID Connect flow, authorisation code with PKCE,
state and nonce, through the same client as the person's e-ID sign-in (register.web.oidc, configured by
REGISTER_STAFF_OIDC_*). The verified ID token's claim REGISTER_STAFF_OIDC_INSTITUTION_CLAIM names the staff
member's institution in the register; only an institution with the regulator role gets a session.
In REGISTER_ENV=dev a stand-in picks one of the register's regulator institutions (and nothing else).
Either way a new session with a new token: nothing from before sign-in carries over.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from starlette.responses import Response

from register.api.deps import AppState, SessionDep, StateDep
from register.errors import NotFound
from register.services import staff_sessions
from register.web.oidc import FLOW_SECONDS, STAFF_FLOW, SignInFailed, open_flow, seal_flow
from register.web.render import PageRoute, redirect, render, safe_desk_next
from register.web.session import FormDep, cookie_secure
from register.web.sign_in import InvalidSignInForm, PublicPage, WebDep
from register.web.staff_session import (
    DESK_PATH, STAFF_COOKIE, STAFF_SIGN_IN_COOKIE, DeskReads, clear_staff_cookie, set_staff_cookie,
)
from register.web.state import WebState

router = APIRouter(prefix=DESK_PATH, route_class=PageRoute, include_in_schema=False)
log = logging.getLogger("register.web")
STAFF_FLOW_COOKIE = "register_staff_oidc"
STAFF_FLOW_PATH = f"{DESK_PATH}/sign-in"
DEV_ISSUER = "urn:register:dev-staff"


def staff_sign_in_token(state: AppState, browser: str) -> str:
    """The desk sign-in form's CSRF token: keyed to this browser's pre-session cookie with a server key."""
    return state.cipher.blind_index(b"register/web/staff-sign-in|" + browser.encode()).hex()


@router.get("/sign-in")
def staff_sign_in_page(request: Request, session: SessionDep, state: StateDep, web: WebDep,
                       _: PublicPage) -> Response:
    return _page(request, session, state, web)


def _page(request: Request, session, state: AppState, web: WebState, *, status: int = 200,
          error: str | None = None) -> Response:
    browser = request.cookies.get(STAFF_SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    dev = web.dev_idp is not None
    response = render(
        request, "regulator/sign_in.html", status=status, staff=None, dev_sign_in=dev,
        regulators=staff_sessions.regulators(session) if dev else [], oidc=web.staff_oidc is not None,
        token=staff_sign_in_token(state, browser), next=safe_desk_next(request.query_params.get("next")),
        expired=request.query_params.get("expired") == "1", signed_out=request.query_params.get("signed_out") == "1",
        error=error,
    )  # fmt: skip
    response.set_cookie(STAFF_SIGN_IN_COOKIE, browser, path=DESK_PATH, httponly=True, samesite="strict",
                        secure=cookie_secure(state.settings))
    return response


@router.post("/sign-in")
def staff_dev_sign_in(request: Request, session: SessionDep, state: StateDep, web: WebDep, form: FormDep,
                      _: PublicPage) -> Response:
    """Development stand-in: sign in as staff of one of the register's regulator institutions."""
    if web.dev_idp is None:
        raise NotFound("development sign-in is off")
    browser = request.cookies.get(STAFF_SIGN_IN_COOKIE, "")
    if not browser or not hmac.compare_digest(form.get("csrf", ""), staff_sign_in_token(state, browser)):
        raise InvalidSignInForm("the sign-in form's token is missing or belongs to another browser")
    institution_id = form.get("institution", "")
    try:
        staff_sessions.regulator_principal(session, institution_id)
    except staff_sessions.NotARegulator:
        return _page(request, session, state, web, status=403, error="not_a_regulator")
    return _signed_in(request, session, state, institution_id, staff=staff_sessions.staff_hash(DEV_ISSUER, "dev"),
                      method="dev", next_page=safe_desk_next(form.get("next")), page=False)


@router.get("/sign-in/oidc")
def staff_sign_in_oidc(request: Request, state: StateDep, web: WebDep, _: PublicPage) -> Response:
    """Start the staff sign-in: to the staff provider, with the flow's secrets in an encrypted cookie."""
    if web.staff_oidc is None:
        raise NotFound("staff sign-in is not configured")
    url, flow = web.staff_oidc.begin(next_page=safe_desk_next(request.query_params.get("next")))
    response = redirect(url)
    # Lax, not Strict: the provider's redirect back is a cross-site navigation, and must bring it.
    response.set_cookie(STAFF_FLOW_COOKIE, seal_flow(state.cipher, flow, column=STAFF_FLOW), path=STAFF_FLOW_PATH,
                        max_age=FLOW_SECONDS, httponly=True, samesite="lax", secure=cookie_secure(state.settings))
    return response


@router.get("/sign-in/callback")
def staff_sign_in_callback(request: Request, session: SessionDep, state: StateDep, web: WebDep,
                           _: PublicPage) -> Response:
    """Where the staff provider sends the browser back. Any doubt about the answer, or an institution that is
    not a regulator: refused, and no session."""
    if web.staff_oidc is None:
        raise NotFound("staff sign-in is not configured")
    try:
        flow = open_flow(state.cipher, request.cookies.get(STAFF_FLOW_COOKIE), column=STAFF_FLOW)
        claims = web.staff_oidc.finish_claims(flow, dict(request.query_params))
        institution_id = claims.get(state.settings.staff_oidc_institution_claim)
        if not isinstance(institution_id, str):
            raise SignInFailed("the ID token names no institution", code="sign_in_no_institution")
        staff_sessions.regulator_principal(session, institution_id)
    except (SignInFailed, staff_sessions.NotARegulator) as exc:
        log.info("staff sign-in refused", extra={"code": exc.code, "reason": exc.detail})
        status = 403 if isinstance(exc, staff_sessions.NotARegulator) else 401
        response = render(request, "regulator/error.html", status=status, code=exc.code, expired=False, staff=None)
        response.delete_cookie(STAFF_FLOW_COOKIE, path=STAFF_FLOW_PATH)
        return response
    staff = staff_sessions.staff_hash(web.staff_oidc.provider().issuer, str(claims.get("sub", "")))
    response = _signed_in(request, session, state, institution_id, staff=staff, method="oidc",
                          next_page=flow.next, page=True)
    response.delete_cookie(STAFF_FLOW_COOKIE, path=STAFF_FLOW_PATH)
    return response


def _signed_in(request: Request, session, state: AppState, institution_id: str, *, staff: str, method: str,
               next_page: str, page: bool) -> Response:
    staff_sessions.end_staff_session(session, request.cookies.get(STAFF_COOKIE))  # never reuse a session
    token = staff_sessions.start_staff_session(session, institution_id=institution_id, staff=staff, method=method,
                                               now=state.clock(), idle_seconds=state.settings.session_idle_seconds)
    # After a cross-site redirect a browser withholds SameSite=Strict cookies from the next redirect too, so
    # the provider's callback answers with a page that moves on by itself (a same-site navigation).
    response = (render(request, "regulator/signed_in.html", next=next_page, staff=None) if page
                else redirect(next_page))
    set_staff_cookie(response, token, state.settings)
    return response


@router.post("/sign-out")
def staff_sign_out(request: Request, session: SessionDep, state: StateDep, staff: DeskReads) -> Response:
    staff_sessions.end_staff_session(session, request.cookies.get(STAFF_COOKIE))
    response = redirect(f"{DESK_PATH}/sign-in?signed_out=1")
    clear_staff_cookie(response, state.settings)
    return response
