"""Applying many report lines at once: the batch path behind `POST /v1/reports` and `register seed`.

The rules are the single report's (validation, identity checks, encryption, `decide`): only the
writing is set-based. Per batch: resolve every person with one query (creating the missing ones),
lock the batch's existing obligations, decide each line, then write new obligations, updates, debtors
and versions in bulk (storage.bulk: PostgreSQL COPY, updates through a staging table and one
UPDATE ... FROM; SQLite executemany). The caller commits the batch with its progress, atomically.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.identity import InvalidNationalId, NationalId, parse_national_id
from register.domain.obligation import ObligationReport, Stored, Verdict, check_collects_allowed, check_report, decide
from register.domain.types import ExternalRef
from register.errors import RegisterError, StaleUpdate
from register.domain.permission import Principal, Role
from register.services import disputes
from register.services.identities import COLUMN, TABLE
from register.services.obligations import REPORTED_FIELDS, fields_of, state_hash, state_of_fields
from register.storage import bulk as store

MAX_LINE_BYTES = 64 * 1024


class ReportLine(ObligationReport):
    """One line of a batch report: an obligation report plus the reporter's reference."""

    external_ref: ExternalRef


@dataclass(frozen=True, slots=True)
class Parsed:
    line: int
    ref: str
    report: ReportLine
    nids: tuple[NationalId, ...]


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    code: str
    detail: str
    ref: str | None = None


def _new_id() -> str:
    """A random (version 4) UUID as text, like str(uuid.uuid4()) at half its cost."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@functools.lru_cache(maxsize=200_000)
def _nid(country: str, raw: str, allow_test: bool) -> NationalId | str:
    try:
        return parse_national_id(country, raw, allow_test=allow_test)
    except InvalidNationalId as exc:
        return exc.reason


_ONE_LINE = re.compile(r"at line 1 column")  # a batch line is one line: its column is what helps


def _validation_detail(exc: ValidationError) -> str:
    """Each problem as `field: message`; one about the whole line (not JSON, not an object) has no field
    and is its message alone, never `: message`. Never echoes the input: it may hold an identity number."""
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "json_invalid":  # pydantic: "Invalid JSON: expected value at line 1 column 7"
            parts.append("not valid JSON: " + _ONE_LINE.sub("at column", str((e.get("ctx") or {}).get("error", ""))))
        else:
            parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(parts)


def parse_doc(line: int, doc: dict[str, Any] | bytes, *, now: datetime, allow_test: bool) -> Parsed | LineError:
    """Validate one line (raw JSON bytes or an already-decoded dict, e.g. from CSV) like a single report."""
    ref = doc.get("external_ref") if isinstance(doc, dict) else None
    try:
        report = ReportLine.model_validate_json(doc) if isinstance(doc, bytes) else ReportLine.model_validate(doc)
    except ValidationError as exc:
        return LineError(line, "validation_error", _validation_detail(exc), ref if isinstance(ref, str) else None)
    try:
        check_report(report, now=now)
    except RegisterError as exc:
        return LineError(line, exc.code, exc.detail, report.external_ref)
    nids: list[NationalId] = []
    for i, d in enumerate(report.debtors):
        parsed = _nid(d.country, d.national_id, allow_test)
        if isinstance(parsed, str):
            return LineError(line, "invalid_national_id",
                             f"debtors.{i}.national_id is not a valid {d.country} identity number: {parsed}",
                             report.external_ref)
        if parsed in nids:
            return LineError(line, "duplicate_debtor", f"debtors.{i} is the same person as another debtor",
                             report.external_ref)
        nids.append(parsed)
    return Parsed(line, report.external_ref, report, tuple(nids))


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[LineError] = field(default_factory=list)


def _allowed(lines: Sequence[Parsed], *, collector: bool, errors: list[LineError]) -> Sequence[Parsed]:
    """The lines this institution may report; each other one becomes its error (a lender's `collects`)."""
    if collector or all(p.report.collects is None for p in lines):
        return lines
    kept = []
    for p in lines:
        try:
            check_collects_allowed(p.report, collector=collector)
        except RegisterError as exc:
            errors.append(LineError(p.line, exc.code, exc.detail, p.ref))
            continue
        kept.append(p)
    return kept


def _resolve_persons(session: Session, cipher: FieldCipher, nids: set[NationalId], now: datetime) -> dict[NationalId, str]:
    by_index = {cipher.blind_index(n.blind_index_input()): n for n in nids}
    found: dict[NationalId, str] = {}
    keys = list(by_index)
    for pid, bidx in store.persons_by_blind_index(session, keys):
        found[by_index[bidx]] = pid
    new_rows = []
    for bidx, nid in by_index.items():
        if nid not in found:
            pid = _new_id()
            enc = cipher.encrypt(nid.number.encode(), table=TABLE, column=COLUMN, row_id=pid)
            new_rows.append({"id": pid, "country": nid.country, "blind_index": bidx, "national_id_enc": enc,
                             "created_at": now})
            found[nid] = pid
    if new_rows:
        store.add_persons(session, new_rows)
    return found


def apply_batch(
    session: Session, cipher: FieldCipher, *, institution_id: str, role: Role, lines: Sequence[Parsed], now: datetime,
    source: str, principal: Principal | None = None,
) -> BatchResult:
    """Apply lines with distinct external_refs in one transaction (the caller's), for the institution
    `institution_id` whose role is `role` (only a collector's lines may carry `collects`). With `principal`
    (a report's sender), disputes the lines correct are closed as for a single report."""
    result = BatchResult()
    lines = _allowed(lines, collector=role is Role.collector, errors=result.errors)
    if not lines:
        return result
    persons = _resolve_persons(session, cipher, {n for p in lines for n in p.nids}, now)
    refs = [p.ref for p in lines]
    stored: dict[str, Any] = {}
    for row in store.obligations_for_update(session, institution_id=institution_id, refs=refs):
        stored[row.external_ref] = row
    named = {p.report.corrects_dispute for p in lines if p.report.corrects_dispute is not None}
    open_named = disputes.open_disputes_for(session, institution_id=institution_id, dispute_ids=named) if named else {}
    corrected: list[tuple[str, str]] = []  # (obligation id, dispute id) of accepted changes naming one
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    debtor_rows: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    replaced: list[str] = []
    for p in lines:
        fields = fields_of(p.report)
        debtors = [(persons[n], d.role.value) for n, d in zip(p.nids, p.report.debtors, strict=True)]
        state = state_of_fields(fields, debtors)
        h = state_hash(state)
        old = stored.get(p.ref)
        if p.report.corrects_dispute is not None and (old is None or open_named.get(p.report.corrects_dispute) != old.id):
            result.errors.append(LineError(p.line, "dispute_not_found",
                                           "corrects_dispute: no open dispute with that id on this line", p.ref))
            continue
        try:
            verdict = decide(Stored(old.as_of, old.state_hash, old.retracted_at is not None) if old else None,
                             as_of=p.report.as_of, state_hash=h)
        except StaleUpdate as exc:
            result.errors.append(LineError(p.line, exc.code, exc.detail, p.ref))
            continue
        if verdict is Verdict.unchanged:
            result.unchanged += 1
            continue
        if old is None:
            oid, version = _new_id(), 1
            inserts.append({**fields, "id": oid, "institution_id": institution_id, "external_ref": p.ref,
                            "version": 1, "created_at": now, "updated_at": now, "state_hash": h,
                            "retracted_at": None, "retraction_reason": None})
            result.created += 1
        else:
            oid, version = old.id, old.version + 1
            updates.append({**fields, "id": oid, "version": version, "updated_at": now, "state_hash": h})
            replaced.append(oid)
            result.updated += 1
            if p.report.corrects_dispute is not None:
                corrected.append((oid, p.report.corrects_dispute))
        debtor_rows += [{"obligation_id": oid, "person_id": pid, "role": role} for pid, role in debtors]
        versions.append({"obligation_id": oid, "version": version, "change": verdict.value,
                         "institution_id": institution_id, "request_id": source, "recorded_at": now,
                         "as_of": p.report.as_of, "state": state})

    if inserts:
        store.add_obligations(session, inserts)
    if updates:
        store.update_obligations(session, updates, columns=UPDATE_COLUMNS)
    store.replace_debtors(session, replaced, debtor_rows)
    if versions:
        store.add_versions(session, versions)
    if principal is not None and replaced:
        _close_disputes(session, principal, corrected, replaced, debtor_rows, now=now, source=source)
    return result


def _close_disputes(session: Session, principal: Principal, corrected: list[tuple[str, str]], replaced: list[str],
                    debtor_rows: list[dict[str, Any]], *, now: datetime, source: str) -> None:
    """As a single report does: the disputes lines name close as corrected, and so does any open dispute
    of a person a line no longer names. One indexed lookup per batch when no line is disputed."""
    for oid, dispute_id in corrected:
        disputes.close_by_report(session, principal=principal, obligation_id=oid, now=now, request_id=source,
                                 cause="named", dispute_id=dispute_id)
    touched = disputes.open_on(session, replaced)
    if touched:
        names: dict[str, list[str]] = {}
        for r in debtor_rows:
            names.setdefault(r["obligation_id"], []).append(r["person_id"])
        for oid in touched:
            disputes.close_by_report(session, principal=principal, obligation_id=oid, now=now, request_id=source,
                                     cause="debtors", debtors=names.get(oid, []))


UPDATE_COLUMNS = (*REPORTED_FIELDS, "collects_institution_id", "collects_external_ref", "handed_to_institution_id",
                  "handed_to_external_ref", "registration_consent", "as_of", "version", "updated_at",
                  "state_hash")  # fmt: skip
