"""Disputes: a person objects to one line of debt; its creditor answers in time, or the regulator sees it.

States: open -> corrected | upheld (with the creditor's explanation) | withdrawn (by the person). An open
dispute past its deadline is shown as `overdue`; that is derived from `deadline_at` at read time, never
stored. While a line has an open (or overdue) dispute it carries `disputed: true` in every exposure answer.
After an upheld answer the person may add a statement of up to 200 words, shown with that line in their
later exposure answers.

A correction reported through the normal path closes the dispute as corrected too: a report that names
it in `corrects_dispute` and changes the line, a retraction of the line, or a report that no longer names
the disputing person among the debtors. A repeat that changes nothing closes nothing.

A line or dispute that is not the caller's is 404, exactly like one that does not exist. Every step writes
an access event whose details name the dispute.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal
from register.errors import Conflict, InvalidInput, NotFound
from register.services import identities
from register.services import outbox as told
from register.services.events import record_event, record_per_person
from register.storage.institutions import names_by_id
from register.storage.models import Dispute, Institution, Obligation, ObligationDebtor, Person

REASONS = ("not_mine", "repaid", "wrong_amount", "wrong_status", "identity_fraud", "other")
OUTCOMES = ("corrected", "upheld")
STATES = ("open", "overdue", "corrected", "upheld", "withdrawn")
PENDING = ("open", "overdue")  # the states a reader sees while the creditor has not answered
STATEMENT_MAX_WORDS = 200
TABLE = "disputes"


def shown_state(d: Dispute, now: datetime) -> str:
    return "overdue" if d.state == "open" and now >= d.deadline_at else d.state


def count_words(text: str) -> int:
    """Words as the statement's limit counts them: runs of anything but white space."""
    return len(re.findall(r"\S+", text))


def _decrypt(cipher: FieldCipher, d: Dispute, column: str) -> str | None:
    blob = getattr(d, column)
    return None if blob is None else cipher.decrypt(blob, table=TABLE, column=column, row_id=d.id).decode()


def _encrypt(cipher: FieldCipher, d_id: str, column: str, text: str) -> bytes:
    return cipher.encrypt(text.encode(), table=TABLE, column=column, row_id=d_id)


def _details(d: Dispute, **more: Any) -> dict[str, Any]:
    return {"dispute_id": d.id, "obligation_id": d.obligation_id, "institution_id": d.institution_id, **more}


def view(d: Dispute, cipher: FieldCipher, *, now: datetime, creditor: str | None = None,
         external_ref: str | None = None) -> dict[str, Any]:
    """A dispute as the person and its creditor see it (the text is the person's own words)."""
    doc = {
        "id": d.id, "obligation": d.obligation_id, "creditor": {"id": d.institution_id, "name": creditor},
        "reason": d.reason, "text": _decrypt(cipher, d, "text_enc"), "state": shown_state(d, now),
        "opened_at": d.opened_at, "deadline": d.deadline_at, "closed_at": d.closed_at, "closed_by": d.closed_by,
        "explanation": d.explanation, "statement": _decrypt(cipher, d, "statement_enc"),
        "statement_at": d.statement_at,
    }  # fmt: skip
    if external_ref is not None:
        doc["external_ref"] = external_ref
    return doc


# --- the person -----------------------------------------------------------------------------------


def _person(session: Session, cipher: FieldCipher, principal: Principal) -> Person | None:
    assert principal.national_id is not None
    return identities.find_person(session, cipher, principal.national_id)


def _my_dispute(session: Session, cipher: FieldCipher, principal: Principal, dispute_id: str) -> Dispute:
    person = _person(session, cipher, principal)
    d = session.get(Dispute, dispute_id, with_for_update=True) if person is not None else None
    if d is None or person is None or d.person_id != person.id:
        raise NotFound("no dispute of yours with that id")
    return d


def open_dispute(
    session: Session, cipher: FieldCipher, *, principal: Principal, obligation_id: str, reason: str, text: str,
    now: datetime, days: int, request_id: str | None,
) -> Dispute:
    """Open a dispute on one line that names the caller. One open dispute per person and line."""
    person = _person(session, cipher, principal)
    ob = None
    if person is not None:
        ob = session.execute(
            select(Obligation.id, Obligation.institution_id)
            .join(ObligationDebtor, ObligationDebtor.obligation_id == Obligation.id)
            .where(Obligation.id == obligation_id, ObligationDebtor.person_id == person.id,
                   Obligation.retracted_at.is_(None))
        ).first()  # fmt: skip
    if ob is None or person is None:
        raise NotFound("no debt of yours with that id")
    already = session.execute(
        select(Dispute.id).where(Dispute.obligation_id == ob.id, Dispute.person_id == person.id,
                                 Dispute.state == "open")
    ).first()  # fmt: skip
    if already is not None:
        raise Conflict(f"you already have an open dispute on this debt: {already.id}", code="dispute_open")
    d_id = str(uuid.uuid4())
    d = Dispute(id=d_id, obligation_id=ob.id, institution_id=ob.institution_id, person_id=person.id,
                reason=reason, text_enc=_encrypt(cipher, d_id, "text_enc", text), state="open", opened_at=now,
                deadline_at=now + timedelta(days=days), version=1)  # fmt: skip
    session.add(d)
    session.flush()
    record_event(session, principal=principal, action="dispute:open", now=now, request_id=request_id,
                 details=_details(d, reason=reason, deadline=d.deadline_at.isoformat()))
    told.dispute(session, "dispute.opened", d, now=now)
    return d


def my_disputes(
    session: Session, cipher: FieldCipher, *, principal: Principal, now: datetime, request_id: str | None
) -> list[dict[str, Any]]:
    """Every dispute the caller opened, newest first, with state, deadline and the creditor's answer."""
    person = _person(session, cipher, principal)
    rows = list(session.scalars(
        select(Dispute).where(Dispute.person_id == person.id).order_by(Dispute.opened_at.desc(), Dispute.id)
    )) if person is not None else []  # fmt: skip
    names = names_by_id(session, {d.institution_id for d in rows})
    record_event(session, principal=principal, action="consumer:disputes:read", now=now, request_id=request_id)
    return [view(d, cipher, now=now, creditor=names.get(d.institution_id)) for d in rows]


def my_dispute(
    session: Session, cipher: FieldCipher, *, principal: Principal, dispute_id: str, now: datetime
) -> dict[str, Any]:
    d = _my_dispute(session, cipher, principal, dispute_id)
    return view(d, cipher, now=now, creditor=names_by_id(session, {d.institution_id}).get(d.institution_id))


def withdraw_dispute(
    session: Session, cipher: FieldCipher, *, principal: Principal, dispute_id: str, now: datetime,
    request_id: str | None,
) -> Dispute:
    d = _my_dispute(session, cipher, principal, dispute_id)
    if d.state != "open":
        raise Conflict(f"the dispute is already {d.state}", code="dispute_closed")
    d.state, d.closed_at, d.closed_by, d.version = "withdrawn", now, "person", d.version + 1
    session.flush()
    record_event(session, principal=principal, action="dispute:withdraw", now=now, request_id=request_id,
                 details=_details(d))
    told.dispute(session, "dispute.withdrawn", d, now=now)
    return d


def add_statement(
    session: Session, cipher: FieldCipher, *, principal: Principal, dispute_id: str, statement: str,
    now: datetime, request_id: str | None,
) -> Dispute:
    """The person's own words beside a line whose dispute was upheld (at most 200 words; a new one
    replaces the old)."""
    d = _my_dispute(session, cipher, principal, dispute_id)
    if d.state != "upheld":
        raise Conflict(f"a statement can be added once the creditor has upheld the line; the dispute is "
                       f"{shown_state(d, now)}", code="dispute_not_upheld")
    words = count_words(statement)
    if words > STATEMENT_MAX_WORDS:
        raise InvalidInput(f"the statement has {words} words; at most {STATEMENT_MAX_WORDS} are shown",
                           code="statement_too_long",
                           errors=[{"loc": ["body", "statement"], "msg": f"more than {STATEMENT_MAX_WORDS} words"}])
    d.statement_enc = _encrypt(cipher, d.id, "statement_enc", statement)
    d.statement_at, d.version = now, d.version + 1
    session.flush()
    record_event(session, principal=principal, action="dispute:statement", now=now, request_id=request_id,
                 details=_details(d, words=words))
    return d


# --- the creditor ---------------------------------------------------------------------------------


def _subject_of(session: Session, person_id: str) -> bytes:
    return session.execute(select(Person.blind_index).where(Person.id == person_id)).scalar_one()


def _in_state(stmt: Any, state: str | None, now: datetime) -> Any:
    """Filter by the state a reader sees: `open` includes overdue ones, `overdue` is open past the deadline."""
    if state in PENDING:
        stmt = stmt.where(Dispute.state == "open")
        if state == "overdue":
            stmt = stmt.where(Dispute.deadline_at <= now)
    elif state is not None:
        stmt = stmt.where(Dispute.state == state)
    return stmt


def creditor_disputes(
    session: Session, cipher: FieldCipher, *, principal: Principal, state: str | None, now: datetime,
    request_id: str | None, limit: int = 1000,
) -> list[dict[str, Any]]:
    """Disputes on the caller's own lines, oldest deadline first. `open` includes overdue ones."""
    assert principal.institution_id is not None
    stmt = _in_state(select(Dispute, Obligation.external_ref, Person.blind_index)
                     .join(Obligation, Obligation.id == Dispute.obligation_id)
                     .join(Person, Person.id == Dispute.person_id)
                     .where(Dispute.institution_id == principal.institution_id), state, now)  # fmt: skip
    rows = session.execute(stmt.order_by(Dispute.deadline_at, Dispute.id).limit(limit)).all()
    record_per_person(session, principal=principal, action="disputes:list", now=now, request_id=request_id,
                      returned=[(subject, d.id) for d, _, subject in rows], item="dispute_id",
                      details={"state": state})
    return [view(d, cipher, now=now, creditor=principal.name, external_ref=ref) for d, ref, _ in rows]


def _creditors_dispute(session: Session, principal: Principal, dispute_id: str) -> Dispute:
    d = session.get(Dispute, dispute_id, with_for_update=True)
    if d is None or d.institution_id != principal.institution_id:
        raise NotFound("no dispute on your lines with that id")
    return d


def creditor_dispute(
    session: Session, cipher: FieldCipher, *, principal: Principal, dispute_id: str, now: datetime,
    request_id: str | None,
) -> dict[str, Any]:
    d = _creditors_dispute(session, principal, dispute_id)
    ref = session.execute(select(Obligation.external_ref).where(Obligation.id == d.obligation_id)).scalar_one()
    record_event(session, principal=principal, action="dispute:read", now=now, request_id=request_id,
                 subject=_subject_of(session, d.person_id), details=_details(d))
    return view(d, cipher, now=now, creditor=principal.name, external_ref=ref)


def answer_dispute(
    session: Session, cipher: FieldCipher, *, principal: Principal, dispute_id: str, outcome: str,
    explanation: str, now: datetime, request_id: str | None,
) -> dict[str, Any]:
    """The creditor's answer: `corrected` (the line was wrong and is fixed) or `upheld` (it is right, and
    why). An answer after the deadline is still taken, and the event says it was late."""
    d = _creditors_dispute(session, principal, dispute_id)
    if d.state != "open":
        raise Conflict(f"the dispute is already {d.state}", code="dispute_closed")
    late = now >= d.deadline_at
    d.state, d.closed_at, d.closed_by, d.explanation = outcome, now, "creditor", explanation
    d.version += 1
    session.flush()
    record_event(session, principal=principal, action="dispute:answer", now=now, request_id=request_id,
                 subject=_subject_of(session, d.person_id), details=_details(d, outcome=outcome, late=late))
    told.dispute(session, "dispute.answered", d, now=now, outcome=outcome, closed_by="creditor", late=late)
    ref = session.execute(select(Obligation.external_ref).where(Obligation.id == d.obligation_id)).scalar_one()
    return view(d, cipher, now=now, creditor=principal.name, external_ref=ref)


def open_disputes_for(session: Session, *, institution_id: str, dispute_ids: Iterable[str]) -> dict[str, str]:
    """Of these dispute ids, the open ones on this institution's lines: {dispute id: obligation id}."""
    ids = list(set(dispute_ids))
    if not ids:
        return {}
    rows = session.execute(select(Dispute.id, Dispute.obligation_id).where(
        Dispute.id.in_(ids), Dispute.institution_id == institution_id, Dispute.state == "open")).all()
    return {r.id: r.obligation_id for r in rows}


def open_on(session: Session, obligation_ids: list[str]) -> list[str]:
    """Of these lines, those with an open dispute (chunked: SQLite binds at most a few hundred values)."""
    found: set[str] = set()
    for i in range(0, len(obligation_ids), 500):
        found.update(session.scalars(select(Dispute.obligation_id).where(
            Dispute.obligation_id.in_(obligation_ids[i : i + 500]), Dispute.state == "open")))
    return sorted(found)


def close_by_report(
    session: Session, *, principal: Principal, obligation_id: str, now: datetime, request_id: str | None,
    cause: str, dispute_id: str | None = None, debtors: Iterable[str] | None = None,
) -> int:
    """Close open disputes on a line that the creditor's report corrected, as `corrected`:

    - `cause="named"`: the report named `dispute_id` in corrects_dispute and changed the line;
    - `cause="retracted"`: the line was retracted, every open dispute on it closes;
    - `cause="debtors"`: the report's `debtors` (person ids) no longer include a disputing person.
    """
    stmt = select(Dispute).where(Dispute.obligation_id == obligation_id, Dispute.state == "open")
    if cause == "named":
        stmt = stmt.where(Dispute.id == dispute_id)
    rows = list(session.scalars(stmt.with_for_update()))
    if cause == "debtors":
        keep = set(debtors or ())
        rows = [d for d in rows if d.person_id not in keep]
    explanation = {"named": "corrected by the creditor's report", "retracted": "the creditor removed the line",
                   "debtors": "the creditor's report no longer names you on this debt"}[cause]  # fmt: skip
    for d in rows:
        d.state, d.closed_at, d.closed_by, d.explanation = "corrected", now, "report", explanation
        d.version += 1
    session.flush()
    for d in rows:
        record_event(session, principal=principal, action="dispute:correct", now=now, request_id=request_id,
                     subject=_subject_of(session, d.person_id),
                     details=_details(d, outcome="corrected", cause=cause, late=now >= d.deadline_at))
        told.dispute(session, "dispute.answered", d, now=now, outcome="corrected", closed_by="report",
                     late=now >= d.deadline_at)
    return len(rows)


# --- exposure and the regulator -------------------------------------------------------------------


def statements_for(session: Session, cipher: FieldCipher, *, person_id: str, obligation_ids: Iterable[str]
                   ) -> dict[str, str]:
    """The person's latest statement per line, on lines whose dispute was upheld: {obligation id: text}."""
    ids = list(obligation_ids)
    if not ids:
        return {}
    rows = session.scalars(select(Dispute).where(
        Dispute.person_id == person_id, Dispute.obligation_id.in_(ids), Dispute.state == "upheld",
        Dispute.statement_enc.is_not(None)).order_by(Dispute.statement_at))  # fmt: skip
    return {d.obligation_id: _decrypt(cipher, d, "statement_enc") or "" for d in rows}


def regulator_disputes(
    session: Session, *, reads: Session | None = None, principal: Principal, state: str | None, now: datetime,
    request_id: str | None, limit: int = 1000,
) -> dict[str, Any]:
    """For the regulator: every creditor's open, overdue and late-answered disputes, without the person's
    words or identity, and a count per creditor. Read in `reads` (a standby's session, a moment old) when
    given; the read's access event goes to `session`."""
    reads = reads or session
    stmt = _in_state(select(Dispute), state, now)
    rows = list(reads.scalars(stmt.order_by(Dispute.deadline_at, Dispute.id).limit(limit)))

    def count(*conditions: Any) -> Any:
        return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

    answered = Dispute.closed_by.in_(("creditor", "report"))
    counts = reads.execute(
        select(Dispute.institution_id, Institution.name, count(Dispute.state == "open"),
               count(Dispute.state == "open", Dispute.deadline_at <= now), count(answered),
               count(answered, Dispute.closed_at >= Dispute.deadline_at))
        .join(Institution, Institution.id == Dispute.institution_id)
        .group_by(Dispute.institution_id, Institution.name)
    ).all()  # fmt: skip
    summary = [{"institution_id": i, "name": n, "open": o, "overdue": od, "answered": a, "answered_late": al}
               for i, n, o, od, a, al in counts]
    names = {c["institution_id"]: c["name"] for c in summary}
    record_event(session, principal=principal, action="audit:disputes:read", now=now, request_id=request_id,
                 details={"state": state, "count": len(rows)})
    items = [{"id": d.id, "institution_id": d.institution_id, "institution_name": names.get(d.institution_id),
              "obligation": d.obligation_id, "reason": d.reason, "state": shown_state(d, now),
              "opened_at": d.opened_at, "deadline": d.deadline_at, "closed_at": d.closed_at,
              "closed_by": d.closed_by, "late": (d.closed_at or now) >= d.deadline_at}
             for d in rows]  # fmt: skip
    return {"items": items, "by_institution": sorted(summary, key=lambda s: (-s["overdue"], s["name"] or ""))}
