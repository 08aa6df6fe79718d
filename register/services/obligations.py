"""Reporting use cases: create or update, retract, read and list an institution's obligations.

Each use case authorises, loads, decides, and only flushes: the request's transaction commits.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.domain.obligation import (
    CollectionLink,
    ObligationReport,
    Stored,
    Verdict,
    check_collects_allowed,
    check_report,
    collection_link,
    decide,
)
from register.domain.permission import Principal, Role
from register.domain.state import STATE_EXTRA, REPORTED_FIELDS, fields_of, state_of_fields
from register.errors import Gone, InvalidInput, NotFound, PreconditionFailed
from register.services import disputes, identities
from register.services.paging import decode_cursor, encode_cursor
from register.services.events import record_event, record_per_person
from register.storage import obligations as store
from register.storage.models import Obligation, ObligationDebtor, ObligationVersion
from register.storage.persons import get_persons

@dataclass(frozen=True)
class DebtorView:
    country: str
    role: str
    national_id_masked: str


@dataclass(frozen=True)
class ObligationView:
    obligation: Obligation
    debtors: list[DebtorView]
    subjects: tuple[bytes, ...] = ()  # the debtors' blind indexes: whom a read of this view is about
    collection_link: CollectionLink | None = None  # for a line with `collects`: has its target named it back?

    @property
    def etag(self) -> str:
        return etag_of(self.obligation)


@dataclass(frozen=True)
class ReportOutcome:
    view: ObligationView
    created: bool
    changed: bool


def etag_of(ob: Obligation) -> str:
    return f'"{ob.id}.{ob.version}"'


def state_of(ob: Obligation, debtors: list[tuple[str, str]]) -> dict[str, Any]:
    """The whole reported state as JSON, with persons by id: what a version records."""
    columns = {f: getattr(ob, f) for f in (*REPORTED_FIELDS, *STATE_EXTRA)}
    return state_of_fields(columns, debtors)


def state_hash(state: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(state)).hexdigest()


def _apply(ob: Obligation, report: ObligationReport) -> None:
    for column, value in fields_of(report).items():
        setattr(ob, column, value)


def report_obligation(
    session: Session,
    cipher: FieldCipher,
    *,
    principal: Principal,
    external_ref: str,
    report: ObligationReport,
    now: datetime,
    allow_test_ids: bool,
    request_id: str | None = None,
    if_match: str | None = None,
) -> ReportOutcome:
    """Create or update the obligation this institution knows as `external_ref`.

    An update older than the stored `as_of` is refused (409). The same `as_of` with the same content is
    an idempotent repeat (200, no new version); with other content it is refused as stale too, since
    two different states cannot both be true at one instant.
    """
    assert principal.institution_id is not None
    check_report(report, now=now)
    check_collects_allowed(report, collector=principal.role is Role.collector)
    nids = identities.parse_debtor_identities(report.debtors, allow_test=allow_test_ids)
    persons = [identities.resolve_person(session, cipher, nid) for nid in nids]
    debtors = [(p.id, d.role.value) for p, d in zip(persons, report.debtors, strict=True)]
    named = [p.blind_index for p in persons]

    ob = store.get_obligation(
        session, institution_id=principal.institution_id, external_ref=external_ref, for_update=True
    )
    _check_named_dispute(session, principal, report, ob)
    if ob is None:
        if if_match is not None and if_match != "*":
            raise PreconditionFailed("If-Match given for an obligation that does not exist")
        ob = Obligation(
            id=str(uuid.uuid4()),
            institution_id=principal.institution_id,
            external_ref=external_ref,
            version=1,
            created_at=now,
            updated_at=now,
        )
        _apply(ob, report)
        ob.state_hash = state_hash(state_of(ob, debtors))
        if store.insert_obligation(session, ob):
            store.replace_debtors(session, ob.id, debtors)
            _record_version(session, ob, debtors, change="created", now=now, request_id=request_id)
            _record_change(session, principal, ob, "created", named, now=now, request_id=request_id)
            return ReportOutcome(view=view_of(session, cipher, ob), created=True, changed=True)
        # A concurrent request created it first: continue as an update of that row.
        ob = store.get_obligation(
            session, institution_id=principal.institution_id, external_ref=external_ref, for_update=True
        )
        assert ob is not None

    if if_match is not None and if_match not in ("*", etag_of(ob)):
        raise PreconditionFailed(f"the obligation has changed: its ETag is now {etag_of(ob)}")
    candidate = Obligation(**{f: getattr(ob, f) for f in Obligation.model_fields})
    _apply(candidate, report)
    new_hash = state_hash(state_of(candidate, debtors))
    if ob.state_hash is None:  # written before state hashes existed: hash what is stored
        current = [(d.person_id, d.role) for d in store.debtors_by_obligation(session, [ob.id])[ob.id]]
        ob.state_hash = state_hash(state_of(ob, current))
    verdict = decide(Stored(as_of=ob.as_of, state_hash=ob.state_hash, retracted=ob.retracted_at is not None),
                     as_of=report.as_of, state_hash=new_hash)
    if verdict is Verdict.unchanged:
        return ReportOutcome(view=view_of(session, cipher, ob), created=False, changed=False)

    _apply(ob, report)
    ob.version += 1
    ob.updated_at = now
    ob.state_hash = new_hash
    ob.retracted_at = None
    ob.retraction_reason = None
    session.flush()
    dropped = {d.person_id for d in store.debtors_by_obligation(session, [ob.id])[ob.id]} - {p for p, _ in debtors}
    store.replace_debtors(session, ob.id, debtors)
    _record_version(session, ob, debtors, change=verdict.value, now=now, request_id=request_id)
    _record_change(session, principal, ob, verdict.value, named + _subjects(session, dropped), now=now,
                   request_id=request_id)
    close_corrected_disputes(session, principal, ob.id, report.corrects_dispute, [p for p, _ in debtors],
                             now=now, request_id=request_id)
    return ReportOutcome(view=view_of(session, cipher, ob), created=False, changed=True)


def _check_named_dispute(session: Session, principal: Principal, report: ObligationReport, ob: Obligation | None) -> None:
    """A report naming `corrects_dispute` must name an open dispute on this very line: refused before
    anything changes otherwise."""
    if report.corrects_dispute is None:
        return
    assert principal.institution_id is not None
    found = disputes.open_disputes_for(session, institution_id=principal.institution_id,
                                       dispute_ids=[report.corrects_dispute])  # fmt: skip
    if ob is None or found.get(report.corrects_dispute) != ob.id:
        raise InvalidInput("corrects_dispute: no open dispute with that id on this line", code="dispute_not_found",
                           errors=[{"loc": ["body", "corrects_dispute"], "msg": "no open dispute on this line"}])


def close_corrected_disputes(session: Session, principal: Principal, obligation_id: str, named: str | None,
                             person_ids: list[str], *, now: datetime, request_id: str | None) -> None:
    """After an accepted change: the dispute it names closes as corrected, and so does any open dispute
    of a person the line no longer names."""
    if named is not None:
        disputes.close_by_report(session, principal=principal, obligation_id=obligation_id, now=now,
                                 request_id=request_id, cause="named", dispute_id=named)
    disputes.close_by_report(session, principal=principal, obligation_id=obligation_id, now=now,
                             request_id=request_id, cause="debtors", debtors=person_ids)


def _subjects(session: Session, person_ids: set[str]) -> list[bytes]:
    return [p.blind_index for p in get_persons(session, person_ids).values()]


def _record_change(
    session: Session, principal: Principal, ob: Obligation, change: str, subjects: list[bytes], *,
    now: datetime, request_id: str | None,
) -> None:
    """The access-log entries for a reporting change: one per person the line names, before or after the
    change (a co-debtor and a guarantor see it as the primary debtor does; so does a debtor it removed)."""
    details = {"obligation_id": ob.id, "external_ref": ob.external_ref, "version": ob.version}
    for subject in sorted(set(subjects)):
        record_event(session, principal=principal, action=f"obligation:{change}", now=now, subject=subject,
                     request_id=request_id, details=details)


def _record_version(
    session: Session,
    ob: Obligation,
    debtors: list[tuple[str, str]],
    *,
    change: str,
    now: datetime,
    request_id: str | None,
) -> None:
    state = state_of(ob, debtors)
    if ob.retracted_at is not None:
        state["retraction_reason"] = ob.retraction_reason
    store.add_version(
        session,
        ObligationVersion(
            obligation_id=ob.id,
            version=ob.version,
            change=change,
            institution_id=ob.institution_id,
            request_id=request_id,
            recorded_at=now,
            as_of=ob.as_of,
            state=state,
        ),
    )


def _own(session: Session, principal: Principal, external_ref: str, *, for_update: bool = False) -> Obligation:
    """The caller's own obligation. Another institution's is indistinguishable from a missing one (404)."""
    assert principal.institution_id is not None
    ob = store.get_obligation(
        session, institution_id=principal.institution_id, external_ref=external_ref, for_update=for_update
    )
    if ob is None:
        raise NotFound(f"no obligation {external_ref!r} reported by this institution")
    return ob


def get_obligation(session: Session, cipher: FieldCipher, *, principal: Principal, external_ref: str, now: datetime,
                   request_id: str | None = None) -> ObligationView:
    """One of the caller's obligations; each of its debtors sees the read (`obligation:read`)."""
    ob = _own(session, principal, external_ref)
    if ob.retracted_at is not None:
        raise Gone(f"obligation {external_ref!r} was retracted at {ob.retracted_at.isoformat()}")
    view = view_of(session, cipher, ob)
    record_per_person(session, principal=principal, action="obligation:read", now=now, request_id=request_id,
                      returned=[(s, ob.id) for s in view.subjects], item="obligation_id",
                      details={"external_ref": external_ref})
    return view


@dataclass(frozen=True)
class VersionView:
    version: ObligationVersion
    debtors: list[DebtorView]


def obligation_history(
    session: Session, cipher: FieldCipher, *, principal: Principal, external_ref: str, now: datetime,
    request_id: str | None = None,
) -> tuple[list[VersionView], CollectionLink | None]:
    """Every accepted version of the caller's own obligation, oldest first (retracted ones included), and
    the state of its collection link now. Every person any version names sees the read
    (`obligation:versions:read`)."""
    ob = _own(session, principal, external_ref)
    versions = store.list_versions(session, ob.id)
    person_ids = {d["person_id"] for v in versions for d in v.state["debtors"]}
    persons = get_persons(session, person_ids)
    record_per_person(session, principal=principal, action="obligation:versions:read", now=now,
                      request_id=request_id, returned=[(p.blind_index, ob.id) for p in persons.values()],
                      item="obligation_id", details={"external_ref": external_ref})
    masks = {pid: identities.masked(cipher, p) for pid, p in persons.items()}
    history = [
        VersionView(
            version=v,
            debtors=[
                DebtorView(country=persons[d["person_id"]].country, role=d["role"], national_id_masked=masks[d["person_id"]])
                for d in v.state["debtors"]
            ],
        )
        for v in versions
    ]
    return history, collection_links(session, [ob]).get(ob.id)


def retract_obligation(
    session: Session,
    cipher: FieldCipher,
    *,
    principal: Principal,
    external_ref: str,
    reason: str,
    now: datetime,
    request_id: str | None = None,
    if_match: str | None = None,
) -> ObligationView:
    """Withdraw a report made in error: excluded from every later answer, kept in the history."""
    ob = _own(session, principal, external_ref, for_update=True)
    if ob.retracted_at is not None:
        raise Gone(f"obligation {external_ref!r} was already retracted at {ob.retracted_at.isoformat()}")
    if if_match is not None and if_match not in ("*", etag_of(ob)):
        raise PreconditionFailed(f"the obligation has changed: its ETag is now {etag_of(ob)}")
    ob.retracted_at = now
    ob.retraction_reason = reason
    ob.version += 1
    ob.updated_at = now
    session.flush()
    rows = store.debtors_by_obligation(session, [ob.id])[ob.id]
    debtors = [(d.person_id, d.role) for d in rows]
    _record_version(session, ob, debtors, change="retracted", now=now, request_id=request_id)
    _record_change(session, principal, ob, "retracted", _subjects(session, {p for p, _ in debtors}), now=now,
                   request_id=request_id)
    disputes.close_by_report(session, principal=principal, obligation_id=ob.id, now=now, request_id=request_id,
                             cause="retracted")
    return view_of(session, cipher, ob)


def view_of(session: Session, cipher: FieldCipher, ob: Obligation) -> ObligationView:
    return views_of(session, cipher, [ob])[0]


def views_of(session: Session, cipher: FieldCipher, obs: list[Obligation]) -> list[ObligationView]:
    by_ob = store.debtors_by_obligation(session, [o.id for o in obs])
    persons = get_persons(session, {d.person_id for ds in by_ob.values() for d in ds})
    masks = {pid: identities.masked(cipher, p) for pid, p in persons.items()}

    def debtor_views(ds: list[ObligationDebtor]) -> list[DebtorView]:
        order = {"primary": 0, "co_debtor": 1, "guarantor": 2}
        return [
            DebtorView(country=persons[d.person_id].country, role=d.role, national_id_masked=masks[d.person_id])
            for d in sorted(ds, key=lambda d: (order.get(d.role, 9), d.person_id))
        ]

    links = collection_links(session, obs)
    return [ObligationView(obligation=o, debtors=debtor_views(by_ob[o.id]), collection_link=links.get(o.id),
                           subjects=tuple(persons[d.person_id].blind_index for d in by_ob[o.id])) for o in obs]


def _collects(ob: Obligation) -> tuple[str, str] | None:
    if ob.collects_institution_id and ob.collects_external_ref:
        return (ob.collects_institution_id, ob.collects_external_ref)
    return None


def collection_links(session: Session, obs: list[Obligation]) -> dict[str, CollectionLink]:
    """The link of each of these lines that collects another: confirmed when that line (live, not
    retracted) names it back in `handed_to`. One lookup for all of them."""
    targets = {key for o in obs if (key := _collects(o)) is not None}
    handed = store.handed_to_of(session, targets) if targets else {}
    out: dict[str, CollectionLink] = {}
    for o in obs:
        key = _collects(o)
        link = collection_link((o.institution_id, o.external_ref), key, handed.get(key) if key else None)
        if link is not None:
            out[o.id] = link
    return out


def list_obligations(
    session: Session,
    cipher: FieldCipher,
    *,
    principal: Principal,
    status: str | None,
    updated_since: datetime | None,
    cursor: str | None,
    limit: int,
    now: datetime,
    request_id: str | None = None,
) -> tuple[list[ObligationView], str | None]:
    """A page of the caller's obligations; each person the page names sees the read once
    (`obligations:list`, with their obligations on the page)."""
    assert principal.institution_id is not None
    after = decode_cursor(cursor) if cursor else None
    rows = store.list_obligations(
        session,
        institution_id=principal.institution_id,
        status=status,
        updated_since=updated_since,
        after=after,
        limit=limit + 1,
    )
    page, more = rows[:limit], len(rows) > limit
    views = views_of(session, cipher, page)
    record_per_person(session, principal=principal, action="obligations:list", now=now, request_id=request_id,
                      returned=[(s, v.obligation.id) for v in views for s in v.subjects], item="obligation_id",
                      details={"status": status} if status else None)
    return views, (encode_cursor(page[-1].updated_at, page[-1].id) if more else None)
