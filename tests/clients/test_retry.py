"""Retries: safe calls are tried again after connection errors and 429/5xx, with growing waits; a
call that could act twice (a POST without a key that makes a repeat land once, an exposure query) never is.

`Flaky` sits between the SDK and the app and fails the first requests in a chosen way, then forwards:
"refused" (no connection, the app never sees it), "503" (a proxy's answer, the app never sees it) and
"lost" (the app does the work, but the answer is lost and a 503 comes back instead).
"""

from __future__ import annotations

import time

import httpx
import pytest
from register_client import (
    AsyncRegisterClient,
    ConnectError,
    ConsentMissing,
    RegisterClient,
    Retry,
    RetryNotice,
    ServiceUnavailable,
    TransportError,
)
from sqlalchemy import func, select

from register.storage.models import Consent as ConsentRow
from register.storage.models import Report as ReportRow
from tests.clients.conftest import BASE_URL, AsyncAppTransport, ndjson, report_line
from tests.clients.test_sdk import NO_CONSENT
from tests.factories import in_days, new_ref, obligation_body

UNAVAILABLE = {"type": "about:blank", "title": "Service unavailable", "status": 503,
               "detail": "the gateway timed out", "code": "unavailable"}


SWITCHING = {"type": "about:blank", "title": "Service unavailable", "status": 503,
             "detail": "the database is not available", "code": "database_unavailable"}


def _fail(request: httpx.Request, how: str) -> httpx.Response:
    if how == "refused":
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
    if how == "switching":  # the register's own answer while its database fails over
        return httpx.Response(503, json=SWITCHING, headers={"Content-Type": "application/problem+json",
                                                            "Retry-After": "2"})
    return httpx.Response(503, json=UNAVAILABLE, headers={"Content-Type": "application/problem+json"})


class Flaky(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, failures: list[str]) -> None:
        self.inner, self.failures = inner, list(failures)
        self.sent: list[tuple[float, str, str, int]] = []  # (time, method, path, body bytes)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.sent.append((time.monotonic(), request.method, request.url.path, len(body)))
        if not self.failures:
            return self.inner.handle_request(request)
        how = self.failures.pop(0)
        if how == "lost":
            self.inner.handle_request(request).read()
            how = "503"
        return _fail(request, how)

    def gaps(self) -> list[float]:
        return [b[0] - a[0] for a, b in zip(self.sent, self.sent[1:], strict=False)]


class AsyncFlaky(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, failures: list[str]) -> None:
        self.inner, self.failures, self.sent = inner, list(failures), 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent += 1
        if not self.failures:
            return await self.inner.handle_async_request(request)
        return _fail(request, self.failures.pop(0))


def reports_with_key(app, key: str) -> int:
    with app.state.register.sessions() as s:
        return s.execute(select(func.count()).select_from(ReportRow).where(ReportRow.idempotency_key == key)).scalar()


STEADY = Retry(attempts=4, backoff=0.05, jitter=False)


class TestIdempotentCalls:
    def test_get_retries_503_with_growing_waits(self, transport, lender):
        ref = new_ref()
        RegisterClient(BASE_URL, lender.token, transport=transport).put_obligation(ref, obligation_body())
        flaky = Flaky(transport, ["503", "503", "503"])
        with RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk:
            assert sdk.get_obligation(ref).external_ref == ref
        assert len(flaky.sent) == 4
        gaps = flaky.gaps()
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2  # 0.05 s, doubling

    def test_get_retries_refused_connections(self, transport, lender):
        flaky = Flaky(transport, ["refused", "refused"])
        with RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk:
            assert list(sdk.list_obligations()) == []
        assert len(flaky.sent) == 3

    def test_gives_up_after_the_last_attempt(self, transport, lender):
        flaky = Flaky(transport, ["503"] * 4)
        with (RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk,
              pytest.raises(ServiceUnavailable) as err):
            sdk.get_report("nothing")
        assert len(flaky.sent) == 4 and err.value.detail == "the gateway timed out"

    def test_put_is_repeatable(self, transport, lender):
        flaky = Flaky(transport, ["lost"])
        with RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk:
            ob = sdk.put_obligation(new_ref(), obligation_body())
        assert ob.version == 1 and len(flaky.sent) == 2  # the repeat was an idempotent 200

    def test_an_attested_consent_whose_answer_was_lost_is_recorded_once(self, app, transport, lender, person):
        """Its evidence reference names one consent: the repeat answers 200 with the consent the lost call made."""
        flaky = Flaky(transport, ["lost"])
        with RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk:
            consent = sdk.attest_consent({
                "country": "SE", "national_id": person.nid, "purpose": "credit_application", "expires_at": in_days(28),
                "evidence": {"method": "signed_application", "reference": "APP-LOST-1", "signed_at": in_days(-1),
                             "document_sha256": "ab" * 32}})
        assert len(flaky.sent) == 2
        with app.state.register.sessions() as s:
            ids = s.execute(select(ConsentRow.id).where(ConsentRow.institution_id == lender.id)).scalars().all()
        assert ids == [consent.id]

    def test_server_down_is_retried_then_a_connect_error(self, closed_port):
        with RegisterClient(f"http://127.0.0.1:{closed_port}", "rgt_x", retry=Retry(attempts=3, backoff=0.05,
                                                                                   jitter=False)) as sdk:
            started = time.monotonic()
            with pytest.raises(ConnectError):
                sdk.get_obligation("LOAN-1")
        assert time.monotonic() - started >= 0.15  # waited 0.05 + 0.1 between three attempts


class TestOutlastingAFailover:
    """A 503 with Retry-After (the register's `database_unavailable` while its primary is replaced, about
    15 s) is retried past `attempts` for `failover` seconds of waits: 30 by default."""

    def test_the_default_waits_out_30_seconds_of_retry_after(self):
        retry = Retry()
        attempts = retry.attempts_for(503, 2.0)
        assert sum(retry.delay(n, 2.0) for n in range(1, attempts)) >= 30
        assert retry.attempts_for(503, None) == retry.attempts  # a proxy's bare 503: the usual budget
        assert retry.attempts_for(502, 2.0) == retry.attempts
        assert Retry(attempts=1).attempts_for(503, 2.0) == 1 and Retry(failover=0).attempts_for(503, 2.0) == 4

    def test_a_safe_call_is_retried_through_the_switch(self, transport, lender):
        flaky = Flaky(transport, ["switching"] * 3)
        notices: list[RetryNotice] = []
        quick = Retry(attempts=2, max_delay=0.01, failover=6)  # Retry-After 2: 6 s of waits, 4 attempts
        with RegisterClient(BASE_URL, lender.token, transport=flaky, retry=quick, on_retry=notices.append) as sdk:
            assert list(sdk.list_obligations()) == []
        assert len(flaky.sent) == 4 and [n.attempts for n in notices] == [4, 4, 4]

    def test_gives_up_once_the_failover_budget_is_spent(self, transport, lender):
        flaky = Flaky(transport, ["switching"] * 5)
        with (RegisterClient(BASE_URL, lender.token, transport=flaky,
                             retry=Retry(attempts=2, max_delay=0.01, failover=6)) as sdk,
              pytest.raises(ServiceUnavailable) as err):
            sdk.list_consents()
        assert len(flaky.sent) == 4 and err.value.code == "database_unavailable"

    def test_an_unsafe_call_is_still_never_retried(self, transport, lender, person):
        flaky = Flaky(transport, ["switching"])
        with (RegisterClient(BASE_URL, lender.token, transport=flaky) as sdk, pytest.raises(ServiceUnavailable)):
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                               consent_id=NO_CONSENT)
        assert len(flaky.sent) == 1


class TestRetryNotices:
    """`on_retry` hears of each retry before its wait, so a CLI can say so instead of seeming to hang."""

    def test_each_retry_is_announced(self, transport, lender):
        flaky = Flaky(transport, ["503", "refused"])
        notices: list[RetryNotice] = []
        with RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY, on_retry=notices.append) as sdk:
            sdk.list_consents()
        assert [(n.attempt, n.attempts, n.method, n.path) for n in notices] == [
            (2, 4, "GET", "/v1/consents"), (3, 4, "GET", "/v1/consents")]
        assert notices[0].reason == "HTTP 503 Service Unavailable" and notices[0].delay == 0.05
        assert notices[1].reason == "[Errno 111] Connection refused" and notices[1].delay == 0.1

    def test_a_call_that_is_not_retried_is_not_announced(self, transport, lender, person):
        notices: list[RetryNotice] = []
        with (RegisterClient(BASE_URL, lender.token, transport=Flaky(transport, ["503"]), retry=STEADY,
                             on_retry=notices.append) as sdk, pytest.raises(ServiceUnavailable)):
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                               consent_id=NO_CONSENT)
        assert notices == []

    def test_a_request_this_side_cannot_send_is_not_retried(self, lender):
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            raise httpx.LocalProtocolError("Illegal header value")

        with (RegisterClient(BASE_URL, lender.token, transport=httpx.MockTransport(handler), retry=STEADY) as sdk,
              pytest.raises(TransportError, match="Illegal header value")):
            sdk.list_consents()
        assert len(sent) == 1  # the same request would fail the same way


class TestReportUploads:
    def test_without_a_key_is_never_retried(self, app, transport, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line()]))
        flaky = Flaky(transport, ["lost"])
        with (RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk,
              pytest.raises(ServiceUnavailable)):
            sdk.upload_report(path)
        assert [(m, p) for _, m, p, _ in flaky.sent] == [("POST", "/v1/reports")]

    def test_with_a_key_is_retried_and_stored_once(self, app, transport, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line() for _ in range(3)]))
        key = new_ref()
        flaky = Flaky(transport, ["refused", "lost"])
        with RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk:
            report = sdk.upload_report(path, idempotency_key=key)
            assert sdk.wait_for_report(report.id).accepted == 3
        posts = [n for _, method, _, n in flaky.sent if method == "POST"]
        assert posts == [path.stat().st_size] * 3  # the whole file each time
        assert reports_with_key(app, key) == 1  # the lost one, returned again for the same key

    def test_an_iterator_is_read_once_so_never_retried(self, transport, lender):
        flaky = Flaky(transport, ["503"])
        with (RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk,
              pytest.raises(ServiceUnavailable)):
            sdk.upload_report(iter([report_line()]), idempotency_key=new_ref())
        assert len(flaky.sent) == 1

    def test_exposure_is_never_retried(self, transport, lender, person):
        flaky = Flaky(transport, ["lost"])
        with (RegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk,
              pytest.raises(ServiceUnavailable)):
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                               consent_id=NO_CONSENT)
        assert len(flaky.sent) == 1  # the person's access log shows one query, not four


@pytest.mark.anyio
class TestAsync:
    async def test_get_retries(self, app, lender):
        flaky = AsyncFlaky(AsyncAppTransport(app), ["refused", "503"])
        async with AsyncRegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk:
            assert await sdk.list_consents() == []
        assert flaky.sent == 3

    async def test_post_without_key_is_not_retried(self, app, lender, person):
        flaky = AsyncFlaky(AsyncAppTransport(app), ["refused"])
        async with AsyncRegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY) as sdk:
            with pytest.raises(ConnectError):
                await sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                         consent_id=NO_CONSENT)
            with pytest.raises(ConsentMissing):  # the next call goes through
                await sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                         consent_id=NO_CONSENT)
        assert flaky.sent == 2

    async def test_the_async_client_announces_too(self, app, lender):
        notices: list[RetryNotice] = []
        flaky = AsyncFlaky(AsyncAppTransport(app), ["503"])
        async with AsyncRegisterClient(BASE_URL, lender.token, transport=flaky, retry=STEADY,
                                       on_retry=notices.append) as sdk:
            assert await sdk.list_consents() == []
        assert [(n.attempt, n.reason) for n in notices] == [(2, "HTTP 503 Service Unavailable")]
