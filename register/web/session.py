"""The person's session on the pages under /app/, and the policy every page that shows their data declares.

The cookie holds 32 random bytes; the `web_sessions` row holds only their SHA-256, the identity encrypted
bound to that row, its blind index, and the secret the session's form tokens are made from. A session idle
longer than `session_idle_seconds` (measured with the app's clock) is deleted when next presented. The
principal built from a session is the one a consumer's bearer ID token gives (`register.api.deps`), so
the pages call the API's services with the same caller and leave the same access events.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from starlette.responses import Response

from register.api.deps import AppState, SessionDep, StateDep
from register.config import Environment, Settings
from register.domain.identity import NationalId, parse_national_id
from register.domain.permission import Permission, Principal, Role
from register.errors import Forbidden, Unauthenticated
from register.storage import web_sessions as store
from register.storage.models import WebSession

SESSION_COOKIE = "register_session"
SIGN_IN_COOKIE = "register_sign_in"  # the sign-in form's token, before there is a session
COOKIE_PATH = "/app"
TABLE, COLUMN = "web_sessions", "national_id_enc"
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_FORM_FIELDS = 20


class SignInRequired(Unauthenticated):
    """No session, an unknown one, or one idle too long. Pages answer a GET with a redirect to sign-in."""

    code = "sign_in_required"
    title = "Please sign in"

    def __init__(self, detail: str | None = None, *, expired: bool = False) -> None:
        super().__init__(detail)
        self.expired = expired


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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    return hmac.new(bytes.fromhex(secret), b"register/web/csrf/v1", hashlib.sha256).hexdigest()


def person_principal(state: AppState, nid: NationalId) -> Principal:
    """The same principal `register.api.deps` builds for a consumer's ID token."""
    return Principal(role=Role.consumer, name="consumer", national_id=nid,
                     subject=state.cipher.blind_index(nid.blind_index_input()))


def cookie_secure(settings: Settings) -> bool:
    return settings.env is not Environment.dev


def start_session(session, state: AppState, nid: NationalId, *, method: str, now: datetime) -> str:
    """A new session for the person; returns the cookie's token (never stored). Idle rows are swept here."""
    token = secrets.token_urlsafe(32)
    digest = token_hash(token)
    store.delete_idle_web_sessions(session, seen_before=now - timedelta(seconds=state.settings.session_idle_seconds))
    store.add_web_session(session, WebSession(
        token_hash=digest, subject=state.cipher.blind_index(nid.blind_index_input()), country=nid.country,
        national_id_enc=state.cipher.encrypt(nid.number.encode(), table=TABLE, column=COLUMN, row_id=digest),
        csrf_secret=secrets.token_hex(32), method=method, created_at=now, last_seen_at=now,
    ))  # fmt: skip
    return token


def end_session(session, token: str | None) -> None:
    if token:
        store.delete_web_session(session, token_hash(token))


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


class PersonSession:
    """A page's policy: a signed-in person's session (the cookie, never a bearer token), holding
    `permission`, and on every form this session's CSRF token. The route-matrix test finds these."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(self, request: Request, session: SessionDep, state: StateDep, form: FormDep) -> SignedIn:
        person = self.resolve(request, session, state, form)
        if request.method not in SAFE_METHODS and not hmac.compare_digest(form.get("csrf", ""), person.csrf):
            raise CsrfRefused("the form's security token is missing or belongs to another session")
        store.touch_web_session(session, person.token_hash, now=state.clock())
        return person

    def resolve(self, request: Request, session, state: AppState, form: dict[str, str]) -> SignedIn:
        """The live session's person, before any form is checked. Kept on the request (`person`), so that an
        error page shown to them, a refused form's included, keeps their navigation."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise SignInRequired("sign in to see this page")
        digest = token_hash(token)
        row = store.get_web_session(session, digest)
        if row is None:
            raise SignInRequired("the session has ended")
        now = state.clock()
        if now - row.last_seen_at > timedelta(seconds=state.settings.session_idle_seconds):
            store.delete_web_session(session, digest)
            exc = SignInRequired("the session ended after a while without use", expired=True)
            exc.commit = True  # the idle session's row goes even though the request is refused
            raise exc
        number = state.cipher.decrypt(row.national_id_enc, table=TABLE, column=COLUMN, row_id=digest).decode()
        principal = person_principal(state, parse_national_id(row.country, number, allow_test=True))
        if principal.subject != row.subject or not principal.can(self.permission):
            raise SignInRequired("the session does not match its person")
        person = SignedIn(principal=principal, token_hash=digest, csrf=csrf_token(row.csrf_secret), form=form)
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
    store.touch_web_session(session, person.token_hash, now=state.clock())
    return person


def person_of(request: Request) -> SignedIn | None:
    """The person this request's session was found to be, if it was looked at."""
    return request.scope.get("state", {}).get("person")


def signed_in(permission: Permission) -> type[SignedIn]:
    return Annotated[SignedIn, Depends(PersonSession(permission))]  # type: ignore[return-value]


PersonReads = signed_in(Permission.me_read)
PersonRevokesConsents = signed_in(Permission.consents_revoke)
