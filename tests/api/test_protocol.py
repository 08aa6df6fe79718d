"""The server's HTTP protocol (register/api/protocol.py) sends a response's head and body as one write, and
loses nothing it was given: a streamed response's pieces go out as they come, and a close sends what is
held first. Driven as uvicorn drives it, on a transport that records what reaches the socket."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.server import ServerState

from register.api.protocol import HeaderTimeoutProtocol


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(app, request: bytes) -> RecordingTransport:  # noqa: ANN001
    config = uvicorn.Config(app=app, http=HeaderTimeoutProtocol, log_config=None, lifespan="off")
    config.load()
    protocol = HeaderTimeoutProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    async with asyncio.timeout(5):  # the response's task, then the held write's flush (a turn later)
        while protocol.cycle is None or not protocol.cycle.response_complete:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


async def json_answer(scope, receive, send) -> None:  # noqa: ANN001
    body = b'{"total": 1}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def streamed(scope, receive, send) -> None:  # noqa: ANN001
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for piece in (b"first ", b"second ", b"third"):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        await asyncio.sleep(0.01)  # the next piece is not ready yet: this one must not wait for it
    await send({"type": "http.response.body", "body": b""})


async def streamed_in_one_turn(scope, receive, send) -> None:  # noqa: ANN001
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for _ in range(100):  # 1 MB, nothing awaited between the pieces
        await send({"type": "http.response.body", "body": b"x" * 10_000, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


REQUEST = b"GET / HTTP/1.1\r\nHost: register\r\n\r\n"


def test_an_answer_s_head_and_body_reach_the_socket_in_one_write():
    transport = asyncio.run(answer(json_answer, REQUEST))
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b'{"total": 1}'


def test_a_streamed_answer_s_pieces_go_out_as_they_come():
    transport = asyncio.run(answer(streamed, REQUEST))
    sent = b"".join(transport.writes)
    assert b"first " in sent and b"second " in sent and sent.endswith(b"0\r\n\r\n")  # chunked, complete
    # each piece was sent before the app made the next one (the sleep between them ends a loop turn)
    assert len(transport.writes) >= 3


def test_what_is_held_stays_small_when_a_response_streams_many_pieces_in_one_turn():
    transport = asyncio.run(answer(streamed_in_one_turn, REQUEST))
    assert sum(len(w) for w in transport.writes) > 1_000_000  # all of it sent
    assert max(len(w) for w in transport.writes) <= 64 * 1024 + 10_100  # never the whole response in one hold


def test_a_close_sends_what_is_held_first():
    transport = asyncio.run(answer(json_answer, b"GET / HTTP/1.1\r\nHost: register\r\nConnection: close\r\n\r\n"))
    assert transport.closed
    assert b'{"total": 1}' in b"".join(transport.writes)  # written before the close, not dropped
