"""RFC 9457 problem+json for every error the API returns."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from register.api import pattern_messages
from register.api.deps import Authorize
from register.errors import DatabaseUnavailable, RegisterError, Unauthenticated, UnsupportedMediaType
from register.unavailable import DRIVER_UNAVAILABLE

PROBLEM = "application/problem+json"
# Seconds a client waits before sending again a request refused for want of the database: a failover
# under Patroni takes about 10-15 s (SPEC.md, "Many machines"), a pool that was busy a moment.
RETRY_AFTER = "2"
JSON = "application/json"
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}")
log = logging.getLogger("register.api")
# How the person's pages answer an HTTP error under /app/ (register.web.render.http_error_page): handed in by
# `create_app`, so that the API knows no page. Blocking: it is called from a thread.
PageError = Callable[[Request, int, str, Mapping[str, str] | None], Response]


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://register.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _rid(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo `input`: it may be a national identity number. A pattern mismatch is said in words, not regex.
    return [{"loc": list(e.get("loc", ())),
             "msg": pattern_messages.plain((e.get("ctx") or {}).get("pattern"))
             if e.get("type") == "string_pattern_mismatch" else e.get("msg", ""),
             "type": e.get("type", "")} for e in exc.errors()]


def _needs_token(dependant: Dependant) -> bool:
    return any(isinstance(d.call, Authorize) or _needs_token(d) for d in dependant.dependencies)


def _anonymous_on_protected_route(request: Request) -> bool:
    """FastAPI parses a JSON body before it runs the route's dependencies, so a body that is not JSON
    would be refused (400/422) before the caller is authenticated. Without a bearer token the answer to
    a protected route is always 401: an anonymous caller learns nothing about the route's input."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return False
    dependant = getattr(request.scope.get("route"), "dependant", None)
    return dependant is not None and _needs_token(dependant)


def _sent_as_something_else(exc: RequestValidationError) -> bool:
    """FastAPI decodes a body as JSON only when its Content-Type says JSON (`application/json` or a
    `+json` type); any other body, or one without a Content-Type, reaches validation as raw bytes. That
    is after the route's dependencies have run, so the caller is authenticated and authorised by then."""
    return isinstance(exc.body, bytes) and bool(exc.body)


def _unsupported_media_type(request: Request) -> UnsupportedMediaType:
    given = request.headers.get("content-type", "").split(";", 1)[0].strip()
    if not given:
        sent = "this request had none"
    else:  # a header's value, quoted back only when it is a plain media type
        sent = f"this request's was {given if _MEDIA_TYPE.fullmatch(given) else 'not a media type'}"
    return UnsupportedMediaType(f"send the body as JSON, with Content-Type: {JSON} ({sent})")


def _invalid_json(exc: RequestValidationError) -> str | None:
    """Where a body that does not parse goes wrong, by line and column (FastAPI gives a character offset)."""
    for e in exc.errors():
        if e.get("type") == "json_invalid" and isinstance(exc.body, str):
            loc = e.get("loc", ())
            pos = min(loc[1], len(exc.body)) if len(loc) > 1 and isinstance(loc[1], int) else 0
            line, column = exc.body.count("\n", 0, pos) + 1, pos - exc.body.rfind("\n", 0, pos)
            # The json module's reasons ("Expecting ',' delimiter") never quote the input.
            return f"invalid JSON at line {line} column {column}: {(e.get('ctx') or {}).get('error', 'not JSON')}"
    return None


def _unauthenticated(request: Request) -> JSONResponse:
    exc = Unauthenticated("send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    return problem_response(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers,
                            request_id=_rid(request))


_UNAVAILABLE = (SQLAlchemyTimeout, OperationalError, InterfaceError, *DRIVER_UNAVAILABLE)
# How SQLAlchemy names, in a PendingRollbackError's message, the driver's error that ended the transaction
# before it: "... Original exception was: (psycopg.OperationalError) connection ... failed: session is read-only"
_ORIGINAL = re.compile(r"\((psycopg(?:\.errors)?)\.(\w+)\)")


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) says the database could not be reached or went away: the pool
    gave no connection in time, the connection failed, closed or was invalidated (a restart, a failover,
    the primary gone), the server gave up the transaction, or it takes no writes (a primary being demoted,
    a standby: `ReadOnlySqlTransaction`). Never a client's fault, always worth a retry.

    Every exception `exc` was raised from or while handling is looked at (its cause and its context both,
    and each of a group's), not one line of them: an error raised `from` another while a database error was
    being handled still has the database's error behind it."""
    todo, seen = [exc], set()
    while todo and len(seen) < 64:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, _UNAVAILABLE):
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, PendingRollbackError) and _ended_by_unavailable(str(e)):
            # A later statement (the request's commit) in a transaction that an unavailable database ended.
            return True
        if isinstance(e, BaseExceptionGroup):  # raised through a task group (middleware, streaming)
            todo.extend(e.exceptions)
        todo.extend((e.__context__, e.__cause__))  # the cause first
    return False


def _ended_by_unavailable(message: str) -> bool:
    """Whether a PendingRollbackError's message says the transaction ended by a disconnect ("Can't reconnect
    until invalid transaction is rolled back") or names, as its original exception, one of `_UNAVAILABLE`."""
    if "reconnect" in message:
        return True
    for module, name in _ORIGINAL.findall(message):
        cls = getattr(psycopg.errors if module.endswith("errors") else psycopg, name, None)
        if isinstance(cls, type) and issubclass(cls, _UNAVAILABLE):
            return True
    return False


def database_unavailable_response(request: Request, exc: BaseException) -> JSONResponse:
    # A write whose connection broke during COMMIT may have been applied (on the new primary, after a
    # failover, with synchronous replication nothing acknowledged is lost): sent again with the same
    # Idempotency-Key, or as the same PUT, it is applied once.
    log.warning("database unavailable", extra={"request_id": _rid(request), "error": type(exc).__name__})
    error = DatabaseUnavailable("the database did not answer in time (down, restarting or failing over); "
                                "retry after Retry-After")
    return problem_response(error.status, error.code, error.title, error.detail,
                            headers={"Retry-After": RETRY_AFTER}, request_id=_rid(request))


def install_problem_handlers(app: FastAPI, *, page_error: PageError | None = None,
                             is_page: Callable[[str], bool] | None = None) -> None:
    """`page_error` answers, instead of problem+json, an HTTP error at an address `is_page` says is the
    pages' (the person's under /app/, the desk's under /regulator/)."""
    @app.exception_handler(RegisterError)
    async def _register_error(request: Request, exc: RegisterError) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, errors=exc.errors, headers=exc.headers,
            request_id=_rid(request), extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _anonymous_on_protected_route(request):
            return _unauthenticated(request)
        if _sent_as_something_else(exc):
            return await _register_error(request, _unsupported_media_type(request))
        if (invalid := _invalid_json(exc)) is not None:
            return problem_response(422, "validation_error", "Invalid request", f"body: {invalid}",
                                    errors=[{"loc": ["body"], "msg": invalid, "type": "json_invalid"}],
                                    request_id=_rid(request))
        errors = _validation_errors(exc)
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem_response(
            422, "validation_error", "Invalid request", detail, errors=errors, request_id=_rid(request)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and _anonymous_on_protected_route(request):
            return _unauthenticated(request)
        if exc.status_code == 400:
            # FastAPI's only 400: a body it cannot decode (not UTF-8). Like malformed JSON, that is a
            # payload that does not match the schema, and the contract has no 400.
            return problem_response(
                422, "validation_error", "Invalid request", "body: not valid UTF-8 JSON",
                errors=[{"loc": ["body"], "msg": "not valid UTF-8 JSON", "type": "json_invalid"}],
                request_id=_rid(request),
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if page_error is not None and is_page is not None and is_page(request.url.path):
            # A person (or a regulator's staff) who mistypes an address under /app/ (/regulator/) gets a page
            # in their language, with the pages' security headers (and the person's navigation if signed
            # in), not a problem+json document.
            return await run_in_threadpool(page_error, request, exc.status_code, code, getattr(exc, "headers", None))
        return problem_response(
            exc.status_code, code, str(exc.detail), str(exc.detail), headers=getattr(exc, "headers", None),
            request_id=_rid(request),
        )

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # No connection in time (the pool busy, the database down, restarting or failing over), or a
        # transaction the database gave up: the same request may be sent again.
        return database_unavailable_response(request, exc)

    for unavailable in _UNAVAILABLE:  # the one list `database_unavailable` also reads
        app.add_exception_handler(unavailable, _database_unavailable)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(psycopg.Error)
    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        # Any other error of the database's, handled here rather than by the catch-all below, which
        # Starlette raises again once answered (uvicorn then logs each as "Exception in ASGI application"):
        # a write to a database that takes none (a primary being demoted) is one of them, and a 503.
        return _unexpected_response(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Also what a middleware raises (it runs outside the handlers above): a database that went away
        # there is a 503 like anywhere else, never a 500.
        return _unexpected_response(request, exc)


def _unexpected_response(request: Request, exc: BaseException) -> JSONResponse:
    if database_unavailable(exc):
        return database_unavailable_response(request, exc)
    log.error("unhandled error", exc_info=exc, extra={"request_id": _rid(request)})
    return problem_response(
        500, "internal_error", "Internal error", "The request failed and changed nothing.",
        request_id=_rid(request),
    )
