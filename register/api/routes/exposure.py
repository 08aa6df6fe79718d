from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from register.api import examples as ex
from register.api.deps import (
    GATE_PRINCIPAL, AppState, CanAskExposure, CanReadExposure, SessionDep, StateDep, in_transaction,
)
from register.api.openapi import errors
from register.api.schemas import (
    ExposureAsOfPublic, ExposurePublic, ExposureRequest, ProblemWithReceipt, StoredExposurePublic,
)  # fmt: skip
from register.domain.consent import Purpose
from register.domain.permission import Permission, Principal
from register.errors import Forbidden
from register.services.exposure import (
    Taken, answer_on_lane, answer_on_lane_async, lender_connection, query_exposure, take_rate,
)  # fmt: skip
from register.services.exposure_as_of import answer_as_of, stored_answer

router = APIRouter(prefix="/v1/exposure", tags=["exposure"])


@router.post(
    "",
    response_model=ExposurePublic | ExposureAsOfPublic,
    responses={200: {"description": "A lender's answer (ExposurePublic), or an answer as of a past moment "
                                    "(ExposureAsOfPublic)", "content": {"application/json": {"examples": {
        "lender": {"summary": "A lender's answer", "value": ex.EXPOSURE},
        "as_of": {"summary": "An answer as of a past moment", "value": ex.EXPOSURE_AS_OF}}}}}, **errors(
        401, 403, "consent_missing", "consent_mismatch", "consent_revoked", "consent_expired", "as_of_not_allowed",
        404, 413, 422, "invalid_national_id", "invalid_as_of", 429, "quota_exceeded", "attested_rate_limited",
        "attested_quota_exceeded", models={403: ProblemWithReceipt, 429: ProblemWithReceipt},
    )},
)
async def post_exposure(body: ExposureRequest, request: Request, state: StateDep, principal: CanAskExposure):
    """A person's total exposure, for a lender holding their active consent for this purpose. Refused
    with 403 (consent_missing, consent_expired, consent_revoked, consent_mismatch) otherwise, and with 429
    and Retry-After over the institution's rate (rate_limited) or daily quota (quota_exceeded), or, with an
    attested consent, over the lower attested rate (attested_rate_limited) or attested daily quota
    (attested_quota_exceeded). Granted or refused, the query is recorded in the access log that the person
    and the regulator read.

    With `as_of` (the regulator and the person only, purpose complaint or supervision, no consent): what
    the register would have answered at that moment (`state_as_of`), from the versions still kept
    (ExposureAsOfPublic); a lender or a collector asking so is refused (403 as_of_not_allowed), and a
    person asking about someone else is 404."""
    if (body.as_of is not None or body.consent_id is None or body.purpose.__class__ is not Purpose
            or not principal.can(Permission.exposure_query)):
        return await _as_of(body, request, state, principal)
    return await lender_answer(state, principal, body, request.state.request_id)


async def lender_answer(state: AppState, principal: Principal, body: ExposureRequest, request_id: str | None,
                        ) -> Response:
    """The lender's hot path from the route (`ExposureLane` does the same, sending the answer itself): the
    whole answer, its transactions included, in one thread-pool call (`_lender_answer`); the access event
    is durable before the answer is sent."""
    answer = await answer_lender(state, principal, body, request_id)
    if answer.__class__ is bytes:  # the lane's: encoded once, with its receipt (services.exposure)
        return Response(answer, media_type="application/json")
    return _encoded(answer)  # type: ignore[arg-type]


async def answer_lender(state: AppState, principal: Principal, body: ExposureRequest,
                        request_id: str | None) -> bytes | dict[str, Any]:
    """The lender's answer: on the event loop where this process has a pool of its own for the lane
    (`AppState.lender_pool`, PostgreSQL with a local rate store: no thread hop for a granted answer, which
    was a tenth of a server process's time under load, BENCHMARKS.md), else all of it in one worker thread
    (`_lender_answer`). Anything the lane leaves (a refusal above all) goes to `query_exposure` in a worker
    thread, with what the lane took from the rates, as from `_lender_answer`."""
    now, pool = state.clock(), state.lender_pool
    if pool is None:
        return await run_in_threadpool(_lender_answer, state, principal, body, now, request_id)
    limits = state.exposure_limits
    taken = Taken(take_rate(limits, principal.institution_id) if limits is not None else None)  # a local store
    if taken.rate_refusal is None:
        async with pool.connection() as conn:
            encoded = await answer_on_lane_async(
                conn, state.cipher, principal=principal, country=body.country, national_id=body.national_id,
                purpose=body.purpose, consent_id=body.consent_id, now=now, request_id=request_id,
                allow_test_ids=state.settings.accept_test_identities, tlog=state.tlog, limits=limits, taken=taken)
        if encoded is not None:
            return encoded
    return await run_in_threadpool(_in_session, state, principal, body, now, request_id, taken)


def _encoded(answer: dict[str, Any]) -> Response:
    """`query_exposure`'s answer as the response."""
    # Already JSON-ready and built to ExposurePublic (a test holds it to that model): re-validating it here
    # cost 0.5 ms of a 6.7 ms request. Encoded by orjson, as compact as JSONResponse's: the standard
    # library's encoder was 3.3 % of the server's GIL time under load (py-spy), orjson a tenth of that.
    # orjson refuses integers past 64 bits (a total over many lines at the largest amounts could be one):
    # those answers go through the standard library, as before.
    try:
        encoded = orjson.dumps(answer)
    except TypeError:
        return JSONResponse(answer)
    return Response(encoded, media_type="application/json")


def _lender_answer(state: AppState, principal: Principal, body: ExposureRequest, now: datetime,
                   request_id: str | None) -> bytes | dict[str, Any]:
    """In a worker thread: a plain granted answer on a pooled connection with no session where the
    database has one (`services.exposure.answer_on_lane`: PostgreSQL), else, or for anything the lane
    leaves (a refusal above all), `query_exposure` in a transaction of its own. The rate is taken once."""
    limits = state.exposure_limits
    taken = Taken(take_rate(limits, principal.institution_id) if limits is not None else None)
    if taken.rate_refusal is None:
        lane = lender_connection(state.sessions)
        if lane is not None:
            with lane as conn:
                encoded = answer_on_lane(
                    conn, state.cipher, principal=principal, country=body.country, national_id=body.national_id,
                    purpose=body.purpose, consent_id=body.consent_id, now=now, request_id=request_id,
                    allow_test_ids=state.settings.accept_test_identities, tlog=state.tlog, limits=limits,
                    taken=taken)
            if encoded is not None:
                return encoded
    return _in_session(state, principal, body, now, request_id, taken)


def _in_session(state: AppState, principal: Principal, body: ExposureRequest, now: datetime, request_id: str | None,
                taken: Taken) -> dict[str, Any]:
    """In a worker thread: `query_exposure` in a transaction of its own (what the lane does not answer)."""
    return in_transaction(state, lambda session: query_exposure(
        session, state.cipher, principal=principal, country=body.country, national_id=body.national_id,
        purpose=body.purpose, consent_id=body.consent_id, now=now, request_id=request_id,
        allow_test_ids=state.settings.accept_test_identities, tlog=state.tlog, limits=state.exposure_limits,
        taken=taken,
    ))


async def _as_of(body: ExposureRequest, request: Request, state: StateDep, principal: Principal) -> Response:
    """Not the lender's path: a question about a past moment, a question without one from a caller who
    may ask only about a past moment, or a lender's question without its consent or with a review purpose
    (422 as the schema made it before `as_of` existed)."""
    if body.as_of is None:
        if not principal.can(Permission.exposure_query):
            raise Forbidden(f"the {principal.role.value} role may ask only with as_of (an answer as of a past "
                            "moment)")
        if body.consent_id is None:
            raise RequestValidationError([{"type": "missing", "loc": ("body", "consent_id"), "msg": "Field required",
                                           "input": None}])
        raise RequestValidationError([{"type": "enum", "loc": ("body", "purpose"), "input": body.purpose.value,
                                       "msg": "complaint and supervision are asked with as_of"}])
    now, request_id, as_of = state.clock(), request.state.request_id, body.as_of
    answer = await run_in_threadpool(in_transaction, state, lambda session: answer_as_of(
        session, state.cipher, principal=principal, country=body.country, national_id=body.national_id,
        purpose=body.purpose.value, consent_id=body.consent_id, state_as_of=as_of, now=now, request_id=request_id,
        allow_test_ids=state.settings.accept_test_identities, tlog=state.tlog,
    ))
    return JSONResponse(answer)


@router.get("/{exposure_id}", response_model=StoredExposurePublic, responses=errors(401, 403, 404, "shredded", 422))
def get_exposure(exposure_id: Annotated[str, Path(max_length=36)], request: Request, session: SessionDep,
                 state: StateDep, principal: CanReadExposure):
    """A stored exposure answer, exactly as its lender was told it, with its proof: the stored answer
    hashes to `response_sha256` (kept when it was given), and its access event is a leaf of the signed
    log (`leaf_index`, `checkpoint`, `inclusion`; `verified` is true when both hold). For the lender that
    asked, the person it is about and the regulator; 404 for anyone else, as for a missing one. 410
    (shredded) once its retention period has passed. The read is itself an access event
    (`exposure:read`) that the person sees."""
    # As stored, byte for byte in content: not re-serialised through the model, which would add its defaults.
    return JSONResponse(stored_answer(session, principal=principal, exposure_id=exposure_id, now=state.clock(),
                                      request_id=request.state.request_id))


class ExposureLane:
    """The lender's question without FastAPI's routing and dependency solving, innermost of the app's
    middleware (inside the body cap, which has read the body): routing (every route tried in turn),
    dependency solving and the request/response wrappers were a fifth of a server process's time per
    answer under load (py-spy, BENCHMARKS.md). It takes only the request the route would answer on its
    hot path, decided by the same rules: POST /v1/exposure sent as application/json, a body the route's
    own model accepts, from an institution the gate has resolved (`deps.GATE_PRINCIPAL`) that may ask
    with a consent and asks with one. Everything else, a body FastAPI would refuse included, goes on to
    the app unchanged, so every refusal and error answer stays the route's. A RegisterError (refusals,
    with their access event committed) is answered by the app's own handler, as FastAPI would."""

    PATH = "/v1/exposure"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: APIRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != self.PATH or scope["method"] != "POST"
                or scope.get("root_path")):
            await self.app(scope, receive, send)
            return
        principal = scope.get("state", {}).get(GATE_PRINCIPAL)
        message = await receive()  # the body cap gives the whole body in one message
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return message
            return await receive()

        body = self._lender_question(scope, message, principal)
        if body is None:
            await self.app(scope, replay, send)
            return
        app = scope["app"]
        if self.route is None:  # the route the router would have chosen (the included router's own)
            self.route = next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is post_exposure)
        scope["route"] = self.route  # the request log's and the metrics' route, as the router sets it
        scope["state"]["actor"] = principal.actor  # as deps.current_principal does
        state: AppState = app.state.register
        try:
            answer = await answer_lender(state, principal, body, scope["state"].get("request_id"))
        except Exception as exc:
            handler = _handler(app, exc)
            if handler is None:
                raise  # to the outermost handler, as from the route
            response = await handler(Request(scope, replay), exc)
            await response(scope, replay, send)
            return
        if answer.__class__ is bytes:  # sent as a Response would send it, without making one
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": answer})
            return
        await _encoded(answer)(scope, replay, send)

    @staticmethod
    def _lender_question(scope: Scope, message: Message, principal: Principal | None) -> ExposureRequest | None:
        if (principal is None or not principal.can(Permission.exposure_query) or message["type"] != "http.request"
                or message.get("more_body", False)):
            return None
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
                break  # the first, as Starlette's headers.get
        if content_type is None or content_type.lower() != b"application/json":
            return None
        try:
            # orjson accepts only what the standard library's json.loads (FastAPI's) reads the same way
            data = orjson.loads(message.get("body", b""))
            # as FastAPI validates a body (fastapi._compat.v2.ModelField.validate)
            body = ExposureRequest.model_validate(data, from_attributes=True)
        except (orjson.JSONDecodeError, ValidationError):
            return None
        if body.as_of is not None or body.consent_id is None or body.purpose.__class__ is not Purpose:
            return None
        return body


def _handler(app: Starlette, exc: Exception) -> Callable[[Request, Exception], Awaitable[Response]] | None:
    """The app's handler for `exc`, as Starlette's ExceptionMiddleware finds it (Exception itself is left
    to the outermost middleware, as there)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in app.exception_handlers:
            return app.exception_handlers[cls]
    return None
