"""Batch reports: receive a file durably, then process it in the background, resumably.

Receiving (services.report_upload): the body is stored in 1 MiB encrypted chunks, each committed as it
arrives; only after the last step's commit does the client get 202. Memory stays at one chunk.

Processing: lines are read back chunk by chunk, validated like single reports, and applied in batches
(services.bulk). Each batch commits together with the report's progress (`lines_read` and counters), so
a crash loses at most the uncommitted batch, and a restart resumes after the last committed line: no
accepted line is lost or applied twice.
"""

from __future__ import annotations

import csv
import functools
import gc
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal
from register.errors import NotFound
from register.population import CSV_COLUMNS, from_csv_row
from register.services import outbox as told
from register.services.bulk import Plan, plan_batch, write_plan
from register.services.lines import (
    MAX_LINE_BYTES, Doc, LineError, Ready, Wire, from_wire, prepare_docs, prepare_task, raise_gc_thresholds,
    start_preparer,
)  # fmt: skip
from register.services.events import record_event
from register.services.report_summary import report_summary  # noqa: F401 - the routes' name for it
from register.services.report_upload import expire_abandoned_uploads, open_chunk
from register.services.report_writer import Batch, BatchWriter
from register.services.snapshot_reports import unreport_missing
from register.storage.bulk import batches_overlap
from register.storage.models import Report, ReportChunk, ReportError, ReportRef
from register.storage.types import utcnow

log = logging.getLogger("register.reports")
CHUNK = 1024 * 1024
BATCH = 5000  # lines per transaction: 6,000 cost PostgreSQL 56-57 us a line against 70-75 us for 2,000 (BENCHMARKS.md)
POOL_MIN_BYTES = 8 * 1024 * 1024  # smaller files are prepared in the worker's own thread
POOL_MIN_CORES = 2  # on one core every file is prepared in the worker's own thread (BENCHMARKS.md, eighth round)
TASK_LINES = 500  # lines per task sent to a preparing process
STALE_HEARTBEAT = timedelta(seconds=60)


def get_report(session: Session, *, principal: Principal, report_id: str) -> Report:
    report = session.get(Report, report_id)
    if report is None or report.institution_id != principal.institution_id:
        raise NotFound("no report with that id from this institution")
    return report


def read_report(sessions: sessionmaker[Session], *, principal: Principal, report_id: str) -> Report:
    """`get_report` in a short transaction of its own (for routes that hold no session)."""
    with sessions() as s:
        report = get_report(s, principal=principal, report_id=report_id)
        s.expunge(report)
        return report


def iter_errors(sessions: sessionmaker[Session], report_id: str, page: int = 5000) -> Iterator[ReportError]:
    after = 0
    while True:
        with sessions() as s:
            rows = list(s.execute(select(ReportError).where(ReportError.report_id == report_id,
                                                            ReportError.line > after)
                                  .order_by(ReportError.line).limit(page)).scalars())  # fmt: skip
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].line


# --- reading the body back ---------------------------------------------------------------------------


def _lines(sessions: sessionmaker[Session], cipher: FieldCipher, report: Report) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw line) over the stored chunks. A line far over the limit keeps only its
    head (enough to be refused as too long)."""
    carry = b""
    n = 0
    for idx in range(report.chunks):
        with sessions() as s:
            blob = s.execute(select(ReportChunk.data).where(ReportChunk.report_id == report.id,
                                                            ReportChunk.idx == idx)).scalar_one()
        data = carry + open_chunk(cipher, report.id, idx, bytes(blob))
        parts = data.split(b"\n")
        carry = parts.pop()
        for raw in parts:
            n += 1
            yield n, raw
        if len(carry) > MAX_LINE_BYTES * 4:  # a line far over the limit: keep its head only
            carry = carry[: MAX_LINE_BYTES + 1]
    if carry:
        n += 1
        yield n, carry


def _docs(lines: Iterator[tuple[int, bytes]], fmt: str) -> Iterator[tuple[int, Doc]]:
    """(line number, what to prepare) for every line: its raw JSON (NDJSON) or its cells as a report line's
    JSON shape (CSV), or already its error, or None for a line that is no report (blank, a CSV header)."""
    header: list[str] | None = None
    bad_header = False
    for n, raw in lines:
        raw = raw.rstrip(b"\r")
        if not raw or raw.isspace():  # as `not raw.strip()`, without copying each line
            yield n, None
            continue
        if len(raw) > MAX_LINE_BYTES:
            yield n, LineError(n, "line_too_long", f"lines are limited to {MAX_LINE_BYTES} bytes")
            continue
        if fmt != "csv":
            yield n, raw
            continue
        try:
            row = next(csv.reader([raw.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error) as exc:
            yield n, LineError(n, "malformed_line", f"not a CSV row: {type(exc).__name__}")
            continue
        if header is None:
            if row and row[0].startswith("\ufeff"):  # a byte order mark, as spreadsheets write it
                row[0] = row[0][1:]
            header = row
            unknown = sorted(set(header) - set(CSV_COLUMNS) - {"corrects_dispute"})  # optional column
            if unknown:
                yield n, LineError(n, "unknown_column", f"unknown CSV columns: {', '.join(unknown)}")
                bad_header = True
            else:
                yield n, None
            continue
        if bad_header:
            yield n, LineError(n, "invalid_header", "the header row names unknown columns")
            continue
        if len(row) != len(header):
            yield n, LineError(n, "malformed_line", f"{len(row)} cells for {len(header)} columns")
            continue
        try:
            yield n, from_csv(dict(zip(header, row, strict=True)))
        except ValueError as exc:
            yield n, LineError(n, "malformed_line", str(exc))


def _prepared(docs: Iterator[tuple[int, Doc]], cipher: FieldCipher, *, now: datetime, allow_test: bool,
              processes: int, batch: int = BATCH, share: Callable[[], int] | None = None,
              ) -> Iterator[tuple[int, Ready | LineError | None]]:  # fmt: skip
    """The lines prepared, in file order: by `processes` processes in tasks of TASK_LINES lines, a `batch` plus
    two a process ahead, so they prepare the next batch while the caller writes one (half a batch ahead left
    them idle: BENCHMARKS.md, fifth round); with 0, in the caller's thread. `share`, asked once a batch, says how
    many to use now: with 0, the tasks sent are taken first, then lines are prepared in the caller's thread until
    it says more (started processes keep their number). The result is the same."""
    if processes < 1 and share is None:
        for item in docs:
            yield from prepare_docs((item,), cipher, now=now, allow_test=allow_test)
        return
    pool: ProcessPoolExecutor | None = None
    per_batch, use, size = -(-batch // TASK_LINES), processes, processes
    try:
        ahead: deque[Future[Wire]] = deque()
        for i, task in enumerate(_tasks(docs, TASK_LINES)):
            if share is not None and i % per_batch == 0:
                use = share()
            if use < 1:
                while ahead:
                    yield from from_wire(ahead.popleft().result())
                yield from prepare_docs(task, cipher, now=now, allow_test=allow_test)
                continue
            if pool is None:
                pool, size = ProcessPoolExecutor(use, mp_context=_preparers_context(), initializer=start_preparer,
                                                 initargs=(cipher, os.getpid())), use
            ahead.append(pool.submit(prepare_task, task, now, allow_test))
            if len(ahead) > per_batch + 2 * size:
                yield from from_wire(ahead.popleft().result())
        while ahead:
            yield from from_wire(ahead.popleft().result())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def warm_preparers() -> None:
    """Start this process's fork server (its import of services.lines: 0.2-0.3 s of a core) as a report that may
    want preparing processes is claimed, beside its first batches: started when they were first wanted, it
    stalled a report left alone that long (BENCHMARKS.md, ninth round). Returns at once; one running is kept."""
    _preparers_context()
    multiprocessing.forkserver.ensure_running()


@functools.cache
def _preparers_context() -> multiprocessing.context.BaseContext:
    """Preparing processes are forked from a fork server: a process started once (with a fresh interpreter,
    since a server has threads that a plain fork would copy mid-step) that has imported services.lines (what
    they run, without the database layer or the web: BENCHMARKS.md, tenth round), so a report's processes
    start in milliseconds instead of importing it each."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["register.services.lines"])
    return ctx


def _tasks(docs: Iterator[tuple[int, Doc]], size: int) -> Iterator[list[tuple[int, Doc]]]:
    task: list[tuple[int, Doc]] = []
    for item in docs:
        task.append(item)
        if len(task) >= size:
            yield task
            task = []
    if task:
        yield task


def preparing_processes(body_bytes: int) -> int:
    """How many processes prepare a report's lines: none for a small file (starting them costs about a second)
    or below POOL_MIN_CORES cores, else one a core (while other reports run, `_share` may still say none)."""
    cores = os.cpu_count() or 1
    return 0 if body_bytes < POOL_MIN_BYTES or cores < POOL_MIN_CORES else cores


def _share(processes: int, others: int) -> int:
    """Preparing processes (asked again each batch) while `others` reports are processed too (by any server
    process): a share of the cores, none below two. A preparing process costs 25-30 us a line more than the
    worker's thread (pickling, pipes), which only a free core repays (BENCHMARKS.md, sixth round)."""
    return each if (each := processes // (1 + others)) >= 2 or not others else 0


def _others_processing(sessions: sessionmaker[Session], report_id: str, *, stale: timedelta) -> int:
    with sessions() as s:
        return s.execute(select(func.count()).select_from(Report).where(Report.status == "processing",
                         Report.id != report_id, Report.heartbeat_at >= utcnow() - stale)).scalar_one()


def from_csv(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the JSON shape of a report line (SPEC.md): an empty cell is an absent field."""
    return {k: v for k, v in from_csv_row(row).items() if v is not None}


# --- processing --------------------------------------------------------------------------------------


def claim(sessions: sessionmaker[Session], report_id: str, *, stale: timedelta) -> Report | None:
    """Take a report for processing: atomically, so that two workers (two server processes) never
    process one report at once. A report already processing is taken over only when its heartbeat is
    older than `stale` (its worker died)."""
    now = utcnow()
    with sessions.begin() as s:
        taken = s.execute(update(Report).where(
            Report.id == report_id,
            (Report.status == "received") | ((Report.status == "processing") & (Report.heartbeat_at < now - stale)),
        ).values(status="processing", attempts=Report.attempts + 1, heartbeat_at=now,
                 started_at=func.coalesce(Report.started_at, now)))  # fmt: skip
        if taken.rowcount != 1:
            return None
        report = s.get(Report, report_id)
        assert report is not None
        s.expunge(report)
        return report


def process_report(sessions: sessionmaker[Session], cipher: FieldCipher, report_id: str, *, allow_test: bool,
                   principal: Principal, batch: int = BATCH, stale: timedelta = STALE_HEARTBEAT,
                   processes: int | None = None) -> bool:
    """Process (or resume) one report to done, or mark it failed with the reason. False if another
    worker has it. `processes`: how many processes prepare its lines (None: `preparing_processes`)."""
    report = claim(sessions, report_id, stale=stale)
    if report is None:
        return False
    share = None
    if processes is None:
        processes = cores = preparing_processes(report.body_bytes)
        if cores:  # decided again each batch: a report left alone takes every core again
            share = lambda: _share(cores, _others_processing(sessions, report_id, stale=stale))  # noqa: E731
            warm_preparers()
    try:
        _process(sessions, cipher, report, allow_test=allow_test, principal=principal, batch=batch,
                 processes=processes, share=share)
    except Exception as exc:  # noqa: BLE001 - the report says it failed; the server keeps going
        log.exception("report failed", extra={"report_id": report_id})
        with sessions.begin() as s:
            s.execute(update(Report).where(Report.id == report_id).values(
                status="failed", error=f"{type(exc).__name__}: processing stopped at the last committed line",
                finished_at=utcnow()))  # fmt: skip
            record_event(s, principal=principal, action="report:failed", now=utcnow(), details={"report_id": report_id})
            told.report_finished(s, s.get(Report, report_id), now=utcnow())
    return True


def _process(sessions: sessionmaker[Session], cipher: FieldCipher, report: Report, *, allow_test: bool,
             principal: Principal, batch: int, processes: int, share: Callable[[], int] | None = None) -> None:
    """Read and prepare the lines batch by batch while the batches before are planned and written (services.
    report_writer: each in its transaction, in file order), so this thread reads the next one while those wait
    for the database (BENCHMARKS.md, twelfth round). A batch that fails stops the report at the last commit."""
    done_lines = report.lines_read  # committed progress: resume after it
    ends: deque[tuple[int, int]] = deque()  # (line, byte offset after it) of lines read, not yet committed
    consumed = report.bytes_read
    now = utcnow()
    pending: list[Ready | LineError] = []
    refs: set[str] = set()

    def plan(s: Session, b: Batch) -> tuple[list[LineError], Plan]:
        """The batch's reads and decisions (services.bulk.plan_batch), in its transaction."""
        good = [p for p in b.lines if isinstance(p, Ready)]
        errors = [p for p in b.lines if isinstance(p, LineError)]
        return errors, plan_batch(s, cipher, institution_id=report.institution_id, role=principal.role, lines=good,
                                  now=now, source=source)

    def write(s: Session, b: Batch, planned: tuple[list[LineError], Plan]) -> None:
        """The batch's writes, and every line up to its `last_line` recorded as done, in its transaction."""
        errors, plan = planned
        res = write_plan(s, plan, principal=principal, now=now, source=source)
        errs = errors + res.errors
        if errs:
            s.execute(insert(ReportError), [{"report_id": report.id, "line": e.line, "code": e.code,
                                             "detail": e.detail} for e in errs])
        if report.mode == "snapshot":
            named = {p.ref for p in b.lines if p.ref}
            if named:
                s.execute(insert(ReportRef), [{"report_id": report.id, "external_ref": r} for r in named])
        s.execute(update(Report).where(Report.id == report.id).values(
            lines_read=b.last_line, bytes_read=b.bytes_read, accepted=Report.accepted + res.created + res.updated,
            unchanged=Report.unchanged + res.unchanged, rejected=Report.rejected + len(errs),
            heartbeat_at=utcnow()))  # fmt: skip

    def commit(last_line: int) -> None:
        """Hand the pending lines, as done up to `last_line`, to the writer."""
        nonlocal pending, refs, consumed
        while ends and ends[0][0] <= last_line:
            consumed = ends.popleft()[1]
        writer.submit(Batch(pending, last_line, min(consumed, report.body_bytes), frozenset(refs)))
        pending, refs = [], set()

    last_line = done_lines
    source = f"report:{report.id}"
    docs = _docs(_skip(_lines(sessions, cipher, report), done_lines, ends), report.format)
    with BatchWriter(sessions, plan, write, overlap=batches_overlap(sessions)) as writer:  # leaving: all written
        for last_line, item in _prepared(docs, cipher, now=now, allow_test=allow_test, processes=processes,
                                         batch=batch, share=share):  # fmt: skip
            if item is None:
                continue
            ref = item.ref
            if ref is not None and ref in refs:  # the same obligation twice: apply the first batch first
                commit(last_line - 1)  # this line is not in it
            pending.append(item)
            if ref is not None:
                refs.add(ref)
            if len(pending) >= batch:
                commit(last_line)
        commit(last_line)
    _finish(sessions, report, principal)


def _skip(lines: Iterator[tuple[int, bytes]], n: int, ends: deque[tuple[int, int]]) -> Iterator[tuple[int, bytes]]:
    """Lines after the first `n`; appends each one's (number, byte offset after it) to `ends`."""
    pos = 0
    for item in lines:
        pos += len(item[1]) + 1
        if item[0] > n:
            ends.append((item[0], pos))
            yield item


def _finish(sessions: sessionmaker[Session], report: Report, principal: Principal) -> None:
    now = utcnow()
    unreported = unreport_missing(sessions, report, now, principal) if report.mode == "snapshot" else 0
    with sessions.begin() as s:
        r = s.get(Report, report.id)
        assert r is not None
        r.status, r.finished_at, r.unreported = "done", now, unreported
        record_event(s, principal=principal, action="report:processed", now=now,
                     details={"report_id": r.id, "lines": r.lines_read, "accepted": r.accepted,
                              "unchanged": r.unchanged, "rejected": r.rejected, "unreported": unreported})
        told.report_finished(s, r, now=now)


def resumable_reports(session: Session, *, now: datetime, stale: timedelta) -> list[str]:
    """Reports waiting, or processing with a heartbeat older than `stale` (their worker died)."""
    stmt = select(Report.id).where(
        (Report.status == "received") | ((Report.status == "processing") & (Report.heartbeat_at < now - stale))
    ).order_by(Report.received_at)
    return list(session.execute(stmt).scalars())


class ReportWorker:
    """Background thread: processes received reports one at a time. A report left `processing` by a
    killed server (no heartbeat for `stale`) is taken over and resumed after its last committed line."""

    def __init__(self, sessions: sessionmaker[Session], cipher: FieldCipher, *, allow_test: bool,
                 stale: timedelta = STALE_HEARTBEAT, interval: float = 0.5,
                 upload_idle: timedelta = timedelta(minutes=5)) -> None:  # fmt: skip
        self.sessions, self.cipher, self.allow_test = sessions, cipher, allow_test
        self.stale, self.interval, self.upload_idle = stale, interval, upload_idle
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="report-worker", daemon=True)

    def start(self) -> None:
        # The objects a server has made by now (modules, the app, its settings) live as long as it does:
        # frozen, the cyclic collector stops walking them each time a batch's lines fill its youngest
        # generation. Measured: unpickling a batch's prepared lines took 46 us a line beside a heap of a
        # million objects, 4 us with them frozen (BENCHMARKS.md).
        gc.freeze()
        # Each line's objects mostly die young, but a batch keeps 5,000 lines' worth alive and the caches of
        # persons grow: at 700 allocations a collection, the collector took 5-8 us of a line's 55-59 (a lone
        # 165,895-line report, BENCHMARKS.md, eighth round). Rarer young collections; cycles still go.
        raise_gc_thresholds()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def wake(self) -> None:
        self._wake.set()

    def run_pending(self) -> int:
        """Process waiting reports until none is left, in the order received; returns how many this worker
        processed. The list is read again after each report it processes: one received meanwhile (by this
        server process or another, which wakes only its own worker) is taken at once, not at the next poll,
        which left a process idle for up to `interval` with a large file waiting (BENCHMARKS.md, sixteenth
        round)."""
        done = 0
        while not self._stop.is_set():
            took = self._next_report()
            if not took:
                return done
            done += took
        return done

    def _next_report(self) -> int:
        """Process the first waiting report this worker can claim: 1, or 0 if there was none."""
        from register.domain.permission import Role
        from register.storage.institutions import get_institution

        expire_abandoned_uploads(self.sessions, now=utcnow(), idle=self.upload_idle)
        with self.sessions() as s:
            ids = resumable_reports(s, now=utcnow(), stale=self.stale)
        for rid in ids:
            if self._stop.is_set():
                break
            with self.sessions() as s:
                r = s.get(Report, rid)
                inst = get_institution(s, r.institution_id) if r else None
            if r is None or inst is None:
                continue
            principal = Principal(role=Role(inst.role), name=inst.name, institution_id=inst.id)
            if process_report(self.sessions, self.cipher, rid, allow_test=self.allow_test, principal=principal,
                              stale=self.stale):
                return 1
        return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending()
            except Exception:  # noqa: BLE001
                log.exception("report worker pass failed; retrying")
            self._wake.wait(self.interval)
            self._wake.clear()
