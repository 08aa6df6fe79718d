"""Applying many report lines at once: the batch path behind `POST /v1/reports` and `register seed`.

The rules are the single report's (validation, identity checks, encryption, `decide`): only the
writing is set-based. Per batch: resolve every person with one query (creating the missing ones),
lock the batch's existing obligations, decide each line, then write new obligations, updates, debtors
and versions in bulk (storage.bulk: PostgreSQL COPY, updates through a staging table and one
UPDATE ... FROM; SQLite executemany). The caller commits the batch with its progress, atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.domain.obligation import Stored, Verdict, check_may_collect, decide
from register.domain.permission import Principal, Role
from register.errors import RegisterError, StaleUpdate
from register.services import disputes
from register.services.lines import (
    AS_OF_AT, COLUMN, FIELDS, STATE_START, TABLE, Debtor, LineError, Ready, time_ordered_id,
)  # fmt: skip
from register.storage import bulk as store


def state_json(line: Ready, as_of: datetime, debtors: list[tuple[str, str]]) -> bytes:
    """The line's state as canonical JSON (byte for byte `canonical_json(state_of_fields(...))`) with
    these debtors (person id, role) and this `as_of`."""
    return STATE_START + as_of.isoformat().encode() + line.state_mid + _people(debtors) + line.state_tail


def _people(debtors: list[tuple[str, str]]) -> bytes:
    """The state's `debtors` value as canonical JSON: made once per line, for both of a refresh's states."""
    return canonical_json([{"person_id": p, "role": r} for p, r in sorted(debtors)])


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # idempotent repeats, and refreshes (the same content with a newer as_of)
    errors: list[LineError] = field(default_factory=list)


def _allowed(lines: Sequence[Ready], *, collector: bool, errors: list[LineError]) -> Sequence[Ready]:
    """The lines this institution may report; each other one becomes its error (a lender's `collects`)."""
    if collector or not any(p.collects for p in lines):
        return lines
    kept = []
    for p in lines:
        try:
            check_may_collect(p.collects, collector=collector)
        except RegisterError as exc:
            errors.append(LineError(p.line, exc.code, exc.detail, p.ref))
            continue
        kept.append(p)
    return kept


def _resolve_persons(session: Session, cipher: FieldCipher, lines: Sequence[Ready], now: datetime) -> dict[bytes, str]:
    """Person id by blind index for every debtor of these lines, adding the persons the register does not
    know yet. Added with ON CONFLICT DO NOTHING, then read back: a person a concurrent report added meanwhile
    is that report's row, not an error. Only a new person's row gets an id and a ciphertext: made for every
    line's debtors in the preparing processes, they were 5-7 us a line for rows that mostly already existed
    (BENCHMARKS.md, ingest, tenth round)."""
    wanted: dict[bytes, Debtor] = {}
    for p in lines:
        for d in p.debtors:
            wanted.setdefault(d.blind_index, d)
    found = dict((bidx, pid) for pid, bidx in store.persons_by_blind_index(session, list(wanted)))
    new_rows = []
    for bidx, d in wanted.items():
        if bidx not in found:
            pid = time_ordered_id()
            new_rows.append({"id": pid, "country": d.country, "blind_index": bidx, "created_at": now,
                             "national_id_enc": cipher.encrypt(d.number.encode(), table=TABLE, column=COLUMN, row_id=pid),
                             "blind_index_next": d.blind_index_next})
    if new_rows:
        taken = store.add_persons(session, new_rows)
        found |= {r["blind_index"]: r["id"] for r in new_rows if r["blind_index"] not in taken}
        if taken:
            found |= {bidx: pid for pid, bidx in store.persons_by_blind_index(session, list(taken))}
    return found


@dataclass
class Plan:
    """A batch decided (`plan_batch`), its writes not made yet (`write_plan`)."""

    result: BatchResult
    inserts: list[tuple[Any, ...]] = field(default_factory=list)  # rows in the order of INSERT_COLUMNS
    updates: list[dict[str, Any]] = field(default_factory=list)
    refreshes: list[dict[str, Any]] = field(default_factory=list)
    debtor_rows: list[tuple[str, str, str]] = field(default_factory=list)  # (obligation_id, person_id, role)
    versions: list[tuple[Any, ...]] = field(default_factory=list)  # rows in the order of VERSION_COLUMNS
    replaced: list[str] = field(default_factory=list)
    corrected: list[tuple[str, str]] = field(default_factory=list)  # (obligation id, dispute id) named by a change


def apply_batch(
    session: Session, cipher: FieldCipher, *, institution_id: str, role: Role, lines: Sequence[Ready], now: datetime, source: str,
    principal: Principal | None = None,
) -> BatchResult:
    """Apply lines with distinct external_refs in one transaction (the caller's), for the institution
    `institution_id` whose role is `role` (only a collector's lines may carry `collects`). With `principal`
    (a report's sender), disputes the lines correct are closed as for a single report.

    Only what the register needs is written: a new line makes an obligation, its debtors and version 1; a
    changed one rewrites the obligation and its debtors and adds a version; a refresh (the same content with
    a newer `as_of`) moves the obligation's `as_of` and hash only; an identical repeat writes nothing."""
    plan = plan_batch(session, cipher, institution_id=institution_id, role=role, lines=lines, now=now, source=source)
    return write_plan(session, plan, principal=principal, now=now, source=source)


def plan_batch(
    session: Session, cipher: FieldCipher, *, institution_id: str, role: Role, lines: Sequence[Ready], now: datetime, source: str,
) -> Plan:
    """`apply_batch`'s reads and decisions, in the caller's transaction: the batch's persons (the missing ones
    added), its stored obligations locked, each line decided. Nothing of the obligations is written yet: a
    batch's writes may be made on this session while the next batch is planned on another (services.report_writer)."""
    plan = Plan(BatchResult())
    result = plan.result
    lines = _allowed(lines, collector=role is Role.collector, errors=result.errors)
    if not lines:
        return plan
    persons = _resolve_persons(session, cipher, lines, now)
    stored: dict[str, Any] = {}
    for row in store.obligations_for_update(session, institution_id=institution_id, refs=[p.ref for p in lines]):
        stored[row.external_ref] = row
    named = {p.corrects_dispute for p in lines if p.corrects_dispute is not None}
    open_named = disputes.open_disputes_for(session, institution_id=institution_id, dispute_ids=named) if named else {}
    inserts, updates, refreshes, versions = plan.inserts, plan.updates, plan.refreshes, plan.versions
    debtor_rows, replaced, corrected = plan.debtor_rows, plan.replaced, plan.corrected
    iso: dict[datetime, bytes] = {}  # a file repeats a few hundred distinct as_of times
    for p in lines:
        as_of = p.values[AS_OF_AT]
        debtors = [(persons[d.blind_index], d.role) for d in p.debtors]
        people = _people(debtors)
        at = iso.get(as_of)
        if at is None:
            at = iso[as_of] = as_of.isoformat().encode()
        state = STATE_START + at + p.state_mid + people + p.state_tail  # `state_json`, its pieces made once
        h = hashlib.sha256(state).hexdigest()
        old = stored.get(p.ref)
        if p.corrects_dispute is not None and (old is None or open_named.get(p.corrects_dispute) != old.id):
            result.errors.append(LineError(p.line, "dispute_not_found",
                                           "corrects_dispute: no open dispute with that id on this line", p.ref))
            continue
        same = False
        if old is not None and old.state_hash not in (None, h) and old.retracted_at is None and as_of > old.as_of:
            then = STATE_START + old.as_of.astimezone(UTC).isoformat().encode() + p.state_mid + people + p.state_tail
            same = hashlib.sha256(then).hexdigest() == old.state_hash
        try:
            verdict = decide(Stored(old.as_of, old.state_hash, old.retracted_at is not None) if old else None,
                             as_of=as_of, state_hash=h, same_content=same)
        except StaleUpdate as exc:
            result.errors.append(LineError(p.line, exc.code, exc.detail, p.ref))
            continue
        if verdict is Verdict.unchanged:
            result.unchanged += 1
            continue
        if verdict is Verdict.refreshed:
            refreshes.append({"id": old.id, "as_of": as_of, "state_hash": h})
            result.unchanged += 1
            continue
        if old is None:
            oid, version = p.new_id, 1
            inserts.append((oid, institution_id, p.ref, *p.values, 1, now, now, h))
            result.created += 1
        else:
            oid, version = old.id, old.version + 1
            updates.append({**p.fields, "id": oid, "version": version, "updated_at": now, "state_hash": h})
            replaced.append(oid)
            result.updated += 1
            if p.corrects_dispute is not None:
                corrected.append((oid, p.corrects_dispute))
        debtor_rows += [(oid, pid, role) for pid, role in debtors]
        versions.append((oid, version, verdict.value, institution_id, source, now, as_of, state))  # state: canonical JSON
    return plan


def write_plan(session: Session, plan: Plan, *, principal: Principal | None, now: datetime, source: str) -> BatchResult:
    """A planned batch's writes, in the transaction that planned it; its result."""
    if plan.inserts:
        store.add_obligations(session, INSERT_COLUMNS, plan.inserts)
    if plan.updates:
        store.update_obligations(session, plan.updates, columns=UPDATE_COLUMNS)
    if plan.refreshes:
        store.update_obligations(session, plan.refreshes, columns=("as_of", "state_hash"))
    if plan.replaced or plan.debtor_rows:
        store.replace_debtors(session, plan.replaced, plan.debtor_rows)
    if plan.versions:
        store.add_versions(session, VERSION_COLUMNS, plan.versions)
    if principal is not None and plan.replaced:
        _close_disputes(session, principal, plan.corrected, plan.replaced, plan.debtor_rows, now=now, source=source)
    return plan.result


def _close_disputes(session: Session, principal: Principal, corrected: list[tuple[str, str]], replaced: list[str],
                    debtor_rows: list[tuple[str, str, str]], *, now: datetime, source: str) -> None:
    """As a single report does: the disputes lines name close as corrected, and so does any open dispute
    of a person a line no longer names. One indexed lookup per batch when no line is disputed."""
    for oid, dispute_id in corrected:
        disputes.close_by_report(session, principal=principal, obligation_id=oid, now=now, request_id=source,
                                 cause="named", dispute_id=dispute_id)
    touched = disputes.open_on(session, replaced)
    if touched:
        names: dict[str, list[str]] = {}
        for oid, pid, _ in debtor_rows:
            names.setdefault(oid, []).append(pid)
        for oid in touched:
            disputes.close_by_report(session, principal=principal, obligation_id=oid, now=now, request_id=source,
                                     cause="debtors", debtors=names.get(oid, []))


UPDATE_COLUMNS = (*FIELDS, "version", "updated_at", "state_hash")
VERSION_COLUMNS = ("obligation_id", "version", "change", "institution_id", "request_id", "recorded_at", "as_of", "state")


INSERT_COLUMNS = ("id", "institution_id", "external_ref", *FIELDS, "version", "created_at", "updated_at",
                  "state_hash")  # a new obligation's row is a tuple in this order: 0.2 us against 2.9 us for a
# dict of 30 keys read back into COPY's order (BENCHMARKS.md, ingest, fourth round)
