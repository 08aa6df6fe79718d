"""uvicorn's HTTP protocol with a deadline on a request's headers.

uvicorn closes idle keep-alive connections and the register puts a deadline on each piece of a body
(`register.api.middleware.timed_receive`), but nothing in uvicorn bounds how long a client may take to
send its headers: a client that sends one header line every few seconds keeps a connection (and a
request's worth of memory) forever. Here the headers of each request must be complete within
`REGISTER_HEADER_TIMEOUT_SECONDS` of the connection opening or the request starting; else the client
gets 408 and the connection is closed.

It also sends a response's head and body in one write: uvicorn writes each ASGI message as it comes, so
an answer sent as a start and a body (every JSON answer) went out as two sends, two TCP segments and two
wake-ups of the client, and the sends were an eighth of a server process's time holding the GIL under
load (BENCHMARKS.md). `CorkedTransport` keeps what is written in one turn of the event loop and sends it
at the end of that turn, or at once when the connection is closed.
"""

from __future__ import annotations

import asyncio
from functools import cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from register.config import Settings

TIMEOUT_BODY = b"the request's headers did not arrive in time"


@cache
def header_timeout() -> float:
    """Read once per process from the same REGISTER_* environment as the app (worker processes too)."""
    return Settings().header_timeout_seconds


class CorkedTransport:
    """`transport`, with what is written in one turn of the event loop sent as one write at the end of the
    turn (or before a close), or at once past HOLD bytes: a response that streams many pieces in one turn
    is not kept whole in memory, and uvicorn's flow control (the transport pausing it) still works.
    Everything else is the transport's own."""

    HOLD = 64 * 1024

    __slots__ = ("_transport", "_loop", "_held", "_size")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop, self._held, self._size = transport, loop, None, 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is None:
            self._held, self._size = [data], len(data)
            self._loop.call_soon(self._flush)
        else:
            self._held.append(data)
            self._size += len(data)
        if self._size > self.HOLD:
            self._flush()

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + (self._size if self._held is not None else 0)

    def __getattr__(self, name: str) -> object:  # is_closing, get_extra_info, pause_reading, ...
        return getattr(self._transport, name)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(header_timeout(), self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # closed already, or a request is being answered (its body has its own deadline)
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(TIMEOUT_BODY), TIMEOUT_BODY)
        )
        self.transport.close()
