"""Applying many report lines at once: the batch path behind `POST /v1/reports` and `register seed`.

The rules are the single report's (validation, identity checks, encryption, `decide`): only the
writing is set-based. Per batch: resolve every person with one query (creating the missing ones),
lock the batch's existing obligations, decide each line, then write new obligations, updates, debtors
and versions in bulk (storage.bulk: PostgreSQL COPY, updates through a staging table and one
UPDATE ... FROM; SQLite executemany). The caller commits the batch with its progress, atomically.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy.orm import Session

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.domain.identity import InvalidNationalId, NationalId, parse_national_id
from register.domain.obligation import ObligationReport, Stored, Verdict, check_may_collect, check_report, decide
from register.domain.types import ExternalRef
from register.errors import RegisterError, StaleUpdate
from register.domain.permission import Principal, Role
from register.services import disputes
from register.services.identities import COLUMN, TABLE
from register.services.obligations import REPORTED_FIELDS, fields_of, state_of_fields
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


_random: deque[bytes] = deque()  # 16 random bytes each, read 4 KiB at a time: one system call per 256 ids
os.register_at_fork(after_in_child=_random.clear)  # a forked process never reuses its parent's bytes


def _new_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID as text: 48 bits of Unix milliseconds, then 74 random bits.
    Rows a report adds then land at the right-hand edge of the primary-key indexes instead of on random
    pages, so a batch dirties (and logs after each checkpoint) a few pages instead of one per row
    (BENCHMARKS.md, eighth round). Safe across threads: each id's random bytes leave the buffer in one
    atomic `pop`."""
    while True:
        try:
            h = _random.pop().hex()
            break
        except IndexError:
            more = os.urandom(4096)
            _random.extend(more[i : i + 16] for i in range(0, 4096, 16))
    t = f"{time.time_ns() // 1_000_000:012x}"
    return f"{t[:8]}-{t[8:]}-7{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


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


class Debtor(NamedTuple):
    """A debtor of a prepared line: its blind index, and the person row to add if it is new to the register
    (an id and the identity number encrypted for that id; unused when the person exists)."""

    blind_index: bytes
    role: str
    country: str
    new_id: str
    national_id_enc: bytes
    blind_index_next: bytes | None = None  # under the other live key, while a blind-index rotation runs


class Ready(NamedTuple):
    """A valid line with everything that needs no database done: the obligation's columns, its debtors'
    blind indexes and ciphertexts, and its state's canonical JSON around the two parts only the database
    knows (the debtors' person ids, and for a refresh the stored `as_of`). Made by `prepare`, in a worker
    process for a large file (services.reports); a tuple, because it crosses a process boundary."""

    line: int
    ref: str
    new_id: str  # the obligation's id if it is new to the register
    values: tuple[Any, ...]  # `fields_of`'s values, in FIELDS order: a tuple pickles at a fraction of a dict
    corrects_dispute: str | None
    collects: bool
    debtors: tuple[Debtor, ...]
    state_mid: bytes  # canonical state JSON after its `as_of` member, up to the debtors' value
    state_tail: bytes  # and after it

    @property
    def fields(self) -> dict[str, Any]:
        """The obligation's columns the line sets (`fields_of`)."""
        return dict(zip(FIELDS, self.values, strict=True))


FIELDS = (*REPORTED_FIELDS, "collects_institution_id", "collects_external_ref", "handed_to_institution_id",
          "handed_to_external_ref", "registration_consent", "as_of")  # `fields_of`'s keys, in its order
_AS_OF_AT = FIELDS.index("as_of")


_AS_OF, _NO_DEBTORS = b'{"as_of":"', b'"debtors":[]'


def prepare(p: Parsed, cipher: FieldCipher) -> Ready:
    """The database-free rest of a valid line's work: its columns, blind indexes, speculative person rows
    and its state's canonical JSON, split where person ids go. Pure: the same line prepares the same way
    in any process (but for the random ids and nonces of person rows the database may not need)."""
    report = p.report
    fields = fields_of(report)
    debtors = []
    for n, d in zip(p.nids, report.debtors, strict=True):
        bidx, pid, enc, nxt = _person_row(cipher, n)
        debtors.append(Debtor(bidx, d.role.value, n.country, pid, enc, nxt))
    state = canonical_json(state_of_fields(fields, []))  # b'{"as_of":"<time>",' ... b'"debtors":[]' ...
    assert state.startswith(_AS_OF)  # the first key in sorted order
    end = state.index(b'"', len(_AS_OF))  # no quote inside an ISO time
    at = state.index(_NO_DEBTORS)  # only once: every quote inside a string value is escaped
    assert tuple(fields) == FIELDS
    return Ready(p.line, p.ref, _new_id(), tuple(fields.values()), report.corrects_dispute,
                 report.collects is not None, tuple(debtors),
                 state[end : at + len(_NO_DEBTORS) - 2], state[at + len(_NO_DEBTORS) :])


@functools.lru_cache(maxsize=100_000)
def _person_row(cipher: FieldCipher, nid: NationalId) -> tuple[bytes, str, bytes, bytes | None]:
    """A person's blind index, and an id and ciphertext for its row should it be new. Made once per person
    and process: a file names most persons on several lines (a person's id is fixed only when a batch
    inserts the row; until then any line may offer the same one)."""
    pid = _new_id()
    bidx, *other = cipher.blind_indexes(nid.blind_index_input())
    return (bidx, pid, cipher.encrypt(nid.number.encode(), table=TABLE, column=COLUMN, row_id=pid),
            other[0] if other else None)


def state_json(line: Ready, as_of: datetime, debtors: list[tuple[str, str]]) -> bytes:
    """The line's state as canonical JSON (byte for byte `canonical_json(state_of_fields(...))`) with
    these debtors (person id, role) and this `as_of`."""
    return _AS_OF + as_of.isoformat().encode() + line.state_mid + _people(debtors) + line.state_tail


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


def _resolve_persons(session: Session, lines: Sequence[Ready], now: datetime) -> dict[bytes, str]:
    """Person id by blind index for every debtor of these lines, adding the persons the register does not
    know yet. Added with ON CONFLICT DO NOTHING, then read back: a person a concurrent report added meanwhile
    is that report's row, not an error."""
    wanted: dict[bytes, Debtor] = {}
    for p in lines:
        for d in p.debtors:
            wanted.setdefault(d.blind_index, d)
    found = dict((bidx, pid) for pid, bidx in store.persons_by_blind_index(session, list(wanted)))
    new_rows = [{"id": d.new_id, "country": d.country, "blind_index": bidx, "national_id_enc": d.national_id_enc,
                 "created_at": now, "blind_index_next": d.blind_index_next}
                for bidx, d in wanted.items() if bidx not in found]
    if new_rows:
        taken = store.add_persons(session, new_rows)
        found |= {r["blind_index"]: r["id"] for r in new_rows if r["blind_index"] not in taken}
        if taken:
            found |= {bidx: pid for pid, bidx in store.persons_by_blind_index(session, list(taken))}
    return found


def apply_batch(
    session: Session, *, institution_id: str, role: Role, lines: Sequence[Ready], now: datetime, source: str,
    principal: Principal | None = None,
) -> BatchResult:
    """Apply lines with distinct external_refs in one transaction (the caller's), for the institution
    `institution_id` whose role is `role` (only a collector's lines may carry `collects`). With `principal`
    (a report's sender), disputes the lines correct are closed as for a single report.

    Only what the register needs is written: a new line makes an obligation, its debtors and version 1; a
    changed one rewrites the obligation and its debtors and adds a version; a refresh (the same content with
    a newer `as_of`) moves the obligation's `as_of` and hash only; an identical repeat writes nothing."""
    result = BatchResult()
    lines = _allowed(lines, collector=role is Role.collector, errors=result.errors)
    if not lines:
        return result
    persons = _resolve_persons(session, lines, now)
    stored: dict[str, Any] = {}
    for row in store.obligations_for_update(session, institution_id=institution_id, refs=[p.ref for p in lines]):
        stored[row.external_ref] = row
    named = {p.corrects_dispute for p in lines if p.corrects_dispute is not None}
    open_named = disputes.open_disputes_for(session, institution_id=institution_id, dispute_ids=named) if named else {}
    corrected: list[tuple[str, str]] = []  # (obligation id, dispute id) of accepted changes naming one
    inserts: list[tuple[Any, ...]] = []  # rows in the order of INSERT_COLUMNS
    updates: list[dict[str, Any]] = []
    refreshes: list[dict[str, Any]] = []
    debtor_rows: list[tuple[str, str, str]] = []  # (obligation_id, person_id, role)
    versions: list[tuple[Any, ...]] = []  # rows in the order of VERSION_COLUMNS
    replaced: list[str] = []
    iso: dict[datetime, bytes] = {}  # a file repeats a few hundred distinct as_of times
    for p in lines:
        as_of = p.values[_AS_OF_AT]
        debtors = [(persons[d.blind_index], d.role) for d in p.debtors]
        people = _people(debtors)
        at = iso.get(as_of)
        if at is None:
            at = iso[as_of] = as_of.isoformat().encode()
        state = _AS_OF + at + p.state_mid + people + p.state_tail  # `state_json`, its pieces made once
        h = hashlib.sha256(state).hexdigest()
        old = stored.get(p.ref)
        if p.corrects_dispute is not None and (old is None or open_named.get(p.corrects_dispute) != old.id):
            result.errors.append(LineError(p.line, "dispute_not_found",
                                           "corrects_dispute: no open dispute with that id on this line", p.ref))
            continue
        same = False
        if old is not None and old.state_hash not in (None, h) and old.retracted_at is None and as_of > old.as_of:
            then = _AS_OF + old.as_of.astimezone(UTC).isoformat().encode() + p.state_mid + people + p.state_tail
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

    if inserts:
        store.add_obligations(session, INSERT_COLUMNS, inserts)
    if updates:
        store.update_obligations(session, updates, columns=UPDATE_COLUMNS)
    if refreshes:
        store.update_obligations(session, refreshes, columns=("as_of", "state_hash"))
    store.replace_debtors(session, replaced, debtor_rows)
    if versions:
        store.add_versions(session, VERSION_COLUMNS, versions)
    if principal is not None and replaced:
        _close_disputes(session, principal, corrected, replaced, debtor_rows, now=now, source=source)
    return result


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


UPDATE_COLUMNS = (*REPORTED_FIELDS, "collects_institution_id", "collects_external_ref", "handed_to_institution_id",
                  "handed_to_external_ref", "registration_consent", "as_of", "version", "updated_at",
                  "state_hash")  # fmt: skip
VERSION_COLUMNS = ("obligation_id", "version", "change", "institution_id", "request_id", "recorded_at", "as_of", "state")


INSERT_COLUMNS = ("id", "institution_id", "external_ref", *FIELDS, "version", "created_at", "updated_at",
                  "state_hash")  # a new obligation's row is a tuple in this order: 0.2 us against 2.9 us for a
# dict of 30 keys read back into COPY's order (BENCHMARKS.md, ingest, fourth round)
