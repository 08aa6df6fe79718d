"""A batch report's lines, validated and prepared: all of a line's work that needs no database.

What `prepare` makes (`Ready`) is applied by services.bulk in the worker's transaction. For a large file this
work runs in preparing processes (services.reports), forked from a fork server that has imported this module
only: it imports neither the database layer nor the web framework, so the fork server that each server process
starts for its first large report is ready in a third of the time the whole register takes to import
(BENCHMARKS.md, ingest, tenth round; tests/test_bulk_prepare.py checks what it imports).
"""

from __future__ import annotations

import functools
import gc
import operator
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import UnionType
from typing import Annotated, Any, NamedTuple, NotRequired, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.domain.identity import InvalidNationalId, NationalId, parse_national_id
from register.domain.obligation import ObligationReport, check_values
from register.domain.state import REPORTED_FIELDS, STATE_EXTRA, fields_of_line, state_of_fields
from register.domain.types import ExternalRef, FastIsoDate, FastTimestamp, IsoDate, Timestamp
from register.errors import RegisterError

TABLE, COLUMN = "persons", "national_id_enc"  # where a person's identity number is kept, encrypted bound to it


MAX_LINE_BYTES = 64 * 1024


class ReportLine(ObligationReport):
    """One line of a batch report: an obligation report plus the reporter's reference."""

    external_ref: ExternalRef


def _fast(tp: Any) -> Any:
    """`tp` with each model in it made a TypedDict of the same fields (`_doc_type`) and each IsoDate and
    Timestamp made FastIsoDate and FastTimestamp; every other annotation and constraint kept as it is."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _doc_type(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        for reference, fast in _FAST_TYPES:
            if tp == reference:
                return fast
        base, *meta = args
        return Annotated[(_fast(base), *meta)]
    if origin in (Union, UnionType):
        return functools.reduce(operator.or_, map(_fast, args))
    if origin is list:
        return list[_fast(args[0])]  # type: ignore[misc]
    return tp


_FAST_TYPES = ((IsoDate, FastIsoDate), (Timestamp, FastTimestamp))


def _doc_type(model: type[BaseModel]) -> type:
    """A TypedDict of `model`'s fields, with their annotations and constraints, that refuses unknown keys as
    the model does; a field with a default is NotRequired (`_validated` fills it in). Built from the model, so
    it cannot drift from it; a nested model's field with a default is refused here, since nothing would fill
    it in."""
    fields = {}
    for name, f in model.model_fields.items():
        tp = _fast(Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation)
        if not f.is_required():
            if model is not ReportLine:
                raise TypeError(f"{model.__name__}.{name} has a default, which a batch line would not fill in")
            tp = NotRequired[tp]  # type: ignore[valid-type]
        fields[name] = tp
    doc = TypedDict(f"{model.__name__}Doc", fields)  # type: ignore[operator]
    doc.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return doc


# A batch line validated into plain dicts: ReportLine's fields, annotations and constraints (`_doc_type`), with its
# dates and times checked inside pydantic-core (domain.types, FastTimestamp). No model instance is made: the
# three a line's model made were 40 % of its validation (BENCHMARKS.md, ingest, fourteenth round). It accepts
# nothing ReportLine refuses; `_validated` converts its times to UTC, fills in ReportLine's defaults, and
# validates a line it refuses again with ReportLine, whose result (SPEC's error, or a value it accepts and
# this does not) is what counts.
_LINE = TypeAdapter(_doc_type(ReportLine))
_DEFAULTS = {name: f.default for name, f in ReportLine.model_fields.items() if not f.is_required()}
assert all(d is None or type(d) is int for d in _DEFAULTS.values())  # immutable: shared by every line


def _validated(doc: dict[str, Any] | bytes) -> dict[str, Any]:
    """The line as ReportLine validates it (raises its ValidationError), as a dict of its fields (nested
    models as dicts, enums as members, times in UTC)."""
    try:
        line = _LINE.validate_json(doc) if isinstance(doc, bytes) else _LINE.validate_python(doc)
    except ValidationError:
        report = ReportLine.model_validate_json(doc) if isinstance(doc, bytes) else ReportLine.model_validate(doc)
        return report.model_dump()  # the same shape: nested models as dicts, enums as members, times in UTC
    line = _DEFAULTS | line
    line["as_of"] = line["as_of"].astimezone(UTC)
    consent = line["registration_consent"]
    consent["given_at"] = consent["given_at"].astimezone(UTC)
    return line


@dataclass(frozen=True, slots=True)
class Parsed:
    line: int
    ref: str
    report: dict[str, Any]  # ReportLine's fields, as `_validated` gives them
    nids: tuple[NationalId, ...]


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    code: str
    detail: str
    ref: str | None = None


_random: deque[bytes] = deque()  # 16 random bytes each, read 4 KiB at a time: one system call per 256 ids
os.register_at_fork(after_in_child=_random.clear)  # a forked process never reuses its parent's bytes


def time_ordered_id() -> str:
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
        report = _validated(doc)
    except ValidationError as exc:
        return LineError(line, "validation_error", _validation_detail(exc), ref if isinstance(ref, str) else None)
    debtors, ref = report["debtors"], report["external_ref"]
    try:
        check_values(report, [d["role"] for d in debtors], report["registration_consent"]["given_at"], now=now)
    except RegisterError as exc:
        return LineError(line, exc.code, exc.detail, ref)
    nids: list[NationalId] = []
    for i, d in enumerate(debtors):
        parsed = _nid(d["country"], d["national_id"], allow_test)
        if isinstance(parsed, str):
            return LineError(line, "invalid_national_id",
                             f"debtors.{i}.national_id is not a valid {d['country']} identity number: {parsed}", ref)
        if parsed in nids:
            return LineError(line, "duplicate_debtor", f"debtors.{i} is the same person as another debtor", ref)
        nids.append(parsed)
    return Parsed(line, ref, report, tuple(nids))


class Debtor(NamedTuple):
    """A debtor of a prepared line: its blind index, and what its person row needs should it be new to the
    register (services.bulk makes the row's id and ciphertext then, for the persons no row holds yet)."""

    blind_index: bytes
    role: str
    country: str
    number: str  # the identity number: in memory only, between the processes of one server
    blind_index_next: bytes | None = None  # under the other live key, while a blind-index rotation runs

    def __repr__(self) -> str:  # never the number, wherever a line is shown
        return f"Debtor(role={self.role!r}, country={self.country!r}, number=<redacted>)"


class Ready(NamedTuple):
    """A valid line with everything that needs no database done: the obligation's columns, its debtors'
    blind indexes, and its state's canonical JSON around the two parts only the database
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


FIELDS = (*REPORTED_FIELDS, *STATE_EXTRA)  # `fields_of`'s keys, in its order
AS_OF_AT = FIELDS.index("as_of")


STATE_START, _NO_DEBTORS = b'{"as_of":"', b'"debtors":[]'  # how every state's JSON starts; its empty debtors


def prepare(p: Parsed, cipher: FieldCipher) -> Ready:
    """The database-free rest of a valid line's work: its columns, its debtors' blind indexes and its state's
    canonical JSON, split where person ids go. Pure: the same line prepares the same way in any process (but
    for the obligation's id, random, which the database may not need)."""
    report = p.report
    fields = fields_of_line(report)
    debtors = []
    for n, d in zip(p.nids, report["debtors"], strict=True):
        bidx, *other = cipher.blind_indexes(n.blind_index_input())
        debtors.append(Debtor(bidx, d["role"].value, n.country, n.number, other[0] if other else None))
    state = canonical_json(state_of_fields(fields, []))  # b'{"as_of":"<time>",' ... b'"debtors":[]' ...
    assert state.startswith(STATE_START)  # the first key in sorted order
    end = state.index(b'"', len(STATE_START))  # no quote inside an ISO time
    at = state.index(_NO_DEBTORS)  # only once: every quote inside a string value is escaped
    assert tuple(fields) == FIELDS
    return Ready(p.line, p.ref, time_ordered_id(), tuple(fields.values()), report["corrects_dispute"],
                 report["collects"] is not None, tuple(debtors),
                 state[end : at + len(_NO_DEBTORS) - 2], state[at + len(_NO_DEBTORS) :])


Doc = bytes | dict[str, Any] | LineError | None  # a line before validation (services.reports._docs)
GC_THRESHOLD = (50_000, 20, 20)  # the cyclic collector's, while a server runs reports (ReportWorker.start)


def prepare_docs(docs: Iterable[tuple[int, Doc]], cipher: FieldCipher, *, now: datetime, allow_test: bool
                  ) -> list[tuple[int, Ready | LineError | None]]:  # fmt: skip
    """Validate and prepare each line, like a single report; an error or None stays."""
    out: list[tuple[int, Ready | LineError | None]] = []
    for n, doc in docs:
        if doc is None or isinstance(doc, LineError):
            out.append((n, doc))
            continue
        parsed = parse_doc(n, doc, now=now, allow_test=allow_test)
        out.append((n, parsed if isinstance(parsed, LineError) else prepare(parsed, cipher)))
    return out


_worker_cipher: FieldCipher | None = None  # a preparing process's own, set when it starts


def raise_gc_thresholds() -> None:
    """The cyclic collector's thresholds at least GC_THRESHOLD (one set higher is kept): in every process that
    holds a batch's lines, the server's and each preparing process."""
    gc.set_threshold(*(max(a, b) for a, b in zip(gc.get_threshold(), GC_THRESHOLD, strict=True)))


def start_preparer(cipher: FieldCipher, server: int) -> None:
    global _worker_cipher
    _worker_cipher = cipher
    gc.freeze()  # what the imports made lives as long as the process: collections need not walk it
    raise_gc_thresholds()  # as the server's (ReportWorker.start)
    threading.Thread(target=_exit_with, args=(server,), name="exit-with-server", daemon=True).start()


def _exit_with(server: int) -> None:
    """End this preparing process once the server that started it is gone. A server killed mid-report
    (SIGKILL) left its preparing processes blocked for good, writing results into a full pipe whose
    reading end they hold themselves (as every process of a pool does); found after the crash test."""
    while True:
        time.sleep(2)
        try:
            os.kill(server, 0)
            with open(f"/proc/{server}/stat", "rb") as f:  # a killed server not yet reaped is a zombie
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    os._exit(1)
        except ProcessLookupError:
            os._exit(1)
        except OSError:  # no /proc: the signal check alone
            continue


Wire = list[tuple[int, tuple[Any, ...] | LineError | None]]  # what a preparing process sends back (`to_wire`)
_DEBTORS_AT = Ready._fields.index("debtors")
_new_tuple = tuple.__new__


def to_wire(prepared: list[tuple[int, Ready | LineError | None]]) -> Wire:
    """Prepared lines as plain tuples, to cross the pipe: a named tuple pickles through a Python call of its own
    (`__getnewargs__`), and each line's Ready and Debtors took 7.4 us to pickle against 4.2 as plain tuples
    (BENCHMARKS.md, ingest, eleventh round). `from_wire` makes them Ready again."""
    return [(n, (*r[:_DEBTORS_AT], tuple(map(tuple, r.debtors)), *r[_DEBTORS_AT + 1 :]) if type(r) is Ready else r)
            for n, r in prepared]  # fmt: skip


def from_wire(items: Wire) -> list[tuple[int, Ready | LineError | None]]:
    out: list[tuple[int, Ready | LineError | None]] = []
    for n, t in items:
        if type(t) is tuple:  # a Ready's fields, its debtors' fields in place of its Debtors
            debtors = tuple([_new_tuple(Debtor, d) for d in t[_DEBTORS_AT]])
            t = _new_tuple(Ready, (*t[:_DEBTORS_AT], debtors, *t[_DEBTORS_AT + 1 :]))
        out.append((n, t))  # type: ignore[arg-type]
    return out


def prepare_task(docs: list[tuple[int, Doc]], now: datetime, allow_test: bool) -> Wire:
    assert _worker_cipher is not None
    return to_wire(prepare_docs(docs, _worker_cipher, now=now, allow_test=allow_test))
