"""SQL for obligations, their debtors and their versions."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from register.storage.models import Obligation, ObligationDebtor, ObligationVersion


def get_obligation(
    session: Session, *, institution_id: str, external_ref: str, for_update: bool = False
) -> Obligation | None:
    stmt = select(Obligation).where(
        Obligation.institution_id == institution_id, Obligation.external_ref == external_ref
    )
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def insert_obligation(session: Session, obligation: Obligation) -> bool:
    """Insert; False if a concurrent request created the same (institution, external_ref) first."""
    try:
        with session.begin_nested():
            session.add(obligation)
            session.flush()
    except IntegrityError:
        return False
    return True


def replace_debtors(session: Session, obligation_id: str, debtors: list[tuple[str, str]]) -> None:
    session.execute(delete(ObligationDebtor).where(ObligationDebtor.obligation_id == obligation_id))
    session.add_all(ObligationDebtor(obligation_id=obligation_id, person_id=p, role=r) for p, r in debtors)
    session.flush()


def debtors_by_obligation(session: Session, obligation_ids: list[str]) -> dict[str, list[ObligationDebtor]]:
    out: dict[str, list[ObligationDebtor]] = defaultdict(list)
    if not obligation_ids:
        return out
    rows = session.execute(select(ObligationDebtor).where(ObligationDebtor.obligation_id.in_(obligation_ids)))
    for d in rows.scalars():
        out[d.obligation_id].append(d)
    return out


def add_version(session: Session, version: ObligationVersion) -> None:
    session.add(version)
    session.flush()


def list_versions(session: Session, obligation_id: str) -> list[ObligationVersion]:
    stmt = (
        select(ObligationVersion)
        .where(ObligationVersion.obligation_id == obligation_id)
        .order_by(ObligationVersion.version)
    )
    return list(session.execute(stmt).scalars())


def list_obligations(
    session: Session,
    *,
    institution_id: str,
    status: str | None,
    updated_since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Obligation]:
    """One keyset page in (updated_at, id) order, retracted obligations left out."""
    stmt = select(Obligation).where(Obligation.institution_id == institution_id, Obligation.retracted_at.is_(None))
    if status is not None:
        stmt = stmt.where(Obligation.status == status)
    if updated_since is not None:
        stmt = stmt.where(Obligation.updated_at >= updated_since)
    if after is not None:
        ts, oid = after
        stmt = stmt.where(or_(Obligation.updated_at > ts, and_(Obligation.updated_at == ts, Obligation.id > oid)))
    stmt = stmt.order_by(Obligation.updated_at, Obligation.id).limit(limit)
    return list(session.execute(stmt).scalars())


def kinds_and_refs_of_person(session: Session, person_id: str, obligation_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Kind and creditor's reference of those of these lines that name the person."""
    if not obligation_ids:
        return {}
    rows = session.execute(
        select(Obligation.id, Obligation.kind, Obligation.external_ref)
        .join(ObligationDebtor, ObligationDebtor.obligation_id == Obligation.id)
        .where(ObligationDebtor.person_id == person_id, Obligation.id.in_(sorted(set(obligation_ids))))
    )  # fmt: skip
    return {r.id: (r.kind, r.external_ref) for r in rows}


def handed_to_of(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str] | None]:
    """For each (institution_id, external_ref) naming a live (not retracted) obligation: the claim its
    `handed_to` names, or None. Keys naming nothing are left out. Looked up by the unique
    (institution, ref) index, 200 keys a statement."""
    out: dict[tuple[str, str], tuple[str, str] | None] = {}
    ordered = sorted(keys)
    for i in range(0, len(ordered), 200):
        chunk = ordered[i : i + 200]
        stmt = select(Obligation.institution_id, Obligation.external_ref, Obligation.handed_to_institution_id,
                      Obligation.handed_to_external_ref).where(
            or_(*(and_(Obligation.institution_id == inst, Obligation.external_ref == ref) for inst, ref in chunk)),
            Obligation.retracted_at.is_(None))  # fmt: skip
        for inst, ref, h_inst, h_ref in session.execute(stmt):
            out[(inst, ref)] = (h_inst, h_ref) if h_inst and h_ref else None
    return out
