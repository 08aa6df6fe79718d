"""Receiving a batch report: the body is stored as it arrives, and no transaction waits on the client.

Each 1 MiB chunk is zstd-compressed and AES-GCM encrypted (bound to report id and chunk index) and
committed on its own, with the report's heartbeat, under status `receiving`; only the last step (status
`received`, size, hash and the access event) makes the report visible to the worker, and only after
that commit does the client get 202. A client that trickles its body holds no database connection and,
on SQLite, no write lock between chunks.

An upload that ends without its last step (the client stopped sending, disconnected, sent too much, or
the server died) expires: its chunks are deleted, its status is `expired` and its Idempotency-Key is
freed, so the same key can be sent again. The server expires its own failed uploads at once; one left
by a dead server is expired by a new upload with the same key, or by the report worker after
`upload_idle_seconds` without a chunk.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import zstandard
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal
from register.errors import Conflict, InvalidInput
from register.services.events import record_event
from register.storage.models import Report, ReportChunk

CHUNK = 1024 * 1024
RunSync = Callable[..., Awaitable[Any]]  # starlette.concurrency.run_in_threadpool: DB work off the event loop


class SameReport(Exception):
    """An idempotent repeat: the first report stands."""

    def __init__(self, report_id: str) -> None:
        self.report_id = report_id


async def receive_report(
    sessions: sessionmaker[Session],
    cipher: FieldCipher,
    *,
    principal: Principal,
    body: AsyncIterator[bytes],
    mode: str,
    fmt: str,
    idempotency_key: str | None,
    now: Callable[[], datetime],
    request_id: str | None,
    run_sync: RunSync,
) -> Report:
    assert principal.institution_id is not None
    existing = None
    if idempotency_key is not None:
        existing = await run_sync(_take_key, sessions, principal.institution_id, idempotency_key)
    if existing is not None:  # only hash the body, to compare it with the first upload's
        digest = hashlib.sha256()
        async for piece in body:
            digest.update(piece)
        if existing.body_sha256 == digest.hexdigest():
            raise SameReport(existing.id)
        raise Conflict("this Idempotency-Key was used for a different body", code="idempotency_conflict")

    report_id = str(uuid.uuid4())
    await run_sync(_insert, sessions, Report(
        id=report_id, institution_id=principal.institution_id, status="receiving", mode=mode, format=fmt,
        idempotency_key=idempotency_key, body_sha256="", body_bytes=0, chunks=0, received_at=now(),
        heartbeat_at=now(),
    ))  # fmt: skip
    try:
        digest, size, chunks = await _store_body(sessions, cipher, report_id, body, now, run_sync)
        if size == 0:
            raise InvalidInput("the report is empty", code="empty_report")
        return await run_sync(_finish, sessions, report_id, digest, size, chunks, principal, now(), request_id)
    except BaseException as exc:  # a timeout, a disconnect, too much, too little: nothing is acknowledged
        reason = getattr(exc, "code", None) or type(exc).__name__
        await run_sync(expire_upload, sessions, report_id, reason=f"upload ended before its last byte ({reason})")
        raise


async def _store_body(sessions: sessionmaker[Session], cipher: FieldCipher, report_id: str,
                      body: AsyncIterator[bytes], now: Callable[[], datetime], run_sync: RunSync
                      ) -> tuple[str, int, int]:  # fmt: skip
    """(sha256, bytes, chunks): the body stored in chunks of at most 1 MiB, each committed on its own."""
    digest = hashlib.sha256()
    size = 0
    idx = 0
    buf = bytearray()

    async def flush(n: int) -> None:
        nonlocal idx
        await run_sync(_store_chunk, sessions, cipher, report_id, idx, bytes(buf[:n]), now())
        idx += 1
        del buf[:n]

    async for piece in body:
        digest.update(piece)
        size += len(piece)
        buf += piece
        while len(buf) >= CHUNK:  # however the body arrives, chunks are at most 1 MiB
            await flush(CHUNK)
    if buf:
        await flush(len(buf))
    return digest.hexdigest(), size, idx


def _take_key(sessions: sessionmaker[Session], institution_id: str, key: str) -> Report | None:
    """The finished report this key names (a repeat), or None when the key is free. An upload still
    `receiving` under the key is expired first: a client sends a key again when its first upload's
    connection failed (a server killed mid-upload leaves one behind), and of two uploads with one key
    only the newer may be acknowledged (the older then ends with 409 `upload_expired`)."""
    with sessions.begin() as s:
        report = s.execute(select(Report).where(Report.institution_id == institution_id,
                                                Report.idempotency_key == key)).scalar_one_or_none()
        if report is None:
            return None
        if report.status == "receiving":
            _expire(s, report.id, reason="replaced by a new upload with the same Idempotency-Key")
            return None
        s.expunge(report)
        return report


def _insert(sessions: sessionmaker[Session], report: Report) -> None:
    try:
        with sessions.begin() as s:
            s.add(report)
    except IntegrityError:
        raise Conflict("another upload with this Idempotency-Key is in progress", code="idempotency_conflict") from None


_ZSTD = b"\x28\xb5\x2f\xfd"  # how a zstd frame starts (RFC 8878); a zlib stream (older chunks) starts 0x78


def seal_chunk(cipher: FieldCipher, report_id: str, idx: int, raw: bytes) -> bytes:
    """A chunk as stored: zstd-compressed (level 1), then encrypted bound to its report and index. zstd, not
    zlib as before: a third of the CPU to compress and to read back, and smaller (BENCHMARKS.md, ingest,
    tenth round). The compressed frame records its size, so reading it back needs no bound of its own."""
    packed = zstandard.ZstdCompressor(level=1).compress(raw)
    return cipher.encrypt(packed, table="report_chunks", column="data", row_id=f"{report_id}:{idx}")


def open_chunk(cipher: FieldCipher, report_id: str, idx: int, blob: bytes) -> bytes:
    """A stored chunk's bytes as received; one stored before zstd (zlib) reads back as well."""
    packed = cipher.decrypt(blob, table="report_chunks", column="data", row_id=f"{report_id}:{idx}")
    return zstandard.ZstdDecompressor().decompress(packed) if packed[:4] == _ZSTD else zlib.decompress(packed)


def _store_chunk(sessions: sessionmaker[Session], cipher: FieldCipher, report_id: str, idx: int, raw: bytes,
                 now: datetime) -> None:
    """Seal and store one chunk, in a thread of the pool: compressing a MiB is milliseconds the event loop,
    which serves every other request of this process, no longer waits."""
    data = seal_chunk(cipher, report_id, idx, raw)
    with sessions.begin() as s:
        alive = s.execute(update(Report).where(Report.id == report_id, Report.status == "receiving")
                          .values(heartbeat_at=now))
        if alive.rowcount != 1:  # expired meanwhile: replaced by a newer upload with its key, or abandoned
            raise Conflict("the upload expired before its last byte; send it again", code="upload_expired")
        s.execute(insert(ReportChunk), [{"report_id": report_id, "idx": idx, "data": data}])


def _finish(sessions: sessionmaker[Session], report_id: str, sha: str, size: int, chunks: int,
            principal: Principal, now: datetime, request_id: str | None) -> Report:  # fmt: skip
    with sessions.begin() as s:
        done = s.execute(update(Report).where(Report.id == report_id, Report.status == "receiving").values(
            status="received", body_sha256=sha, body_bytes=size, chunks=chunks, heartbeat_at=None))  # fmt: skip
        if done.rowcount != 1:  # expired meanwhile: replaced by a newer upload with its key, or abandoned
            raise Conflict("the upload expired before its last byte; send it again", code="upload_expired")
        report = s.get(Report, report_id)
        assert report is not None
        record_event(s, principal=principal, action="report:received", now=now, request_id=request_id,
                     details={"report_id": report_id, "bytes": size, "mode": report.mode, "format": report.format})
        s.flush()
        s.expunge(report)
        return report


def _expire(s: Session, report_id: str, *, reason: str) -> None:
    s.execute(delete(ReportChunk).where(ReportChunk.report_id == report_id))
    s.execute(update(Report).where(Report.id == report_id, Report.status == "receiving").values(
        status="expired", idempotency_key=None, chunks=0, error=reason, heartbeat_at=None))  # fmt: skip


def expire_upload(sessions: sessionmaker[Session], report_id: str, *, reason: str) -> None:
    with sessions.begin() as s:
        _expire(s, report_id, reason=reason)


def expire_abandoned_uploads(sessions: sessionmaker[Session], *, now: datetime, idle: timedelta) -> int:
    """Expire uploads with no chunk for `idle` (their server died while receiving); returns how many."""
    with sessions() as s:
        ids = list(s.execute(select(Report.id).where(Report.status == "receiving",
                                                     Report.heartbeat_at < now - idle)).scalars())
    for report_id in ids:
        expire_upload(sessions, report_id, reason="abandoned: no chunk arrived in time")
    return len(ids)
