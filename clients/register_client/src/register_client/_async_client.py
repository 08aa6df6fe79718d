"""The asyncio client: the same methods as `RegisterClient`, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, datetime
from typing import Any, Self, TypeVar

import httpx

from register_client import _calls as c
from register_client import _events as ev
from register_client import _models as m
from register_client import _requests as rq
from register_client._base import BaseClient
from register_client._retry import Retry, RetryHook
from register_client._upload import ProgressCallback, ReportBody, ReportSource

T = TypeVar("T")


class AsyncRegisterClient(BaseClient):
    """The register's API for institutions (and, with their tokens, for the operator, regulators and
    consumers).

    `transport` is the seam for tests: any `httpx.AsyncBaseTransport`, e.g. `httpx.ASGITransport(app=app)`.
    Use it as an async context manager, or call `aclose()`.
    `on_retry` is called with a `RetryNotice` before each retry's wait (see `register_client._retry`).
    Sign in with `token` (an `rgt_` token), or with `auth=PrivateKeyJWT(...)` (`register_client.keys`): a
    key pair, from which the client gets and refreshes short-lived access tokens itself.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
        user_agent: str | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        super().__init__(base_url, token, retry=retry, headers=headers, user_agent=user_agent, on_retry=on_retry,
                         auth=auth)
        self._http = httpx.AsyncClient(transport=transport, **self._http_options(timeout))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- plumbing ---------------------------------------------------------------------------------

    async def _send(self, call: c.Call[Any], *, body: ReportBody | None = None, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            content = body.achunks() if body is not None else None
            request = self._http.build_request(call.method, call.path, params=call.params or None, json=call.json,
                                               content=content, headers=call.headers)
            replayable = body is None or body.replayable
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self._retry_delay(call, attempt, replayable=replayable, error=exc)
                if delay is None:
                    raise self._transport_error(exc, self.base_url) from None
                await asyncio.sleep(delay)
                continue
            delay = self._retry_delay(call, attempt, replayable=replayable, response=response)
            if delay is None:
                return response
            await response.aclose()
            await asyncio.sleep(delay)

    async def _call(self, call: c.Call[T]) -> T:
        return self._read(call, await self._send(call))

    async def _pages(self, page: Callable[[str | None], c.Call[Any]]) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            result = await self._call(page(cursor))
            for item in result.items:
                yield item
            cursor = result.next_cursor
            if not cursor:
                return

    # --- institutions -----------------------------------------------------------------------------

    async def create_institution(
        self, *, name: str, role: rq.InstitutionRole, org_number: str | None = None, country: str | None = None,
        contact: rq.Contact | Mapping[str, Any] | None = None,
    ) -> m.InstitutionCreated:
        """Operator only. The answer's `token` is shown once. `contact` is how a person reaches it about a debt."""
        body = c.build(rq.InstitutionCreate, name=name, role=role, org_number=org_number, country=country,
                       contact=contact)
        return await self._call(c.create_institution(body))

    async def list_institutions(self) -> list[m.Institution]:
        return (await self._call(c.list_institutions())).items

    # --- obligations ------------------------------------------------------------------------------

    async def put_obligation(
        self, external_ref: str, report: rq.ObligationReport | Mapping[str, Any], *, if_match: str | None = None
    ) -> m.Obligation:
        """Report the state of one debt. Raises StaleUpdate for an older `as_of` than the stored one."""
        return await self._call(c.put_obligation(external_ref, c.coerce(rq.ObligationReport, report), if_match))

    async def get_obligation(self, external_ref: str) -> m.Obligation:
        return await self._call(c.get_obligation(external_ref))

    async def obligation_history(self, external_ref: str) -> m.ObligationHistory:
        return await self._call(c.obligation_history(external_ref))

    def list_obligations(
        self, *, status: rq.Status | None = None, updated_since: datetime | None = None, page_size: int = 100
    ) -> AsyncIterator[m.Obligation]:
        """Every live obligation of this institution, oldest change first, fetched a page at a time."""
        return self._pages(lambda cursor: c.obligations_page(status=status, updated_since=updated_since,
                                                             cursor=cursor, limit=page_size))

    async def obligations_page(
        self, *, status: rq.Status | None = None, updated_since: datetime | None = None, cursor: str | None = None,
        limit: int = 100,
    ) -> m.ObligationPage:
        """One page of `list_obligations`, from `cursor` (a page's `next_cursor`; None: the start). Its
        `next_cursor` is None on the last page, else where to go on, now or in a later run."""
        return await self._call(c.obligations_page(status=status, updated_since=updated_since, cursor=cursor,
                                                   limit=limit))

    async def retract_obligation(self, external_ref: str, *, reason: str, if_match: str | None = None) -> m.Obligation:
        return await self._call(c.retract_obligation(external_ref, reason, if_match))

    # --- batch reports ----------------------------------------------------------------------------

    async def upload_report(
        self,
        source: ReportSource,
        *,
        mode: str = "delta",
        format: str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> m.Report:
        """Send a batch report (see `register_client._upload` for the sources). Returns once the register
        has stored it durably; processing follows in the background (`wait_for_report`)."""
        body = ReportBody(source, fmt=format, on_progress=on_progress)
        call = c.post_report(mode=mode, fmt=body.fmt, idempotency_key=idempotency_key)
        return self._read_report(call, await self._send(call, body=body))

    async def get_report(self, report_id: str) -> m.Report:
        return await self._call(c.get_report(report_id))

    async def wait_for_report(
        self,
        report_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        on_progress: Callable[[m.Report], None] | None = None,
    ) -> m.Report:
        """Poll until the report is done or failed; `on_progress` sees every status. Raises TimeoutError
        (the builtin) after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            report = await self.get_report(report_id)
            if on_progress is not None:
                on_progress(report)
            if report.finished:
                return report
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"report {report_id} is still {report.status} after {timeout} s")
            await asyncio.sleep(poll_interval)

    async def report_errors(self, report_id: str) -> AsyncIterator[m.ReportLineError]:
        """Every rejected line of a report, streamed."""
        call = c.report_errors(report_id)
        response = await self._send(call, stream=True)
        try:
            if response.is_error:
                await response.aread()
                self._read(call, response)
            async for line in response.aiter_lines():
                if line.strip():
                    yield self._read_line(call, line)
        finally:
            await response.aclose()

    # --- consents ---------------------------------------------------------------------------------

    async def list_consents(self) -> list[m.Consent]:
        """Institutions: the consents granted to it (identities masked). Consumers: their own."""
        return (await self._call(c.list_consents())).items

    async def attest_consent(self, consent: rq.AttestedConsent | Mapping[str, Any]) -> m.Consent:
        """Record a consent your institution collected itself. `evidence.reference` names one consent: sent
        again for the same person and purpose, the consent recorded first comes back as it stands (so the
        call is retried safely); for another person or purpose, `ReferenceReused`."""
        return await self._call(c.attest_consent(c.coerce(rq.AttestedConsent, consent)))

    async def grant_consent(self, consent: rq.ConsentGrant | Mapping[str, Any]) -> m.Consent:
        """Consumers only."""
        return await self._call(c.grant_consent(c.coerce(rq.ConsentGrant, consent)))

    async def revoke_consent(self, consent_id: str) -> m.Consent:
        """Consumers only."""
        return await self._call(c.revoke_consent(consent_id))

    # --- disputes --------------------------------------------------------------------------------

    async def disputes(self, *, state: rq.DisputeState | None = None) -> list[m.Dispute]:
        """Lenders and collectors: disputes on this institution's lines, earliest deadline first, with the
        person's words. `state="open"` includes overdue ones; `"overdue"` is only those past their deadline."""
        return (await self._call(c.list_disputes(state))).items

    async def dispute(self, dispute_id: str) -> m.Dispute:
        return await self._call(c.get_dispute(dispute_id))

    async def answer_dispute(self, dispute_id: str, *, outcome: rq.DisputeOutcome, explanation: str) -> m.Dispute:
        """`corrected` (report the corrected line too) or `upheld`; the person reads `explanation`. Raises
        DisputeClosed when it is no longer open. Never retried: if the connection drops, `dispute()` tells
        whether the answer was taken. (A report naming the dispute in `corrects_dispute` closes it as well.)"""
        body = c.build(rq.DisputeAnswer, outcome=outcome, explanation=explanation)
        return await self._call(c.answer_dispute(dispute_id, body))

    # --- events and webhooks ----------------------------------------------------------------------

    async def events_page(self, *, after: int = 0, limit: int = 100) -> ev.EventPage:
        """Lenders and collectors: the changes that concern this institution after `after` (a `seq`)."""
        return await self._call(c.list_events(after, limit))

    async def iter_events(self, *, after: int = 0, page_size: int = 100, follow: bool = False,
                          interval: float = 5.0) -> AsyncIterator[ev.Event]:
        """Every event after `after`, oldest first (see RegisterClient.iter_events)."""
        while True:
            page = await self.events_page(after=after, limit=page_size)
            for item in page.items:
                yield item
            after = page.next_after
            if len(page.items) < page_size:
                if not follow:
                    return
                await asyncio.sleep(interval)

    async def create_webhook(self, *, url: str, events: list[str]) -> ev.WebhookSecret:
        """Register an endpoint; keep the secret it answers with (shown only once)."""
        return await self._call(c.create_webhook(c.build(ev.WebhookCreate, url=url, events=events)))

    async def webhooks(self) -> list[ev.Webhook]:
        return (await self._call(c.list_webhooks())).items

    async def webhook(self, webhook_id: str) -> ev.Webhook:
        """One of the institution's webhooks (never its secret)."""
        return await self._call(c.get_webhook(webhook_id))

    async def rotate_webhook_secret(self, webhook_id: str) -> ev.WebhookSecret:
        """A new secret; the previous one signs too for 24 hours."""
        return await self._call(c.rotate_webhook_secret(webhook_id))

    def webhook_deliveries(self, webhook_id: str, *, state: str | None = None,
                           page_size: int = 100) -> AsyncIterator[ev.Delivery]:
        """Deliveries to this webhook, newest first; `state="dead"`: those given up on."""
        return self._pages(lambda cursor: c.list_deliveries(webhook_id, state, cursor, page_size))

    async def delete_webhook(self, webhook_id: str) -> ev.Webhook:
        return await self._call(c.delete_webhook(webhook_id))

    # --- exposure ---------------------------------------------------------------------------------

    async def query_exposure(
        self, *, country: str, national_id: str, purpose: rq.Purpose, consent_id: str
    ) -> m.Exposure:
        """A person's total exposure. Raises a ConsentRequired subclass without a valid consent."""
        body = c.build(rq.ExposureQuery, country=country, national_id=national_id, purpose=purpose,
                       consent_id=consent_id)
        return await self._call(c.query_exposure(body))

    async def query_exposure_as_of(self, *, country: str, national_id: str, purpose: rq.ReviewPurpose,
                             as_of: datetime) -> m.ExposureAsOf:
        """What the register would have answered about the person at `as_of` (the regulator, or the
        person about themselves; purpose `complaint` or `supervision`). A lender's token raises Forbidden
        (code `as_of_not_allowed`)."""
        body = c.build(rq.ExposureQuery, country=country, national_id=national_id, purpose=purpose, as_of=as_of)
        return await self._call(c.query_exposure_as_of(body))

    async def get_exposure(self, exposure_id: str) -> m.StoredExposure:
        """A stored answer as its lender was told it, with its proof (`verified`), for the lender that
        asked, the person it is about and the regulator. Raises NotFound for anyone else, Gone once shredded."""
        return await self._call(c.get_exposure(exposure_id))

    # --- a consumer's own data --------------------------------------------------------------------

    async def my_obligations(self) -> m.MyObligations:
        return await self._call(c.my_obligations())

    async def my_access_log(self) -> list[m.AccessEvent]:
        return (await self._call(c.my_access_log())).items

    async def my_event_proof(self, event_id: str) -> m.EventProof:
        return await self._call(c.my_event_proof(event_id))

    async def my_consents(self) -> list[m.Consent]:
        return (await self._call(c.my_consents())).items

    async def statistics(self) -> m.Statistics:
        """The public statistics: figures about everyone, small cells suppressed (no sign-in needed)."""
        return await self._call(c.statistics())

    async def my_retention(self) -> m.MyRetention:
        """What the register keeps about me, and until when each line of mine is kept."""
        return await self._call(c.my_retention())

    async def my_notifications(self) -> m.Notifications:
        """How I am told of lookups and changes: the address, whether it is confirmed, what, how often."""
        return await self._call(c.my_notifications())

    async def set_my_notifications(self, body: rq.NotificationsSet) -> m.Notifications:
        """Be told by e-mail; a new address must be confirmed by the link mailed to it first."""
        return await self._call(c.set_my_notifications(body))

    async def delete_my_notifications(self) -> m.Notifications:
        """Turn notices off: the register deletes the address."""
        return await self._call(c.delete_my_notifications())

    # --- the access log and the transparency log --------------------------------------------------

    def list_audit_events(
        self, *, institution_id: str | None = None, action: str | None = None, outcome: str | None = None,
        since: datetime | None = None, until: datetime | None = None, page_size: int = 100,
    ) -> AsyncIterator[m.AccessEvent]:
        """Regulators: the access log in time order."""
        return self._pages(lambda cursor: c.audit_events_page(
            institution_id=institution_id, action=action, outcome=outcome, since=since, until=until, cursor=cursor,
            limit=page_size))

    def search_audit_events(self, search: rq.EventSearch | Mapping[str, Any]) -> AsyncIterator[m.AccessEvent]:
        """Regulators: the events about one person."""
        first = c.coerce(rq.EventSearch, search)
        return self._pages(
            lambda cursor: c.search_events_page(first.model_copy(update={"cursor": cursor or first.cursor})))

    async def log_key(self) -> m.LogKey:
        return await self._call(c.log_key())

    async def checkpoint(self) -> m.Checkpoint:
        return await self._call(c.checkpoint())

    async def checkpoints(self, *, since: int = 0, limit: int = 100) -> list[m.Checkpoint]:
        return (await self._call(c.checkpoints(since, limit))).items

    async def make_checkpoint(self) -> m.Checkpoint:
        return await self._call(c.make_checkpoint())

    async def inclusion_proof(
        self, *, tree_size: int, leaf_index: int | None = None, leaf_hash: str | None = None
    ) -> m.InclusionProof:
        return await self._call(c.inclusion_proof(tree_size=tree_size, leaf_index=leaf_index, leaf_hash=leaf_hash))

    async def consistency_proof(self, *, first: int, second: int) -> m.ConsistencyProof:
        return await self._call(c.consistency_proof(first, second))

    async def leaves(self, *, start: int, end: int) -> m.Leaves:
        return await self._call(c.leaves(start, end))

    async def regulator_signals(self, *, kind: str | None = None, since: datetime | None = None,
                          proofs: bool = False) -> m.Signals:
        """Regulators: signals (where to look) of one kind or all, from `since` (default 30 days back,
        at most 90), each with the access events that show it; with `proofs`, each event's leaf and
        inclusion proof against the signed `checkpoint` (register_verifier.verify_evidence checks them)."""
        return await self._call(c.regulator_signals(kind=kind, since=since, proofs=proofs))

    async def institution_activity(
        self, institution_id: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> m.InstitutionActivity:
        """Regulators: one institution's figures for [start, end) (default the 30 days before now, at most
        92): lookups per day, per consent, outside office hours, spikes, during a credit ban, without
        follow-up; disputes; reporting freshness."""
        return await self._call(c.institution_activity(institution_id, start=start, end=end))

    async def institution_lookups(
        self, institution_id: str, *, first_day: date | None = None, last_day: date | None = None
    ) -> m.InstitutionLookups:
        """Regulators: one institution's lookups by kind of consent, and those without follow-up
        (`from`/`to`: UTC days, inclusive)."""
        return await self._call(c.institution_lookups(institution_id, first_day=first_day, last_day=last_day))
