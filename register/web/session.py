"""The person's session on the pages under /app/, and the policy every page that shows their data declares.

The cookie holds 32 random bytes, the session's token; what the register keeps of it, and when a session
ends, is `register.services.web_sessions`. The principal built from a session is the one a consumer's
bearer ID token gives (`register.api.deps`), so the pages call the API's services with the same caller and
leave the same access events.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from starlette.responses import Response

from register.api.deps import AppState, SessionDep, StateDep
from register.config import Environment, Settings
from register.domain.identity import NationalId
from register.domain.permission import Permission, Principal, Role
from register.errors import Forbidden, SignInRequired
from register.services import web_sessions

SESSION_COOKIE = "register_session"
SIGN_IN_COOKIE = "register_sign_in"  # the sign-in form's token, before there is a session
COOKIE_PATH = "/app"
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_FORM_FIELDS = 20


class CsrfRefused(Forbidden):
    """A form without this session's token, or with another one: refused before anything is done."""

    code = "csrf_refused"
    title = "The form could not be accepted"


@dataclass(frozen=True)
class SignedIn:
    """The signed-in person of one request: the API's consumer principal, and this session's form token."""

    principal: Principal
    token_hash: str
    csrf: str
    form: dict[str, str]

    @property
    def national_id(self) -> NationalId:
        assert self.principal.national_id is not None
        return self.principal.national_id


def csrf_token(secret: str) -> str:
    return hmac.new(bytes.fromhex(secret), b"register/web/csrf/v1", hashlib.sha256).hexdigest()


def person_principal(state: AppState, nid: NationalId) -> Principal:
    """The same principal `register.api.deps` builds for a consumer's ID token."""
    return Principal(role=Role.consumer, name="consumer", national_id=nid,
                     subject=state.cipher.blind_index(nid.blind_index_input()))


def cookie_secure(settings: Settings) -> bool:
    return settings.env is not Environment.dev


def start_session(session, state: AppState, nid: NationalId, *, method: str, now: datetime) -> str:
    """A new session for the person; returns the cookie's token (never stored)."""
    return web_sessions.start_web_session(session, state.cipher, nid, method=method, now=now,
                                          idle_seconds=state.settings.session_idle_seconds)


def end_session(session, token: str | None) -> None:
    web_sessions.end_web_session(session, token)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    # No Max-Age: the cookie ends with the browser; the server ends the session after idle time.
    response.set_cookie(SESSION_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=cookie_secure(settings))


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=cookie_secure(settings))


async def page_form(request: Request) -> dict[str, str]:
    """A page's url-encoded form (the pages post nothing else). Parsed here rather than by FastAPI's Form,
    which needs python-multipart; a repeated field keeps its first value."""
    if request.method in SAFE_METHODS:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                          max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


FormDep = Annotated[dict[str, str], Depends(page_form)]


class CookieSessionPolicy(ABC):
    """What every signed-in page checks, the person's (PersonSession) and the desk's staff
    (web.staff_session.StaffPolicy) alike: a live session found from its cookie by `resolve` (never a bearer
    token), holding `permission`; on every unsafe method the session's CSRF token; then the session's idle
    clock restarted by `touch`."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(self, request: Request, session: SessionDep, state: StateDep, form: FormDep) -> Any:
        signed_in = self.resolve(request, session, state, form)
        if request.method not in SAFE_METHODS and not hmac.compare_digest(form.get("csrf", ""), signed_in.csrf):
            raise CsrfRefused("the form's security token is missing or belongs to another session")
        self.touch(session, signed_in.token_hash, now=state.clock())
        return signed_in

    @abstractmethod
    def resolve(self, request: Request, session, state: AppState, form: dict[str, str]) -> Any:
        """The live session's holder (a signed-in person, a staff member), or SignInRequired."""

    @abstractmethod
    def touch(self, session, token_hash: str, *, now: datetime) -> None:
        """The session was used now: its idle time starts again."""


class PersonSession(CookieSessionPolicy):
    """A page's policy: a signed-in person's session, holding `permission`, and on every form this session's
    CSRF token. The route-matrix test finds these."""

    touch = staticmethod(web_sessions.touch_web_session)

    def resolve(self, request: Request, session, state: AppState, form: dict[str, str]) -> SignedIn:
        """The live session's person, before any form is checked. Kept on the request (`person`), so that an
        error page shown to them, a refused form's included, keeps their navigation."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise SignInRequired("sign in to see this page")
        live = web_sessions.live_web_session(session, state.cipher, token, now=state.clock(),
                                             idle_seconds=state.settings.session_idle_seconds)
        principal = person_principal(state, live.national_id)
        if principal.subject != live.subject or not principal.can(self.permission):
            raise SignInRequired("the session does not match its person")
        person = SignedIn(principal=principal, token_hash=live.token_hash, csrf=csrf_token(live.csrf_secret),
                          form=form)
        request.scope["state"]["actor"] = principal.actor
        request.scope["state"]["person"] = person
        return person


def person_if_signed_in(request: Request, session, state: AppState) -> SignedIn | None:
    """For a public page (help) and an error page: the signed-in person, so the page shows their navigation
    and keeps their session alive, or None for anyone else. Never refuses, and reads no form: it only
    decides what the page around the answer shows."""
    try:
        person = PersonSession(Permission.me_read).resolve(request, session, state, {})
    except SignInRequired:
        return None
    web_sessions.touch_web_session(session, person.token_hash, now=state.clock())
    return person


def person_of(request: Request) -> SignedIn | None:
    """The person this request's session was found to be, if it was looked at."""
    return request.scope.get("state", {}).get("person")


def signed_in(permission: Permission) -> type[SignedIn]:
    return Annotated[SignedIn, Depends(PersonSession(permission))]  # type: ignore[return-value]


PersonReads = signed_in(Permission.me_read)
PersonRevokesConsents = signed_in(Permission.consents_revoke)
