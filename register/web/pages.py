"""The person's pages: overview, debts, who looked (with each look's proof), consents, what we keep, help.

Each page calls the service the matching /v1/me route calls, with the principal the session gives, so a
page read is recorded exactly as the API read is (consumer:obligations:read and so on).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from register.api.deps import Public, SessionDep, StateDep
from register.audit import merkle
from register.errors import Conflict, NotFound
from register.services import consents as consent_svc
from register.services import credit_ban, keeping, me
from register.services.statistics import statistics_of
from register.services.retention import policy_of
from register.web import labels
from register.web.charts import bar_chart
from register.web.i18n import LANGUAGE_COUNTRIES, choose_language
from register.web.render import PageRoute, redirect, render
from register.web.session import PersonReads, PersonRevokesConsents, person_if_signed_in
from register.web.summary import ban_end, help_for, overview

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)
PublicPage = Annotated[None, Depends(Public())]
Id = Annotated[str, Path(max_length=36)]


@router.get("/")
def overview_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    doc = me.my_obligations(session, state.cipher, principal=person.principal, now=state.clock(),
                            request_id=request.state.request_id)
    summary = overview(doc)
    own, _ = help_for(person.national_id.country)
    # A ban being lifted ends sooner than the person may think: the overview says when (read as the ban
    # page reads it, only when a ban is on).
    ban = (credit_ban.get_ban(session, state.cipher, principal=person.principal, now=state.clock(),
                              request_id=request.state.request_id) if doc["credit_ban"]["active"] else None)
    return render(request, "overview.html", person=person, summary=summary, doc=doc, labels=labels,
                  ban_ends=ban_end(ban), masked=person.national_id.masked(), help=own if summary.needs_help else [])


@router.get("/debts")
def debts_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    doc = me.my_obligations(session, state.cipher, principal=person.principal, now=state.clock(),
                            request_id=request.state.request_id)
    names = {ln["id"]: ln["creditor"]["name"] for ln in doc["obligations"]}
    return render(request, "debts.html", person=person, lines=doc["obligations"], names=names, labels=labels)


@router.get("/who-looked")
def who_looked_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads,
                    older: Annotated[str | None, Query(max_length=512)] = None) -> Response:
    # A page of 100, newest first, with a link to older ones: nothing is ever cut off the end.
    rows, next_cursor = me.my_access_log(session, state.cipher, principal=person.principal, now=state.clock(),
                                         request_id=request.state.request_id, cursor=older)
    # The debt an event is about, by kind and reference; and the consent it names only if it is the
    # person's own (a refused look may name a made-up id or another person's).
    debts = me.my_debts_named(session, state.cipher, principal=person.principal,
                              obligation_ids=[i for e, _, _ in rows if (i := _debt_of(e))])
    mine = me.my_consent_ids(session, state.cipher, principal=person.principal,
                             consent_ids=[e.consent_id for e, _, _ in rows if e.consent_id])
    return render(request, "who_looked.html", person=person, labels=labels,
                  events=[_event(e, n, i, debts, mine) for e, n, i in rows], older=next_cursor)


def _debt_of(e) -> str | None:
    obligation_id = (e.details or {}).get("obligation_id")
    return obligation_id if isinstance(obligation_id, str) else None


def _event(e, name: str | None, leaf_index: int | None, debts: dict[str, dict[str, str]],
           mine: set[str]) -> dict[str, Any]:
    details = e.details or {}
    debt = debts.get(_debt_of(e) or "")
    if debt is None and isinstance(details.get("external_ref"), str):  # a line that no longer names the person
        debt = {"kind": None, "reference": details["external_ref"]}
    return {
        "id": e.id, "occurred_at": e.occurred_at, "who": name, "role": e.actor_role,
        "action": labels.ACTIONS.get(e.action, labels.OTHER_ACTION), "purpose": labels.PURPOSES.get(e.purpose or ""),
        "outcome": labels.OUTCOMES.get(e.outcome, ("", e.outcome)), "refused": e.outcome == "refused",
        "reason": labels.REFUSALS.get(e.reason or ""), "in_log": leaf_index is not None, "debt": debt,
        "consent_id": e.consent_id if e.consent_id in mine else None,
        "credit_ban": bool(details.get("credit_ban_active")),
    }  # fmt: skip


@router.get("/who-looked/{event_id}")
def proof_page(event_id: Id, request: Request, session: SessionDep, person: PersonReads) -> Response:
    """The event's inclusion proof against the latest signed checkpoint, checked here and shown in full so
    anyone can check it again with the log's public key."""
    try:
        proof = me.my_event_proof(session, principal=person.principal, event_id=event_id)
    except (Conflict, NotFound) as exc:
        if exc.code not in ("not_yet_integrated", "no_checkpoint"):
            raise
        return render(request, "proof.html", person=person, proof=None, event_id=event_id)
    leaf = base64.b64decode(proof["leaf"])
    inclusion = proof["inclusion"]
    root = base64.b64decode(proof["checkpoint"]["root_hash"])
    try:
        merkle.verify_inclusion(merkle.leaf_hash(leaf), inclusion["leaf_index"], inclusion["tree_size"],
                                [base64.b64decode(p) for p in inclusion["proof"]], root)
        verified = True
    except merkle.ProofError:
        verified = False
    entry = json.loads(leaf)
    about = {"who": me.actor_name(session, entry.get("actor_id")), "role": entry.get("actor_role"),
             "action": labels.ACTIONS.get(entry.get("action"), labels.OTHER_ACTION), "when": entry.get("occurred_at"),
             "outcome": labels.OUTCOMES.get(entry.get("outcome"), ("", None))[1]}  # the entry, in words
    return render(request, "proof.html", person=person, proof=proof, event_id=event_id, verified=verified,
                  about=about, leaf_text=json.dumps(entry, indent=2, ensure_ascii=False))


@router.get("/consents")
def consents_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    now = state.clock()
    rows = me.my_consents(session, state.cipher, principal=person.principal, now=now,
                          request_id=request.state.request_id)
    items = [{"id": c.id, "who": name, "purpose": labels.PURPOSES.get(c.purpose),
              "source": labels.SOURCES.get(c.source), "granted_at": c.granted_at, "expires_at": c.expires_at,
              "revoked_at": c.revoked_at, "active": c.revoked_at is None and c.expires_at > now}
             for c, name in rows]  # fmt: skip
    return render(request, "consents.html", person=person, active=[c for c in items if c["active"]],
                  past=[c for c in items if not c["active"]], revoked=request.query_params.get("revoked") == "1")


@router.post("/consents/{consent_id}/revoke")
def revoke_consent(consent_id: Id, request: Request, session: SessionDep, state: StateDep,
                   person: PersonRevokesConsents) -> Response:
    """The same revocation as DELETE /v1/consents/{id}: at once, recorded, and another person's is 404."""
    consent_svc.revoke_consent(session, state.cipher, principal=person.principal, consent_id=consent_id,
                               now=state.clock(), request_id=request.state.request_id)
    return redirect("/app/consents?revoked=1")


@router.get("/what-we-keep")
def what_we_keep_page(request: Request, session: SessionDep, state: StateDep, person: PersonReads) -> Response:
    """What the register keeps about the person and until when: the same service as GET /v1/me/retention."""
    doc = keeping.what_we_keep(session, state.cipher, principal=person.principal, policy=policy_of(state.settings),
                               now=state.clock(), run_interval_seconds=state.settings.retention_interval_seconds,
                               request_id=request.state.request_id)
    return render(request, "what_we_keep.html", person=person, doc=doc, labels=labels,
                  live=[ln for ln in doc["obligations"] if ln["kept_until"] is None],
                  ending=[ln for ln in doc["obligations"] if ln["kept_until"] is not None],
                  hours=max(1, round(doc["run_interval_seconds"] / 3600)))


@router.get("/statistics")
def statistics_page(request: Request, session: SessionDep, state: StateDep, _: PublicPage) -> Response:
    """The public statistics, for everyone: the figures of GET /v1/statistics in tables, and two charts
    drawn here as SVG. A signed-in person keeps their pages' navigation."""
    person = person_if_signed_in(request, session, state)
    doc = statistics_of(state).current(session)
    return render(request, "statistics.html", person=person, doc=doc, labels=labels, chart=bar_chart,
                  countries=sorted({r["country"] for r in doc["arrears"]}, key=lambda c: c or ""),
                  months=[f'{r["month"][5:7]}/{r["month"][2:4]}' for r in doc["lookups"]])  # 2026-11 as 11/26


@router.get("/help")
def help_page(request: Request, session: SessionDep, state: StateDep, _: PublicPage) -> Response:
    """Free debt counselling, for everyone: no sign-in needed to find help. A signed-in person sees their
    own country's first and keeps their pages' navigation."""
    person = person_if_signed_in(request, session, state)
    country = person.national_id.country if person else LANGUAGE_COUNTRIES.get(choose_language(request))
    own, others = help_for(country)
    return render(request, "help.html", person=person, own=own, others=others, labels=labels,
                  dispute_days=state.settings.dispute_days)
