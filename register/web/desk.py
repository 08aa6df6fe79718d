"""The regulator's desk under /regulator/: where to look (signals by kind), one signal with its definition and
its evidence, one institution, and the access log searched.

Each page calls the service the matching regulator API route calls, with the principal the staff session
gives (the regulator institution's own), so a page view is recorded exactly as the API read is:
`regulator:signals:read` for the overview, a signal and an institution (which also writes
`regulator:activity:read`, naming it), `regulator:events:read` for the search (SPEC.md, "The regulator's
desk"). A person appears only as the blind subject the events carry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from register.api.deps import SessionDep, StateDep
from register.domain.signals import SignalKind
from register.errors import InvalidInput, NotFound
from register.services import activity, institutions, signals
from register.services.audit_events import events_by_id, search_events
from register.services.paging import encode_cursor
from register.web import labels
from register.web.labels import N_
from register.web.render import PageRoute, render
from register.web.staff_session import DESK_PATH, DeskReads

router = APIRouter(prefix=DESK_PATH, route_class=PageRoute, include_in_schema=False)
Id = Annotated[str, Path(max_length=36)]
# The period and the filters are read as text and checked here, so a bad value gets a page that says what
# was wrong (422) rather than the not-found page the framework's validation would lead to.
PAGE = 50
ACTION_MAX = 60

# The words the desk uses for who acted and why a request was refused; said of an institution, not to the
# person (the person's pages say "you had revoked the consent"; the desk says whose consent it was). A code
# with no words here is shown as the code.
ROLES: dict[str, str] = {
    "lender": N_("Lender"),
    "collector": N_("Debt collector"),
    "regulator": N_("Regulator"),
    "admin": N_("The register's operator"),
    "consumer": N_("The person, on their own pages"),
}
REFUSALS: dict[str, str] = {
    "consent_missing": N_("there was no consent"),
    "consent_mismatch": N_("the consent was for something else"),
    "consent_revoked": N_("the person had revoked the consent"),
    "consent_expired": N_("the consent had expired"),
    "rate_limited": N_("they asked too often"),
    "quota_exceeded": N_("they asked too often"),
    "attested_rate_limited": N_("they asked too often"),
    "attested_quota_exceeded": N_("they asked too often"),
    "reference_reused": N_("the application reference belonged to another consent"),
    "invalid_client": N_("the institution's credentials were not accepted"),
}


def _days(value: str | None) -> int:
    """The period in days, 1 to 90 (30 when not given); anything else is a 422 saying so."""
    if value is None or value == "":
        return 30
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 90:
        raise InvalidInput("the period must be 1 to 90 days", code="desk_bad_period")
    return int(text)

# kind -> (name, definition): the definitions are SPEC.md's ("Signals"), in a sentence each.
KINDS: dict[str, tuple[str, str]] = {
    SignalKind.many_lenders_24h.value: (
        N_("Many lenders in a day"),
        N_("One person looked up, with the lookup granted, by three or more lenders within 24 hours: credit "
           "stacking or identity fraud.")),
    SignalKind.lookups_without_follow_up.value: (
        N_("Lookups without follow-up"),
        N_("An institution with at least 20 granted lookups, and at least half of its decided ones, followed "
           "by no report of a new debt within the follow-up period.")),
    SignalKind.lookup_during_ban.value: (
        N_("Lookups during a credit ban"),
        N_("A lookup of a person while the person's own credit ban was in force.")),
    SignalKind.overdue_disputes.value: (
        N_("Overdue disputes"),
        N_("A creditor with disputes still open after their answer deadline.")),
    SignalKind.late_reporting.value: (
        N_("Late reporting"),
        N_("A creditor that recorded changes more than the allowed number of days after they happened.")),
    SignalKind.sequential_lookups.value: (
        N_("Lookups in identity-number order"),
        N_("An institution with five or more lookups within 24 hours, each about the next or previous identity "
           "number of one it had looked up within the hour: bulk lookups in number order.")),
}


def _signals(request: Request, session, state, staff, days: int) -> dict[str, Any]:
    now = state.clock()
    return signals.list_signals(session, principal=staff.principal, kind=None, since=now - timedelta(days=days),
                                now=now, follow_up_days=state.settings.follow_up_days,
                                report_deadline_days=state.settings.report_deadline_days,
                                request_id=request.state.request_id)


def _names(session) -> dict[str, str]:
    return {i.id: i.name for i in institutions.list_institutions(session)}


@router.get("/")
def desk_overview(request: Request, session: SessionDep, state: StateDep, staff: DeskReads,
                  days_text: Annotated[str | None, Query(alias="days")] = None) -> Response:
    """Where to look: the current signals, by kind, with their counts and links."""
    days = _days(days_text)
    doc = _signals(request, session, state, staff, days)
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for item in doc["items"]:
        by_kind.setdefault(item["kind"], []).append(item)
    return render(request, "regulator/overview.html", staff=staff, kinds=KINDS, by_kind=by_kind, doc=doc,
                  names=_names(session), days=days)


@router.get("/signals/{signal_id}")
def desk_signal(signal_id: Id, request: Request, session: SessionDep, state: StateDep, staff: DeskReads,
                days_text: Annotated[str | None, Query(alias="days")] = None) -> Response:
    """One signal: what it means, and the access events that show it."""
    days = _days(days_text)
    doc = _signals(request, session, state, staff, days)
    found = next((s for s in doc["items"] if s["id"] == signal_id), None)
    if found is None:
        raise NotFound("no such signal in this period")
    # Each evidence event with its time, action and institution, and a link to the access log opened at it
    # (its institution's events from that moment: the cursor just before it).
    # An id whose event is no longer kept (SPEC.md "Retention") is listed alone.
    read = {e.id: (e, name) for e, name in events_by_id(session, found["evidence"])}
    evidence: list[tuple[str, Any, str | None, str | None]] = []
    for event_id in found["evidence"]:
        e, name = read.get(event_id, (None, None))
        query = {"institution": e.actor_id or "", "after": encode_cursor(e.occurred_at, "")} if e else None
        evidence.append((event_id, e, name, f"{DESK_PATH}/events?{urlencode(query)}#event-{event_id}" if e else None))
    return render(request, "regulator/signal.html", staff=staff, signal=found, kinds=KINDS, names=_names(session),
                  days=days, doc=doc, evidence=evidence, roles=ROLES, refusals=REFUSALS, labels=labels)


@router.get("/institutions/{institution_id}")
def desk_institution(institution_id: Annotated[str, Path()], request: Request, session: SessionDep,
                     state: StateDep, staff: DeskReads,
                     days_text: Annotated[str | None, Query(alias="days")] = None) -> Response:
    """One institution: its figures in the period (lookups, disputes, reporting; as GET
    /v1/regulator/institutions/{id}/activity) and the signals about it."""
    found = {i.id: i for i in institutions.list_institutions(session)}.get(institution_id)
    if found is None:  # unknown or malformed alike: a 404 that speaks of the institution
        raise NotFound("no such institution", code="desk_no_institution")
    days = _days(days_text)
    now = state.clock()
    figures = activity.read_activity(
        session, principal=staff.principal, institution_id=institution_id, start=now - timedelta(days=days),
        end=now, now=now, follow_up_days=state.settings.follow_up_days,
        report_deadline_days=state.settings.report_deadline_days, request_id=request.state.request_id,
    )  # fmt: skip
    doc = _signals(request, session, state, staff, days)
    items = [s for s in doc["items"] if s["institution_id"] == institution_id]
    return render(request, "regulator/institution.html", staff=staff, institution=found, items=items,
                  kinds=KINDS, days=days, doc=doc, activity=figures, roles=ROLES, refusals=REFUSALS)


@router.get("/events")
def desk_events(request: Request, session: SessionDep, state: StateDep, staff: DeskReads,
                institution: Annotated[str | None, Query()] = None,
                action: Annotated[str | None, Query()] = None,
                outcome: Annotated[str | None, Query()] = None,
                after: Annotated[str | None, Query()] = None) -> Response:
    """The access log a page at a time, in time order, filtered as GET /v1/audit/events filters it."""
    if action and len(action) > ACTION_MAX:
        raise InvalidInput(f"an action is at most {ACTION_MAX} characters", code="desk_bad_action")
    if (institution and len(institution) > 36) or (outcome and outcome not in labels.OUTCOMES):
        raise InvalidInput("no such institution or outcome to filter by", code="desk_bad_filter")
    if after and len(after) > 512:
        raise InvalidInput("cursor is not one this API returned", code="invalid_cursor")
    names = _names(session)
    rows, next_cursor = search_events(
        session, state.cipher, principal=staff.principal, institution_id=institution or None, action=action or None,
        outcome=outcome or None, identity=None, cursor=after, limit=PAGE, now=state.clock(),
        request_id=request.state.request_id, allow_test_ids=state.settings.accept_test_identities,
    )  # fmt: skip
    return render(request, "regulator/events.html", staff=staff, events=rows, after=next_cursor, names=names,
                  institution=institution or "", action=action or "", outcome=outcome or "", labels=labels,
                  outcomes=sorted(labels.OUTCOMES), roles=ROLES, refusals=REFUSALS)
