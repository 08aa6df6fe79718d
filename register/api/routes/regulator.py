"""The regulator's desk API (`/v1/regulator/...`): where to look, with evidence from the access log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from register.api.deps import CanReadAudit, ReplicaDep, SessionDep, StateDep
from register.api.openapi import errors
from register.api.schemas.activity import InstitutionActivityPublic
from register.api.schemas.regulator import SignalsPublic
from register.domain.signals import SignalKind
from register.domain.types import Timestamp
from register.errors import NotFound
from register.services import activity, signals

router = APIRouter(prefix="/v1/regulator", tags=["audit"])
T = TypeVar("T")


def on_replica(replica: Session, primary: Session, work: Callable[[Session], T]) -> T:
    """`work`'s reads on a standby (SPEC.md, "Many machines": read routing), as the audit routes do; again
    on the primary when the standby does not know the institution yet (made a moment ago), went away or
    cancelled the read. `work` writes its access event only after its reads."""
    if replica is primary or replica.get_bind() is primary.get_bind():
        return work(primary)
    try:
        return work(replica)
    except NotFound:
        pass
    except (OperationalError, InterfaceError):
        replica.rollback()
        primary.rollback()
    return work(primary)


@router.get("/signals", response_model=SignalsPublic, responses=errors(401, 403, 422, "invalid_range"))
def list_signals(
    request: Request, session: SessionDep, replica: ReplicaDep, state: StateDep, principal: CanReadAudit,
    kind: Annotated[SignalKind | None, Query(description="One kind; all when unset")] = None,
    since: Annotated[Timestamp | None, Query(description="RFC 3339; default 30 days back, at most 90")] = None,
    proofs: Annotated[bool, Query(description="Add each evidence event's leaf and inclusion proof against the "
                                              "latest signed checkpoint")] = False,
):
    """Signals (SPEC.md, "Signals"): a person looked up by three or more lenders within 24 hours, lookups
    while the person's credit ban was on, creditors with disputes open past their deadline, and
    institutions whose granted lookups are mostly without follow-up. Each lists the access events that
    show it. Computed on request, on a standby when there is one; the read is itself recorded
    (`regulator:signals:read`). With
    `proofs=true`, each signal's `evidence_proofs` and the answer's `checkpoint`: the regulator's verifier
    checks them against its pinned log key."""
    return on_replica(replica, session, lambda reads: signals.list_signals(
        session, reads=reads, principal=principal, kind=kind, since=since, now=state.clock(),
        follow_up_days=state.settings.follow_up_days, report_deadline_days=state.settings.report_deadline_days,
        request_id=request.state.request_id, proofs=proofs))


@router.get("/institutions/{institution_id}/activity", response_model=InstitutionActivityPublic,
            responses=errors(401, 403, 404, 422, "invalid_range"))
def institution_activity(
    request: Request, session: SessionDep, replica: ReplicaDep, state: StateDep, principal: CanReadAudit,
    institution_id: Annotated[str, Path(max_length=36, description="The institution's id")],
    start: Annotated[Timestamp | None, Query(alias="from", description="RFC 3339, inclusive; default 30 days "
                                                                        "before `to`")] = None,
    end: Annotated[Timestamp | None, Query(alias="to", description="RFC 3339, exclusive; default now. At most "
                                                                    "92 days after `from`")] = None,
):
    """One institution's figures (SPEC.md, "Institution activity"): lookups per UTC day (granted, refused
    by reason), per consent, outside office hours, spikes against its own 28-day baseline, lookups while
    the person's credit ban was on, lookups without follow-up; disputes open, overdue and the median answer
    time; reporting freshness (stale lines, the last file, file and line error rates, changes reported
    late). Counts only, read on a standby when there is one; the read is itself recorded
    (`regulator:activity:read`)."""
    return on_replica(replica, session, lambda reads: activity.read_activity(
        session, reads=reads, principal=principal, institution_id=institution_id, start=start, end=end,
        now=state.clock(), follow_up_days=state.settings.follow_up_days,
        report_deadline_days=state.settings.report_deadline_days, request_id=request.state.request_id))
