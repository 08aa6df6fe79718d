"""SQL for retention: find what may be due, lock one thing and read it again, delete it.

Every deletion re-checks its condition under row locks, in a transaction that deletes whole things
(storage never decides what is due: `domain.retention` does, from what these functions read). A row a
report holds is skipped, left for the next run; a report that comes after a deletion finds no row and
creates the line anew. Reports lock the persons they name (`FOR KEY SHARE` on PostgreSQL, storage.persons
and the batch statement), so a person is never forgotten under a report naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, literal, not_, null, or_, select, update
from sqlalchemy.orm import Session

from register.domain.retention import ARREARS_STATUSES
from register.storage import pseudonyms
from register.storage.dialect import statements
from register.storage.models import (
    AccessEvent, Consent, CreditBan, Dispute, ExposureRecord, Institution, Obligation, ObligationDebtor, OutboxEvent,
    ObligationVersion, Person, Report, ReportChunk, ReportError, ReportRef, WebSession,
)  # fmt: skip

RETENTION_LOCK = 0x7265_7472  # an advisory-lock key, "retr": one retention run at a time


def _had_arrears(state: Any) -> Any:
    """Whether any version of the obligation was in arrears; `state`: its state as readable JSON."""
    return (
        select(literal(1))
        .where(ObligationVersion.obligation_id == Obligation.id,
               or_(state["status"].as_string().in_(sorted(ARREARS_STATUSES)), state["days_past_due"].as_integer() > 0,
                   state["overdue_amount"].as_integer() > 0))
        .correlate(Obligation)
        .exists()
    )  # fmt: skip


_country = select(Institution.country).where(Institution.id == Obligation.institution_id).correlate(Obligation)


def ended_columns(session: Session) -> tuple[Any, ...]:
    """An obligation's columns the rules of keeping read (id, kind, status, updated_at, retracted_at,
    had_arrears, country), in this session's database's terms."""
    return (Obligation.id, Obligation.kind, Obligation.status, Obligation.updated_at, Obligation.retracted_at,
            _had_arrears(statements(session).readable_json(ObligationVersion.state)).label("had_arrears"),
            _country.scalar_subquery().label("country"))


def try_lock_retention(session: Session) -> bool:
    """One retention run at a time, for as long as this transaction lasts: PostgreSQL's transaction-scoped
    advisory lock (the integrator's statement, with a key of its own). SQLite: nothing to take (and no
    connection held); its writers take turns anyway, and every deletion re-checks its condition."""
    return statements(session).try_lock_integrator(session, RETENTION_LOCK)


def ended_obligations(session: Session, *, before: datetime, after_id: str, limit: int) -> list[Any]:
    """Obligations retracted, or closed, before `before`, by id after `after_id`: (id, kind, status,
    updated_at, retracted_at, had_arrears, country). `had_arrears`: a version in arrears in its history."""
    stmt = (
        select(*ended_columns(session))
        .where(Obligation.id > after_id,
               or_(Obligation.retracted_at < before,
                   and_(Obligation.status == "closed", Obligation.updated_at < before)))
        .order_by(Obligation.id)
        .limit(limit)
    )  # fmt: skip
    return list(session.execute(stmt).all())


def lock_obligations(session: Session, ids: list[str]) -> list[Any]:
    """Lock these obligations' rows for this transaction and read them again, as committed now (the
    columns of `ended_obligations`). Rows a report holds are skipped (`SKIP LOCKED`), not waited for:
    the next run decides on them, and a run never waits in a lock cycle with reports. Rows gone are absent."""
    locked = list(session.execute(
        select(Obligation.id).where(Obligation.id.in_(ids)).order_by(Obligation.id).with_for_update(skip_locked=True)
    ).scalars())
    if not locked:
        return []
    return list(session.execute(select(*ended_columns(session)).where(Obligation.id.in_(locked))).all())


def delete_obligations(session: Session, ids: list[str]) -> None:
    """Delete obligations with their versions, debtors and disputes (the caller holds their locks)."""
    for table, column in ((Dispute, Dispute.obligation_id), (ObligationVersion, ObligationVersion.obligation_id),
                          (ObligationDebtor, ObligationDebtor.obligation_id), (Obligation, Obligation.id)):
        session.execute(delete(table).where(column.in_(ids)))


def _before(time: Any, country: Any, default: datetime, by_country: Mapping[str, datetime]) -> ColumnElement[bool]:
    """`time` is before its country's cutoff (or the default one's, for the other countries)."""
    if not by_country:
        return time < default
    own = [and_(country == c, time < cut) for c, cut in by_country.items()]
    rest = and_(or_(country.is_(None), country.not_in(list(by_country))), time < default)
    return or_(*own, rest)


_answer_country = (
    select(Institution.country).where(Institution.id == ExposureRecord.institution_id)
    .correlate(ExposureRecord).scalar_subquery()
)  # fmt: skip


def _answers_due(default: datetime, by_country: Mapping[str, datetime]) -> ColumnElement[bool]:
    return _before(ExposureRecord.created_at, _answer_country, default, by_country)


def _answer_kept(default: datetime, by_country: Mapping[str, datetime]) -> ColumnElement[bool]:
    return and_(_answers_due(default, by_country), ExposureRecord.response.is_not(None))


def count_exposure_answers(session: Session, *, default: datetime, by_country: Mapping[str, datetime]) -> int:
    stmt = select(func.count()).select_from(ExposureRecord).where(_answer_kept(default, by_country))
    return int(session.execute(stmt).scalar_one())


def delete_exposure_answers(session: Session, *, default: datetime, by_country: Mapping[str, datetime],
                            limit: int) -> int:
    """Shred up to `limit` stored answers past their period: the answer's text goes (`response` NULL), its
    row stays with its hash and access event, so `GET /v1/exposure/{id}` says 410 (shredded), not 404. The
    condition is in the UPDATE itself, so an answer is shredded once whoever else runs beside it."""
    ids = select(ExposureRecord.id).where(_answer_kept(default, by_country)).limit(limit).scalar_subquery()
    stmt = (update(ExposureRecord).where(ExposureRecord.id.in_(ids), _answer_kept(default, by_country))
            .values(response=null()).execution_options(synchronize_session=False))  # SQL NULL, not JSON null
    result = session.execute(stmt)
    return int(result.rowcount or 0)


def _file_due(cutoff: datetime) -> ColumnElement[bool]:
    return and_(Report.status.in_(("done", "failed")), Report.finished_at < cutoff,
                exists().where(ReportChunk.report_id == Report.id))


def report_files(session: Session, *, cutoff: datetime, limit: int | None = None) -> list[str]:
    """Reports processed (done or failed) before `cutoff` whose uploaded file is still stored."""
    stmt = select(Report.id).where(_file_due(cutoff)).order_by(Report.id)
    return list(session.execute(stmt if limit is None else stmt.limit(limit)).scalars())


def delete_report_file(session: Session, report_id: str, *, cutoff: datetime) -> bool:
    """Delete one report's stored file (its chunks), its line errors (they quote its lines) and its named
    refs, if it is still due: the report's row is locked and read again first. The report's row stays,
    with its counts, so its status and its Idempotency-Key keep answering."""
    due = session.execute(select(Report.id).where(Report.id == report_id, _file_due(cutoff)).with_for_update())
    if due.scalar_one_or_none() is None:
        return False
    for table in (ReportChunk, ReportError, ReportRef):
        session.execute(delete(table).where(table.report_id == report_id))
    session.execute(update(Report).where(Report.id == report_id).values(error=None))
    return True


def _no_holds(now: datetime, consents_until: datetime) -> ColumnElement[bool]:
    """No credit ban of the person in force, and no consent that ended (expired or was revoked) after
    `consents_until`: a consent in force, or the basis of answers that may still be kept, holds the person."""
    ended = case((and_(Consent.revoked_at.is_not(None), Consent.revoked_at < Consent.expires_at), Consent.revoked_at),
                 else_=Consent.expires_at)
    return and_(
        not_(exists().where(Consent.person_id == Person.id, ended > consents_until)),
        not_(exists().where(CreditBan.person_id == Person.id, or_(CreditBan.until.is_(None), CreditBan.until > now),
                            or_(CreditBan.lift_effective_at.is_(None), CreditBan.lift_effective_at > now))),
    )  # fmt: skip


def _forgettable(now: datetime, consents_until: datetime) -> ColumnElement[bool]:
    """A person no obligation names and nothing else holds (`_no_holds`)."""
    return and_(not_(exists().where(ObligationDebtor.person_id == Person.id)), _no_holds(now, consents_until))


def forgettable_persons(session: Session, *, now: datetime, consents_until: datetime, after_id: str = "",
                        limit: int | None = None) -> list[str]:
    stmt = select(Person.id).where(Person.id > after_id, _forgettable(now, consents_until)).order_by(Person.id)
    return list(session.execute(stmt if limit is None else stmt.limit(limit)).scalars())


def count_forgettable_persons(session: Session, *, now: datetime, consents_until: datetime) -> int:
    stmt = select(func.count()).select_from(Person).where(_forgettable(now, consents_until))
    return int(session.execute(stmt).scalar_one())


def forget_persons(session: Session, ids: list[str], *, now: datetime, consents_until: datetime) -> int:
    """Forget those of these persons with nothing left: their rows (ciphertext, blind index) and what hangs
    off them: ended consents, ended credit bans, disputes. The rows are locked first (a person a report is
    naming, locked `FOR KEY SHARE` by it, is skipped) and the condition read again in a statement of its
    own, which sees what committed before the locks were taken. How many were forgotten."""
    locked = list(session.execute(
        select(Person.id).where(Person.id.in_(ids)).order_by(Person.id).with_for_update(skip_locked=True)
    ).scalars())
    if not locked:
        return 0
    still = list(session.execute(
        select(Person.id).where(Person.id.in_(locked), _forgettable(now, consents_until))).scalars())
    if still:
        for table in (Dispute, Consent, CreditBan):
            session.execute(delete(table).where(table.person_id.in_(still)))
        # Their pseudonyms, in the same transaction: the events about them then name nobody.
        blind = [bytes(b) for b in session.scalars(select(Person.blind_index).where(Person.id.in_(still)))]
        pseudonyms.forget(session, blind)
        # Their web sessions too (the identity's ciphertext and blind index): forgotten is signed out.
        session.execute(delete(WebSession).where(WebSession.subject.in_(blind)))
        session.execute(delete(Person).where(Person.id.in_(still)))
        # The outbox's events stay for their institutions' feeds, but no longer name the person.
        session.execute(update(OutboxEvent).where(OutboxEvent.person_id.in_(still)).values(person_id=None))
    return len(still)


def count_access_events(session: Session, *, cutoff: datetime) -> int:
    """Access events older than `cutoff` that carry a subject (a pseudonym, or a blind index for leaf
    version 1): they stay in the log; whether they can still be linked is their pseudonym's matter."""
    stmt = select(func.count()).select_from(AccessEvent).where(AccessEvent.occurred_at < cutoff,
                                                               AccessEvent.subject.is_not(None))
    return int(session.execute(stmt).scalar_one())


def obligations_naming(session: Session, person_ids: list[str]) -> dict[str, set[str]]:
    """For each of these persons, the ids of the obligations naming them."""
    out: dict[str, set[str]] = {p: set() for p in person_ids}
    for i in range(0, len(person_ids), 500):
        rows = session.execute(select(ObligationDebtor.person_id, ObligationDebtor.obligation_id)
                               .where(ObligationDebtor.person_id.in_(person_ids[i : i + 500])))
        for person_id, obligation_id in rows:
            out[person_id].add(obligation_id)
    return out


def persons_named(session: Session, obligation_ids: list[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(obligation_ids), 500):
        out.update(session.execute(select(ObligationDebtor.person_id)
                                   .where(ObligationDebtor.obligation_id.in_(obligation_ids[i : i + 500]))).scalars())
    return out


def persons_without_holds(session: Session, person_ids: list[str], *, now: datetime,
                          consents_until: datetime) -> set[str]:
    """Those of these persons nothing but obligations holds (what `forget_person` asks besides no obligation)."""
    out: set[str] = set()
    for i in range(0, len(person_ids), 500):
        stmt = select(Person.id).where(Person.id.in_(person_ids[i : i + 500]), _no_holds(now, consents_until))
        out.update(session.execute(stmt).scalars())
    return out
