"""A batch report's body, from a file or from an iterator, streamed with progress callbacks.

Sources:
- a path (`str` or `os.PathLike`): read in 1 MiB chunks;
- `bytes`, or a binary file object (`open(path, "rb")`);
- an iterable of lines: `ReportLine` models or mappings (each becomes one NDJSON line), or `str`/`bytes`
  lines (sent as they are, with a newline added if missing); the async client also takes async
  iterables.

Without `format`, a path's suffix decides (`.csv` is CSV; `.ndjson`, `.jsonl`, `.json` are NDJSON);
otherwise the first line does, for a path, bytes or a seekable file: `{` starts NDJSON, a row of column
names is a CSV header, and anything else is refused (InvalidRequest) rather than sent to be rejected
line by line. An iterable of lines is NDJSON.

A body can be sent again (and so the upload retried, given an Idempotency-Key) when it comes from a
path, bytes or a seekable file; an iterator is read once and never retried.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from register_client import _requests as rq
from register_client._exceptions import InvalidRequest

CHUNK = 1024 * 1024
LINE_BATCH = 64 * 1024  # iterator lines are sent in pieces of about this size

Line = rq.ReportLine | Mapping[str, Any] | str | bytes
ReportSource = str | os.PathLike[str] | bytes | IO[bytes] | Iterable[Line] | AsyncIterable[Line]


@dataclass(frozen=True)
class UploadProgress:
    """Passed to `on_progress` after each piece of the body is handed to the connection."""

    bytes_sent: int
    total_bytes: int | None  # None for iterators: the size is not known in advance
    lines_sent: int

    @property
    def fraction(self) -> float | None:
        return self.bytes_sent / self.total_bytes if self.total_bytes else None


ProgressCallback = Callable[[UploadProgress], None]

SUFFIXES = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson"}
_CSV_HEADER = re.compile(r'^"?[A-Za-z_][A-Za-z0-9_]*"?(\s*,\s*"?[A-Za-z_][A-Za-z0-9_]*"?)+,?$')


def sniff_format(head: bytes) -> str | None:
    """"ndjson" or "csv" by the first non-blank line of `head`, or None when it is neither a JSON
    object nor a CSV header (a body of blank lines is "ndjson": the register refuses it as empty)."""
    for raw in head.removeprefix(b"\xef\xbb\xbf").splitlines():
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        if line.startswith("{"):
            return "ndjson"
        return "csv" if _CSV_HEADER.match(line) else None
    return "ndjson"  # nothing but blank lines: the register answers that the report is empty


def guess_format(path: str | os.PathLike[str]) -> str | None:
    """A file's format by its suffix, else by its first line (see `sniff_format`)."""
    fmt = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        with open(path, "rb") as f:
            fmt = sniff_format(f.read(CHUNK))
    return fmt


def encode_line(item: Line) -> bytes:
    if isinstance(item, BaseModel):
        data = item.model_dump(mode="json", exclude_none=True)
    elif isinstance(item, Mapping):
        data = dict(item)
    else:
        raw = item.encode() if isinstance(item, str) else bytes(item)
        return raw if raw.endswith(b"\n") else raw + b"\n"
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class ReportBody:
    """What `upload_report` sends: `chunks()` yields the body, reporting progress as it goes."""

    def __init__(self, source: ReportSource, *, fmt: str | None, on_progress: ProgressCallback | None) -> None:
        self.source = source
        self.on_progress = on_progress
        self.path: Path | None = Path(source) if isinstance(source, (str, os.PathLike)) else None
        self.total: int | None = None
        self.replayable = False
        guessed: str | None = "ndjson"  # an iterable of lines, or a file that cannot be read twice
        if self.path is not None:
            self.total, self.replayable = self.path.stat().st_size, True
            guessed = guess_format(self.path) if fmt is None else fmt
        elif isinstance(source, (bytes, bytearray)):
            self.total, self.replayable = len(source), True
            guessed = sniff_format(bytes(source[:CHUNK]))
        elif hasattr(source, "read") and _seekable(source):
            self.replayable = True
            self._start = source.tell()
            if fmt is None:
                guessed = sniff_format(source.read(CHUNK))
            self.total = source.seek(0, os.SEEK_END) - self._start
            source.seek(self._start)
        if fmt is None and guessed is None:
            where = f"{self.path.name}: " if self.path is not None else ""
            raise InvalidRequest(f"{where}cannot tell whether the report is CSV or NDJSON: its first line is neither "
                                 "a JSON object nor a CSV header; pass format='csv' or format='ndjson'")
        self.fmt: str = fmt or guessed or "ndjson"

    def _pieces(self) -> Iterator[bytes]:
        source = self.source
        if self.path is not None:
            with self.path.open("rb") as f:
                yield from iter(lambda: f.read(CHUNK), b"")
        elif isinstance(source, (bytes, bytearray)):
            for i in range(0, len(source), CHUNK):
                yield bytes(source[i : i + CHUNK])
        elif hasattr(source, "read"):
            if self.replayable:
                source.seek(self._start)
            yield from iter(lambda: source.read(CHUNK), b"")
        elif isinstance(source, Iterable):
            yield from _batched(encode_line(item) for item in source)
        else:
            raise TypeError(f"cannot report from {type(source).__name__}; give a path, bytes, a file or lines")

    def chunks(self) -> Iterator[bytes]:
        sent = lines = 0
        for piece in self._pieces():
            sent += len(piece)
            lines += piece.count(b"\n")
            yield piece
            if self.on_progress is not None:
                self.on_progress(UploadProgress(sent, self.total, lines))

    async def achunks(self) -> AsyncIterator[bytes]:
        if not isinstance(self.source, AsyncIterable):
            for piece in self.chunks():
                yield piece
            return
        sent = lines = 0
        batch: list[bytes] = []
        size = 0
        async for item in self.source:
            line = encode_line(item)
            batch.append(line)
            size += len(line)
            if size >= LINE_BATCH:
                piece, batch, size = b"".join(batch), [], 0
                sent, lines = sent + len(piece), lines + piece.count(b"\n")
                yield piece
                if self.on_progress is not None:
                    self.on_progress(UploadProgress(sent, None, lines))
        if batch:
            piece = b"".join(batch)
            sent, lines = sent + len(piece), lines + piece.count(b"\n")
            yield piece
            if self.on_progress is not None:
                self.on_progress(UploadProgress(sent, None, lines))


def _seekable(f: Any) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _batched(lines: Iterable[bytes]) -> Iterator[bytes]:
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= LINE_BATCH:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)
