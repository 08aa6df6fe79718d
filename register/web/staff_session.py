"""The regulator's staff on the desk under /regulator/: their session cookie, and the policy every desk page
declares (`DeskReads`).

The cookie is a staff session's 32 random bytes (`register.services.staff_sessions` keeps its hash and the
regulator institution it speaks for), named apart from the person's and sent only under /regulator: a
person's session opens no desk page, and a staff session no person's page. Forms carry this session's CSRF
token, made as the person's are (register.web.session.csrf_token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from register.api.deps import AppState
from register.config import Settings
from register.domain.permission import Permission, Principal
from register.errors import SignInRequired
from register.services import staff_sessions
from register.web.session import CookieSessionPolicy, cookie_secure, csrf_token

STAFF_COOKIE = "register_staff_session"
STAFF_SIGN_IN_COOKIE = "register_staff_sign_in"  # the sign-in form's token, before there is a session
DESK_PATH = "/regulator"


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of one request: their regulator institution's principal (the one its API
    token gives), its name, and this session's form token."""

    principal: Principal
    institution_name: str
    token_hash: str
    csrf: str
    form: dict[str, str]


def is_desk(path: str) -> bool:
    return path == DESK_PATH or path.startswith(DESK_PATH + "/")


def set_staff_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(STAFF_COOKIE, token, path=DESK_PATH, httponly=True, samesite="strict",
                        secure=cookie_secure(settings))


def clear_staff_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(STAFF_COOKIE, path=DESK_PATH, httponly=True, samesite="strict",
                           secure=cookie_secure(settings))


class StaffPolicy(CookieSessionPolicy):
    """A desk page's policy: a live staff session (the cookie, never a bearer token) of an institution that
    is a regulator now and holds `permission`, and on every form this session's CSRF token."""

    touch = staticmethod(staff_sessions.touch_staff_session)

    def resolve(self, request: Request, session, state: AppState, form: dict[str, str]) -> Staff:
        token = request.cookies.get(STAFF_COOKIE)
        if not token:
            raise SignInRequired("sign in to the regulator's desk")
        live = staff_sessions.live_staff_session(session, token, now=state.clock(),
                                                 idle_seconds=state.settings.session_idle_seconds)
        if not live.principal.can(self.permission):
            raise SignInRequired("the session may not read the desk")
        staff = Staff(principal=live.principal, institution_name=live.institution_name, token_hash=live.token_hash,
                      csrf=csrf_token(live.csrf_secret), form=form)
        request.scope["state"]["actor"] = live.principal.actor
        request.scope["state"]["staff"] = staff
        return staff


def staff_of(request: Request) -> Staff | None:
    return request.scope.get("state", {}).get("staff")


DeskReads = Annotated[Staff, Depends(StaffPolicy(Permission.audit_read))]
