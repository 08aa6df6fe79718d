"""The SDK and CLI against the real app, in-process, on both databases.

The app runs with its background report worker off (tests/conftest.py), so `AppTransport` stands in
for it: after a batch report is accepted it processes what is waiting, as the worker would within a
second. Everything else goes to the app untouched, once h11 has checked it as a real connection would.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import h11
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from register_client import AsyncRegisterClient, RegisterClient, Retry

from register.services.reports import ReportWorker
from tests.factories import (
    Inst,
    Person,
    debtor,
    make_person,
    new_ref,
    obligation_body,
)

BASE_URL = "http://register.test"
FAST = Retry(attempts=4, backoff=0.01)  # real retries, short waits


def process_reports(app: FastAPI) -> None:
    state = app.state.register
    ReportWorker(state.sessions, state.cipher, allow_test=state.settings.accept_test_identities).run_pending()


def check_on_the_wire(request: httpx.Request) -> None:
    """Refuse what httpx's HTTP/1.1 layer (h11) refuses before a request leaves, e.g. a header value with
    a trailing \\r: in-process there is no wire, and the app would be handed a request no real connection
    could carry."""
    try:
        h11.Request(method=request.method, target=request.url.raw_path, headers=list(request.headers.raw))
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc), request=request) from None


def _is_report_upload(request: httpx.Request, response: httpx.Response) -> bool:
    return request.method == "POST" and request.url.path == "/v1/reports" and response.status_code < 300


class AppTransport(httpx.BaseTransport):
    """The app in-process (the TestClient's own transport), plus the report worker's work."""

    def __init__(self, client: TestClient, app: FastAPI) -> None:
        self.inner = client._transport  # the seam starlette's TestClient itself sends through
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_on_the_wire(request)
        response = self.inner.handle_request(request)
        if _is_report_upload(request, response):
            response.read()
            process_reports(self.app)
        return response


class AsyncAppTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_on_the_wire(request)
        response = await self.inner.handle_async_request(request)
        if _is_report_upload(request, response):
            await response.aread()
            process_reports(self.app)
        return response


@pytest.fixture
def transport(client: TestClient, app: FastAPI) -> AppTransport:
    return AppTransport(client, app)


@pytest.fixture
def sdk(transport: AppTransport, lender: Inst) -> Iterator[RegisterClient]:
    with RegisterClient(BASE_URL, lender.token, transport=transport, retry=FAST) as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def async_client(app: FastAPI, token: str | None, **kw) -> AsyncRegisterClient:
    kw.setdefault("retry", FAST)
    return AsyncRegisterClient(BASE_URL, token, transport=AsyncAppTransport(app), **kw)


@pytest.fixture
def person(client: TestClient, data_dir) -> Person:
    return make_person(client, data_dir)


def consumer_token(person: Person) -> str:
    return person.headers["Authorization"].removeprefix("Bearer ")


def report_line(person: Person | None = None, **overrides) -> dict:
    body = obligation_body(debtors=[debtor(person)]) if person else obligation_body()
    return {**body, "external_ref": new_ref(), **overrides}


def ndjson(lines: list[dict | str]) -> str:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)


def invalid_national_id(valid: str) -> str:
    """The same number with its check digit changed."""
    return valid[:-1] + str((int(valid[-1]) + 1) % 10)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused, as when the register is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DISPUTE_TEXT = "I paid this card in full on 2 November; my bank statement shows it."


def open_dispute(client: TestClient, person: Person, line_id: str, *, reason: str = "repaid",
                 text: str = DISPUTE_TEXT) -> dict:
    """The person disputes one of their lines (the SDK speaks the creditor's side only)."""
    r = client.post("/v1/me/disputes", json={"obligation": line_id, "reason": reason, "text": text},
                    headers=person.headers)
    assert r.status_code == 201, r.text
    return r.json()


def set_credit_ban(client: TestClient, person: Person, reason: str = "identity_theft") -> dict:
    r = client.put("/v1/me/credit-ban", json={"reason": reason}, headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()


