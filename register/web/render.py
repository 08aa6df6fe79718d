"""Rendering the pages: one Jinja environment per language, the security headers every /app response
carries, and the route class that turns refusals into pages instead of problem+json."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from register.api.problems import RETRY_AFTER, database_unavailable
from register.errors import DatabaseUnavailable, RegisterError, SignInRequired
from register.web.i18n import LANG_COOKIE, LANGUAGES, Formats, choose_language, translations
from register.web.session import COOKIE_PATH, SignedIn, cookie_secure, person_if_signed_in, person_of
from register.web.staff_session import DESK_PATH, is_desk, staff_of

log = logging.getLogger("register.web")

# No inline script or style anywhere; nothing from elsewhere; no framing; forms post only here.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=PackageLoader("register.web", "templates"), autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def safe_next(value: str | None) -> str:
    """Where to go after signing in or staying signed in: a page of ours, never another site."""
    if not value or not value.startswith("/app/") or "//" in value or "\\" in value or not value.isprintable():
        return "/app/"
    return value


def safe_desk_next(value: str | None) -> str:
    """Where a staff member goes after signing in: a desk page, never another site."""
    if (not value or not value.startswith(DESK_PATH + "/") or "//" in value or "\\" in value
            or not value.isprintable()):
        return DESK_PATH + "/"
    return value


def here(request: Request) -> str:
    """This page's address with its query (the dispute form's debt), where sign-in or staying signed in
    returns to."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def language_links(request: Request) -> dict[str, str]:
    """The language switch: this same page in each language, its query kept (the dispute form's debt,
    where sign-in goes next), so switching never loses the page."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return {code: "?" + urlencode([*kept, ("lang", code)]) for code in LANGUAGES}


def render(request: Request, template: str, *, status: int = 200, person: SignedIn | None = None,
           **context: Any) -> HTMLResponse:
    state = request.app.state.register
    lang = choose_language(request)
    country = person.national_id.country if person else None
    html = environment(lang).get_template(template).render(
        lang=lang, languages=LANGUAGES, fmt=Formats(lang, country), person=person,
        csrf=person.csrf if person else None, path=request.url.path, here=here(request),
        lang_links=language_links(request),
        idle_seconds=state.settings.session_idle_seconds, warning_seconds=state.settings.session_warning_seconds,
        dev=state.settings.env.value == "dev", **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:  # the switch was used: remember it
        path = DESK_PATH if is_desk(request.url.path) else COOKIE_PATH
        response.set_cookie(LANG_COOKIE, lang, path=path, max_age=365 * 24 * 3600, httponly=True,
                            samesite="lax", secure=cookie_secure(state.settings))
    return response


def error_page(request: Request, exc: RegisterError) -> Response:
    """A refusal inside a page's route, as a page. A signed-in person keeps their navigation."""
    if is_desk(request.url.path):
        return desk_error_page(request, exc)
    if isinstance(exc, SignInRequired):
        if request.method in ("GET", "HEAD"):
            target = "/app/sign-in?next=" + quote(safe_next(here(request)), safe="/")
            return redirect(target + ("&expired=1" if exc.expired else ""))
        return render(request, "error.html", status=401, code=exc.code, expired=exc.expired)
    return render(request, "error.html", status=exc.status, code=exc.code, expired=False, person=person_of(request))


def desk_error_page(request: Request, exc: RegisterError) -> Response:
    """A refusal on the regulator's desk: to the desk's sign-in when there is no live staff session (a
    person's or a lender's browser included), else the desk's error page with its navigation."""
    if isinstance(exc, SignInRequired):
        if request.method in ("GET", "HEAD"):
            target = f"{DESK_PATH}/sign-in?next=" + quote(safe_desk_next(here(request)), safe="/")
            return redirect(target + ("&expired=1" if exc.expired else ""))
        return render(request, "regulator/error.html", status=401, code=exc.code, expired=exc.expired, staff=None)
    return render(request, "regulator/error.html", status=exc.status, code=exc.code, expired=False,
                  staff=staff_of(request))


def http_error_page(request: Request, status: int, code: str, headers: Mapping[str, str] | None = None) -> Response:
    """An answer under /app/ that no page's route gave: no page at this address (404), not with this method
    (405, with Allow), a form too large to read (413). Blocking (it looks the session up in the database):
    call it from a thread. A signed-in person keeps their navigation."""
    state = request.app.state.register
    person = None
    try:
        with state.sessions.begin() as session:
            person = person_if_signed_in(request, session, state)
    except Exception:  # noqa: BLE001 - the error page is shown anyway, without the navigation
        log.exception("session lookup for an error page failed",
                      extra={"request_id": getattr(request.state, "request_id", None)})
    response = render(request, "error.html", status=status, code=code, expired=False, person=person)
    response.headers.update(headers or {})
    return with_security_headers(response)


def with_security_headers(response: Response) -> Response:
    set_security_headers(response.headers)
    return response


def set_security_headers(headers: MutableHeaders) -> None:
    """The pages' security headers, where the answer has not set its own (a static file's Cache-Control)."""
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


class PageRoute(APIRoute):
    """A route under /app/: refusals become pages (sign-in redirects, 403 for a bad form, kind 404s),
    and every response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except RegisterError as exc:
                response = error_page(request, exc)
            except RequestValidationError:  # only path parameters are validated: a malformed id is not found
                if is_desk(request.url.path):
                    response = render(request, "regulator/error.html", status=404, code="not_found",
                                      expired=False, staff=staff_of(request))
                else:
                    response = render(request, "error.html", status=404, code="not_found", expired=False,
                                      person=person_of(request))
            except Exception as exc:  # noqa: BLE001
                if database_unavailable(exc):  # down, restarting or failing over: 503, try again shortly
                    # Raised, not rendered: the request's session must roll back its broken connection
                    # (a commit on it would fail after the page was sent).
                    raise DatabaseUnavailable("the database did not answer in time; retry after Retry-After",
                                              headers={"Retry-After": RETRY_AFTER}) from exc
                log.exception("page failed", extra={"request_id": getattr(request.state, "request_id", None)})
                if is_desk(request.url.path):
                    response = render(request, "regulator/error.html", status=500, code="internal_error",
                                      expired=False, staff=staff_of(request))
                else:
                    response = render(request, "error.html", status=500, code="internal_error", expired=False,
                                      person=person_of(request))
            return with_security_headers(response)

        return page
