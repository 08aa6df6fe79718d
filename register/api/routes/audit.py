from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from register.api.deps import CanReadAudit, CanReadLog, Public, ReadSessionDep, ReplicaDep, SessionDep, StateDep
from register.api.openapi import errors
from register.api.presenters import event_public
from register.api.schemas import (
    AccessEventsPublic, CheckpointPublic, CheckpointsPublic, ConsistencyProofPublic, EventSearch,
    InclusionProofPublic, LeavesPublic, LogKeyPublic, LogKeysPublic, RegulatorDisputesPublic,
)
from register.api.schemas.lookups import InstitutionLookupsPublic
from register.errors import InvalidInput, NotFound
from register.services import disputes, lookups, translog
from register.services.events import record_event
from register.domain.types import IsoDate, Timestamp, UUIDStr
from register.services.audit_events import search_events
from register.services.paging import MAX_PAGE

router = APIRouter(prefix="/v1/audit", tags=["audit"])
T = TypeVar("T")
# Tree sizes and indexes are BIGINT columns: a larger number is refused (422) before it reaches SQL,
# where SQLite cannot bind it (a 500, found by the fuzzer).
MAX_INDEX = 2**63 - 1


@router.get("/events", response_model=AccessEventsPublic, responses=errors(401, 403, 422, "invalid_cursor"))
def list_events(
    request: Request,
    session: SessionDep,
    replica: ReplicaDep,
    state: StateDep,
    principal: CanReadAudit,
    institution_id: UUIDStr | None = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[Timestamp | None, Query(description="RFC 3339, inclusive")] = None,
    until: Annotated[Timestamp | None, Query(description="RFC 3339, exclusive")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
):
    """The access log in time order, filtered. To narrow to one person, use POST /v1/audit/events/search,
    so that identity numbers stay out of URLs."""
    rows, next_cursor = _on_replica(replica, session, lambda reads: search_events(
        session, state.cipher, reads=reads, principal=principal, institution_id=institution_id, action=action,
        outcome=outcome, since=since, until=until, identity=None, cursor=cursor, limit=limit,
        now=state.clock(), request_id=request.state.request_id, allow_test_ids=state.settings.accept_test_identities,
    ))
    return AccessEventsPublic(items=[event_public(e, n, leaf) for e, n, leaf in rows], next_cursor=next_cursor)


@router.post("/events/search", response_model=AccessEventsPublic,
             responses=errors(401, 403, 413, 422, "invalid_national_id", "invalid_cursor"))
def search(body: EventSearch, request: Request, session: SessionDep, replica: ReplicaDep, state: StateDep,
           principal: CanReadAudit):
    """The access-log events about one person (by blind index), with the same filters as GET /v1/audit/events."""
    rows, next_cursor = _on_replica(replica, session, lambda reads: search_events(
        session, state.cipher, reads=reads, principal=principal, institution_id=body.institution_id,
        action=body.action, outcome=body.outcome, since=body.since, until=body.until,
        identity=(body.country, body.national_id), cursor=body.cursor, limit=body.limit, now=state.clock(),
        request_id=request.state.request_id, allow_test_ids=state.settings.accept_test_identities,
    ))
    return AccessEventsPublic(items=[event_public(e, n, leaf) for e, n, leaf in rows], next_cursor=next_cursor)


# --- the transparency log -------------------------------------------------------------------------


def _on_replica(replica: Session, primary: Session, work: Callable[[Session], T],
                retry_on: tuple[str, ...] = ("invalid_tree_size", "not_found")) -> T:
    """`work`'s reads on a standby (SPEC.md, "Many machines": read routing); again on the primary when the
    standby has not yet replayed what was asked for (a refusal coded in `retry_on`: a proof for a tree size
    is the same wherever it is made, an institution made a moment ago is on the primary), or when the
    standby went away or cancelled the read (a conflict with its replay). `work` writes (an access event)
    only after its reads, so a failed first try leaves nothing behind."""
    if replica is primary or replica.get_bind() is primary.get_bind():
        return work(primary)
    try:
        return work(replica)
    except (InvalidInput, NotFound) as exc:
        if exc.code not in retry_on:
            raise
    except (OperationalError, InterfaceError):
        replica.rollback()
        primary.rollback()  # in case it was the primary's write that failed: tried again, it answers 503
    return work(primary)


def _b64_hash(value: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidInput(f"{name} must be the base64 of 32 bytes", code="invalid_hash")
    return raw


@router.get("/log-key", response_model=LogKeyPublic, dependencies=[Depends(Public())])
def log_key(session: SessionDep, state: StateDep):
    """The log's public key (the active one), to pin in a verifier. Open to anyone."""
    return state.tlog.key_info(session)


@router.get("/log-keys", response_model=LogKeysPublic, dependencies=[Depends(Public())])
def log_keys(session: SessionDep, state: StateDep):
    """Every key the log has signed with, and the signed handovers from each to the next: a verifier that
    pinned an earlier key follows them to the active one. Open to anyone."""
    return state.tlog.keys_info(session)


@router.get("/checkpoint", response_model=CheckpointPublic, responses=errors(401, 403, "no_checkpoint"))
def checkpoint(session: SessionDep, _: CanReadLog):
    """The latest signed checkpoint (tree size, root hash, time) as a C2SP signed note."""
    return translog.latest(session).as_json()


@router.post("/checkpoints", response_model=CheckpointPublic, responses=errors(401, 403, "no_checkpoint"))
def make_checkpoint(session: SessionDep, state: StateDep, _: CanReadAudit):
    """Integrate what is pending and sign a checkpoint now (on demand)."""
    state.tlog.integrate_and_checkpoint(session)
    return translog.latest(session).as_json()


@router.get("/checkpoints", response_model=CheckpointsPublic, responses=errors(401, 403, 422))
def checkpoints(
    session: SessionDep,
    _: CanReadLog,
    since: Annotated[int, Query(ge=0, le=MAX_INDEX, description="Only checkpoints of at least this tree size")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
):
    """Signed checkpoints in the order they were made."""
    return {"items": [cp.as_json() for cp in translog.checkpoints(session, since=since, limit=limit)]}


@router.get(
    "/proof/inclusion",
    response_model=InclusionProofPublic,
    responses=errors(401, 403, 404, 422, "invalid_query", "invalid_hash", "invalid_tree_size", "invalid_leaf_index"),
)
def inclusion_proof(
    replica: ReadSessionDep,
    session: SessionDep,
    _: CanReadLog,
    tree_size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    leaf_index: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
    leaf_hash: Annotated[str | None, Query(max_length=64, description="base64; e.g. from a receipt")] = None,
):
    """An RFC 9162 inclusion proof for a leaf, by index or by leaf hash, in the tree of `tree_size`."""
    if (leaf_index is None) == (leaf_hash is None):
        raise InvalidInput("give exactly one of leaf_index and leaf_hash", code="invalid_query")
    hashed = _b64_hash(leaf_hash, "leaf_hash") if leaf_hash is not None else None
    return _on_replica(replica, session, lambda s: translog.inclusion(s, leaf_index=leaf_index, tree_size=tree_size,
                                                                      leaf_hash=hashed))


@router.get("/proof/consistency", response_model=ConsistencyProofPublic,
            responses=errors(401, 403, 422, "invalid_tree_size"))
def consistency_proof(
    replica: ReadSessionDep, session: SessionDep, _: CanReadLog, first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    second: Annotated[int, Query(ge=0, le=MAX_INDEX)],
):
    """An RFC 9162 consistency proof that the tree of size `second` extends the tree of size `first`."""
    return _on_replica(replica, session, lambda s: translog.consistency(s, first=first, second=second))


@router.get("/leaves", response_model=LeavesPublic,
            responses=errors(401, 403, "leaf_event_missing", 422, "invalid_range"))
def get_leaves(
    request: Request,
    session: SessionDep,
    replica: ReplicaDep,
    state: StateDep,
    principal: CanReadAudit,
    start: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    end: Annotated[int, Query(ge=0, le=MAX_INDEX, description="Exclusive; at most 1000 leaves per call")],
):
    """Raw leaf bytes (base64), re-encoded from the stored events, so that any change to an event shows.
    Read on a standby when there is one; the primary answers what the standby has not replayed yet."""

    def read(reads: Session) -> dict:
        out = translog.leaves(reads, start=start, end=end)
        if reads is not session and out["end"] < min(end, start + translog.MAX_LEAVES):
            # Fewer than asked for: a verifier that just read the primary's checkpoint needs them all.
            raise NotFound("the standby has not replayed these leaves yet", code="not_replayed")
        return out

    out = _on_replica(replica, session, read, retry_on=("leaf_event_missing", "not_replayed"))
    record_event(session, principal=principal, action="regulator:leaves:read", now=state.clock(),
                 request_id=request.state.request_id, details={"start": out["start"], "end": out["end"]})
    return out


@router.get("/disputes", response_model=RegulatorDisputesPublic, responses=errors(401, 403, 422))
def audit_disputes(
    request: Request, session: SessionDep, replica: ReplicaDep, state: StateDep, principal: CanReadAudit,
    dispute_state: Annotated[Literal["open", "overdue", "corrected", "upheld", "withdrawn"] | None,
                             Query(alias="state", description="overdue: open past the deadline")] = None,
):
    """Disputes across all creditors, without the person's words or identity, and per creditor how many are
    open, overdue and answered late: which lenders let disputes run late."""
    return _on_replica(replica, session, lambda reads: disputes.regulator_disputes(
        session, reads=reads, principal=principal, state=dispute_state, now=state.clock(),
        request_id=request.state.request_id))


@router.get("/institutions/{institution_id}/lookups", response_model=InstitutionLookupsPublic,
            responses=errors(401, 403, 404, 422, "invalid_range"))
def institution_lookups(
    request: Request, session: SessionDep, replica: ReplicaDep, state: StateDep, principal: CanReadAudit,
    institution_id: Annotated[str, Path(max_length=36, description="The institution's id")],
    first_day: Annotated[IsoDate | None, Query(alias="from", description="First UTC day, inclusive")] = None,
    last_day: Annotated[IsoDate | None, Query(alias="to", description="Last UTC day, inclusive")] = None,
):
    """One institution's lookups (exposure queries) by the kind of consent they named (given by the person,
    or attested by the institution itself), granted and refused, and how many granted ones had no
    follow-up: no change of a line naming the person reported by the institution within
    REGISTER_FOLLOW_UP_DAYS after the lookup (younger ones are pending). Many attested lookups without
    follow-up is what harvesting looks like. Counts only, no person; the read is itself recorded."""
    return _on_replica(replica, session, lambda reads: lookups.institution_lookups(
        session, reads=reads, principal=principal, institution_id=institution_id, first_day=first_day,
        last_day=last_day, follow_up_days=state.settings.follow_up_days, now=state.clock(),
        request_id=request.state.request_id,
    ))
