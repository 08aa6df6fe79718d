"""Dependencies: the request's transaction, the caller, and each route's declared policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from register.config import Settings
from register.crypto.fields import FieldCipher
from register.crypto.idtoken import IdTokenError, IdTokenVerifier
from register.domain.identity import InvalidNationalId, parse_national_id
from register.domain.permission import Permission, Principal, Role
from register.errors import Forbidden, RegisterError, Unauthenticated
from register.services.bearer import authenticate_bearer
from register.services.exposure import LenderPool
from register.services.institutions import TokenCache
from register.services.limits import ExposureLimits
from register.services.reports import ReportWorker
from register.services.translog import TransparencyLog

T = TypeVar("T")
GATE_PRINCIPAL = "principal"  # scope["state"] key: the caller as the gate resolved it


def utcnow() -> datetime:
    """The app's clock unless a test sets its own (`AppState.clock`)."""
    return datetime.now(UTC)


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: FieldCipher
    admin_token: str
    id_tokens: IdTokenVerifier
    tlog: TransparencyLog
    report_worker: ReportWorker | None = None
    exposure_limits: ExposureLimits | None = None  # None: no rate limit or quota
    tokens: TokenCache = field(default_factory=TokenCache)
    clock: Callable[[], datetime] = utcnow
    # Reads that may be a moment old (SPEC.md, "Many machines": read routing): a standby's sessions on a
    # multi-host database URL, else `sessions` itself.
    read_sessions: sessionmaker[Session] | None = None
    # The lender's hot path on this process's event loop (services.exposure.answer_on_lane_async): None on
    # SQLite, and where the rate's store is remote (its calls are then made in a worker thread).
    lender_pool: LenderPool | None = None


async def app_state(request: Request) -> AppState:
    # async: a sync dependency costs a hop to the thread pool and back (measured: thread hand-offs were
    # the largest single cost of an exposure request's Python time, BENCHMARKS.md)
    return request.app.state.register


StateDep = Annotated[AppState, Depends(app_state)]


def get_session(request: Request) -> Iterator[Session]:
    """The request owns the transaction: commit when the handler returns, roll back when it raises.

    Declared with scope="function" so the commit happens before the response is sent: a client that
    sees 2xx knows its write is durable. An error marked `commit=True` (a refusal that must still leave
    its access event) commits what was flushed before re-raising.
    """
    state: AppState = request.app.state.register
    session = state.sessions()
    try:
        yield session
        session.commit()
    except RegisterError as exc:
        if exc.commit:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for a read that may lag the primary by the replication delay; it writes nothing (rolled
    back at the end). Anything that writes, an access event too, uses `SessionDep`."""
    state: AppState = request.app.state.register
    session = (state.read_sessions or state.sessions)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


def get_replica(request: Request, session: SessionDep) -> Iterator[Session]:
    """The session for the read part of a request that also writes (a regulator's search records its access
    event on the primary, in `SessionDep`): a standby's session on a multi-host URL, else the request's own
    session. Never a second session on the same database: on SQLite a second transaction in the request's
    thread would wait at the writer gate for the first."""
    state: AppState = request.app.state.register
    if state.read_sessions is None or state.read_sessions is state.sessions:
        yield session
        return
    replica = state.read_sessions()
    try:
        yield replica
    finally:
        replica.rollback()
        replica.close()


ReplicaDep = Annotated[Session, Depends(get_replica, scope="function")]


def in_transaction(state: AppState, work: Callable[[Session], T]) -> T:
    """`work` in a transaction of its own, with `get_session`'s rules (commit on return, and on an error
    marked `commit=True`; roll back otherwise). For a hot route run whole in one thread-pool call, instead
    of a sync session dependency (one hop to enter, one to commit) and a sync handler (a third)."""
    session = state.sessions()
    try:
        result = work(session)
        session.commit()
        return result
    except RegisterError as exc:
        if exc.commit:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

_bearer = HTTPBearer(auto_error=False, description="Operator-issued institution token, or the operator's admin token")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller. Institutions' tokens were usually resolved already by `register.api.gate` (before the
    body was read): then nothing blocks, and this runs on the event loop; otherwise the token is verified
    or looked up in the thread pool (a look-up in a short transaction of its own)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    state: AppState = request.app.state.register
    token = credentials.credentials
    if token.count(".") == 2:
        principal = await run_in_threadpool(_consumer, state, token)
    else:
        principal = request.scope["state"].get(GATE_PRINCIPAL) or await run_in_threadpool(
            authenticate_bearer, state.sessions, token, admin_token=state.admin_token, now=state.clock(),
            cache=state.tokens)
    if principal is None:
        raise Unauthenticated("the token is not valid", headers={"WWW-Authenticate": "Bearer"})
    request.scope["state"]["actor"] = principal.actor
    return principal


def _consumer(state: AppState, token: str) -> Principal:
    """A person signed in through a trusted identity provider; `sub` is their national identity number."""
    try:
        claims = state.id_tokens.verify(token)
        nid = parse_national_id(claims.country, claims.subject, allow_test=state.settings.accept_test_identities)
    except IdTokenError as exc:
        raise Unauthenticated(str(exc), code="invalid_id_token", headers={"WWW-Authenticate": "Bearer"}) from None
    except InvalidNationalId:
        raise Unauthenticated("the token's subject is not a valid national identity number",
                              code="invalid_id_token", headers={"WWW-Authenticate": "Bearer"}) from None
    return Principal(role=Role.consumer, name="consumer", national_id=nid,
                     subject=state.cipher.blind_index(nid.blind_index_input()))


class Authorize:
    """A route's policy: the caller must hold `permission`. The route-matrix test finds these."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(self.permission):
            raise Forbidden(f"the {principal.role.value} role may not {self.permission.value}")
        return principal


class AuthorizeAny(Authorize):
    """A route's policy: the caller must hold one of `permissions` (the first is `permission`); the route
    decides what each allows. The route-matrix test reads `permissions`."""

    def __init__(self, *permissions: Permission) -> None:
        super().__init__(permissions[0])
        self.permissions = permissions

    async def __call__(self, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        for permission in self.permissions:
            if principal.can(permission):
                return principal
        raise Forbidden(f"the {principal.role.value} role may not {self.permission.value}")


class Public:
    """The explicit policy of a route anyone may call."""

    async def __call__(self) -> None:
        return None


def policy(permission: Permission) -> type[Principal]:
    return Annotated[Principal, Depends(Authorize(permission))]  # type: ignore[return-value]


CanCreateInstitutions = policy(Permission.institutions_create)
CanManageCredentials = policy(Permission.credentials_manage)
CanReadInstitutions = policy(Permission.institutions_read)
CanReadObligations = policy(Permission.obligations_read)
CanWriteObligations = policy(Permission.obligations_write)
CanReadAudit = policy(Permission.audit_read)
CanReadLog = policy(Permission.log_read)
CanAttestConsents = policy(Permission.consents_attest)
CanGrantConsents = policy(Permission.consents_grant)
CanReadConsents = policy(Permission.consents_read)
CanRevokeConsents = policy(Permission.consents_revoke)
CanQueryExposure = policy(Permission.exposure_query)
# POST /v1/exposure: a lender's question (exposure:query), or the regulator's or the person's question
# about a past moment (exposure:as_of, with `as_of` in the body).
CanAskExposure = Annotated[Principal, Depends(AuthorizeAny(Permission.exposure_query, Permission.exposure_as_of))]
CanReadExposure = policy(Permission.exposure_read)
CanReadOwnData = policy(Permission.me_read)
CanWriteOwnData = policy(Permission.me_write)
CanAnswerDisputes = policy(Permission.disputes_answer)
