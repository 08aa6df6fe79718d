"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
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


class RegisterClient(BaseClient):
    """The register's API for institutions (and, with their tokens, for the operator, regulators and
    consumers).

    `transport` is the seam for tests: any `httpx.BaseTransport`, e.g. one that serves the register's
    app in-process or `httpx.MockTransport`. Use it as a context manager, or call `close()`.
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
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
        user_agent: str | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        super().__init__(base_url, token, retry=retry, headers=headers, user_agent=user_agent, on_retry=on_retry,
                         auth=auth)
        self._http = httpx.Client(transport=transport, **self._http_options(timeout))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------

    def _send(self, call: c.Call[Any], *, body: ReportBody | None = None, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            content = body.chunks() if body is not None else None
            request = self._http.build_request(call.method, call.path, params=call.params or None, json=call.json,
                                               content=content, headers=call.headers)
            replayable = body is None or body.replayable
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self._retry_delay(call, attempt, replayable=replayable, error=exc)
                if delay is None:
                    raise self._transport_error(exc, self.base_url) from None
                time.sleep(delay)
                continue
            delay = self._retry_delay(call, attempt, replayable=replayable, response=response)
            if delay is None:
                return response
            response.close()
            time.sleep(delay)

    def _call(self, call: c.Call[T]) -> T:
        return self._read(call, self._send(call))

    def _pages(self, page: Callable[[str | None], c.Call[Any]]) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            result = self._call(page(cursor))
            yield from result.items
            cursor = result.next_cursor
            if not cursor:
                return

    # --- institutions -----------------------------------------------------------------------------

    def create_institution(
        self, *, name: str, role: rq.InstitutionRole, org_number: str | None = None, country: str | None = None,
        contact: rq.Contact | Mapping[str, Any] | None = None,
    ) -> m.InstitutionCreated:
        """Operator only. The answer's `token` is shown once. `contact` is how a person reaches it about a debt."""
        body = c.build(rq.InstitutionCreate, name=name, role=role, org_number=org_number, country=country,
                       contact=contact)
        return self._call(c.create_institution(body))

    def list_institutions(self) -> list[m.Institution]:
        return self._call(c.list_institutions()).items

    # --- obligations ------------------------------------------------------------------------------

    def put_obligation(
        self, external_ref: str, report: rq.ObligationReport | Mapping[str, Any], *, if_match: str | None = None
    ) -> m.Obligation:
        """Report the state of one debt. Raises StaleUpdate for an older `as_of` than the stored one."""
        return self._call(c.put_obligation(external_ref, c.coerce(rq.ObligationReport, report), if_match))

    def get_obligation(self, external_ref: str) -> m.Obligation:
        return self._call(c.get_obligation(external_ref))

    def obligation_history(self, external_ref: str) -> m.ObligationHistory:
        return self._call(c.obligation_history(external_ref))

    def list_obligations(
        self, *, status: rq.Status | None = None, updated_since: datetime | None = None, page_size: int = 100
    ) -> Iterator[m.Obligation]:
        """Every live obligation of this institution, oldest change first, fetched a page at a time."""
        return self._pages(lambda cursor: c.obligations_page(status=status, updated_since=updated_since,
                                                             cursor=cursor, limit=page_size))

    def obligations_page(
        self, *, status: rq.Status | None = None, updated_since: datetime | None = None, cursor: str | None = None,
        limit: int = 100,
    ) -> m.ObligationPage:
        """One page of `list_obligations`, from `cursor` (a page's `next_cursor`; None: the start). Its
        `next_cursor` is None on the last page, else where to go on, now or in a later run."""
        return self._call(c.obligations_page(status=status, updated_since=updated_since, cursor=cursor, limit=limit))

    def retract_obligation(self, external_ref: str, *, reason: str, if_match: str | None = None) -> m.Obligation:
        return self._call(c.retract_obligation(external_ref, reason, if_match))

    # --- batch reports ----------------------------------------------------------------------------

    def upload_report(
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
        return self._read_report(call, self._send(call, body=body))

    def get_report(self, report_id: str) -> m.Report:
        return self._call(c.get_report(report_id))

    def wait_for_report(
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
            report = self.get_report(report_id)
            if on_progress is not None:
                on_progress(report)
            if report.finished:
                return report
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"report {report_id} is still {report.status} after {timeout} s")
            time.sleep(poll_interval)

    def report_errors(self, report_id: str) -> Iterator[m.ReportLineError]:
        """Every rejected line of a report, streamed."""
        call = c.report_errors(report_id)
        response = self._send(call, stream=True)
        try:
            if response.is_error:
                response.read()
                self._read(call, response)
            for line in response.iter_lines():
                if line.strip():
                    yield self._read_line(call, line)
        finally:
            response.close()

    # --- consents ---------------------------------------------------------------------------------

    def list_consents(self) -> list[m.Consent]:
        """Institutions: the consents granted to it (identities masked). Consumers: their own."""
        return self._call(c.list_consents()).items

    def attest_consent(self, consent: rq.AttestedConsent | Mapping[str, Any]) -> m.Consent:
        """Record a consent your institution collected itself. `evidence.reference` names one consent: sent
        again for the same person and purpose, the consent recorded first comes back as it stands (so the
        call is retried safely); for another person or purpose, `ReferenceReused`."""
        return self._call(c.attest_consent(c.coerce(rq.AttestedConsent, consent)))

    def grant_consent(self, consent: rq.ConsentGrant | Mapping[str, Any]) -> m.Consent:
        """Consumers only."""
        return self._call(c.grant_consent(c.coerce(rq.ConsentGrant, consent)))

    def revoke_consent(self, consent_id: str) -> m.Consent:
        """Consumers only."""
        return self._call(c.revoke_consent(consent_id))

    # --- disputes --------------------------------------------------------------------------------

    def disputes(self, *, state: rq.DisputeState | None = None) -> list[m.Dispute]:
        """Lenders and collectors: disputes on this institution's lines, earliest deadline first, with the
        person's words. `state="open"` includes overdue ones; `"overdue"` is only those past their deadline."""
        return self._call(c.list_disputes(state)).items

    def dispute(self, dispute_id: str) -> m.Dispute:
        return self._call(c.get_dispute(dispute_id))

    def answer_dispute(self, dispute_id: str, *, outcome: rq.DisputeOutcome, explanation: str) -> m.Dispute:
        """`corrected` (report the corrected line too) or `upheld`; the person reads `explanation`. Raises
        DisputeClosed when it is no longer open. Never retried: if the connection drops, `dispute()` tells
        whether the answer was taken. (A report naming the dispute in `corrects_dispute` closes it as well.)"""
        body = c.build(rq.DisputeAnswer, outcome=outcome, explanation=explanation)
        return self._call(c.answer_dispute(dispute_id, body))

    # --- events and webhooks ----------------------------------------------------------------------

    def events_page(self, *, after: int = 0, limit: int = 100) -> ev.EventPage:
        """Lenders and collectors: the changes that concern this institution after `after` (a `seq`)."""
        return self._call(c.list_events(after, limit))

    def iter_events(self, *, after: int = 0, page_size: int = 100, follow: bool = False,
                    interval: float = 5.0) -> Iterator[ev.Event]:
        """Every event after `after`, oldest first, page by page. Keep the last `seq` you handled and
        pass it as `after` next time: the feed replays from any `seq` of the last 30 days. `follow`: do
        not stop at the end, ask again every `interval` seconds (what `register-client events tail` does)."""
        while True:
            page = self.events_page(after=after, limit=page_size)
            yield from page.items
            after = page.next_after
            if len(page.items) < page_size:
                if not follow:
                    return
                time.sleep(interval)

    def create_webhook(self, *, url: str, events: list[str]) -> ev.WebhookSecret:
        """Register an endpoint for these event types (or prefixes, `consent`); keep the secret it
        answers with, for `verify_webhook`: it is shown only once."""
        return self._call(c.create_webhook(c.build(ev.WebhookCreate, url=url, events=events)))

    def webhooks(self) -> list[ev.Webhook]:
        return self._call(c.list_webhooks()).items

    def webhook(self, webhook_id: str) -> ev.Webhook:
        """One of the institution's webhooks (never its secret)."""
        return self._call(c.get_webhook(webhook_id))

    def rotate_webhook_secret(self, webhook_id: str) -> ev.WebhookSecret:
        """A new secret; the previous one signs too for 24 hours, so verify with both meanwhile."""
        return self._call(c.rotate_webhook_secret(webhook_id))

    def webhook_deliveries(self, webhook_id: str, *, state: str | None = None,
                           page_size: int = 100) -> Iterator[ev.Delivery]:
        """Deliveries to this webhook, newest first; `state="dead"`: those given up on."""
        return self._pages(lambda cursor: c.list_deliveries(webhook_id, state, cursor, page_size))

    def delete_webhook(self, webhook_id: str) -> ev.Webhook:
        return self._call(c.delete_webhook(webhook_id))

    # --- exposure ---------------------------------------------------------------------------------

    def query_exposure(self, *, country: str, national_id: str, purpose: rq.Purpose, consent_id: str) -> m.Exposure:
        """A person's total exposure. Raises a ConsentRequired subclass without a valid consent."""
        body = c.build(rq.ExposureQuery, country=country, national_id=national_id, purpose=purpose,
                       consent_id=consent_id)
        return self._call(c.query_exposure(body))

    def query_exposure_as_of(self, *, country: str, national_id: str, purpose: rq.ReviewPurpose,
                             as_of: datetime) -> m.ExposureAsOf:
        """What the register would have answered about the person at `as_of` (the regulator, or the
        person about themselves; purpose `complaint` or `supervision`). A lender's token raises Forbidden
        (code `as_of_not_allowed`)."""
        body = c.build(rq.ExposureQuery, country=country, national_id=national_id, purpose=purpose, as_of=as_of)
        return self._call(c.query_exposure_as_of(body))

    def get_exposure(self, exposure_id: str) -> m.StoredExposure:
        """A stored answer as its lender was told it, with its proof (`verified`), for the lender that
        asked, the person it is about and the regulator. Raises NotFound for anyone else, Gone once shredded."""
        return self._call(c.get_exposure(exposure_id))

    # --- a consumer's own data --------------------------------------------------------------------

    def my_obligations(self) -> m.MyObligations:
        return self._call(c.my_obligations())

    def my_access_log(self) -> list[m.AccessEvent]:
        return self._call(c.my_access_log()).items

    def my_event_proof(self, event_id: str) -> m.EventProof:
        return self._call(c.my_event_proof(event_id))

    def my_consents(self) -> list[m.Consent]:
        return self._call(c.my_consents()).items

    def statistics(self) -> m.Statistics:
        """The public statistics: figures about everyone, small cells suppressed (no sign-in needed)."""
        return self._call(c.statistics())

    def my_retention(self) -> m.MyRetention:
        """What the register keeps about me, and until when each line of mine is kept."""
        return self._call(c.my_retention())

    def my_notifications(self) -> m.Notifications:
        """How I am told of lookups and changes: the address, whether it is confirmed, what, how often."""
        return self._call(c.my_notifications())

    def set_my_notifications(self, body: rq.NotificationsSet) -> m.Notifications:
        """Be told by e-mail; a new address must be confirmed by the link mailed to it first."""
        return self._call(c.set_my_notifications(body))

    def delete_my_notifications(self) -> m.Notifications:
        """Turn notices off: the register deletes the address."""
        return self._call(c.delete_my_notifications())

    # --- the access log and the transparency log --------------------------------------------------

    def list_audit_events(
        self, *, institution_id: str | None = None, action: str | None = None, outcome: str | None = None,
        since: datetime | None = None, until: datetime | None = None, page_size: int = 100,
    ) -> Iterator[m.AccessEvent]:
        """Regulators: the access log in time order."""
        return self._pages(lambda cursor: c.audit_events_page(
            institution_id=institution_id, action=action, outcome=outcome, since=since, until=until, cursor=cursor,
            limit=page_size))

    def search_audit_events(self, search: rq.EventSearch | Mapping[str, Any]) -> Iterator[m.AccessEvent]:
        """Regulators: the events about one person."""
        first = c.coerce(rq.EventSearch, search)
        return self._pages(
            lambda cursor: c.search_events_page(first.model_copy(update={"cursor": cursor or first.cursor})))

    def log_key(self) -> m.LogKey:
        return self._call(c.log_key())

    def checkpoint(self) -> m.Checkpoint:
        return self._call(c.checkpoint())

    def checkpoints(self, *, since: int = 0, limit: int = 100) -> list[m.Checkpoint]:
        return self._call(c.checkpoints(since, limit)).items

    def make_checkpoint(self) -> m.Checkpoint:
        return self._call(c.make_checkpoint())

    def inclusion_proof(
        self, *, tree_size: int, leaf_index: int | None = None, leaf_hash: str | None = None
    ) -> m.InclusionProof:
        return self._call(c.inclusion_proof(tree_size=tree_size, leaf_index=leaf_index, leaf_hash=leaf_hash))

    def consistency_proof(self, *, first: int, second: int) -> m.ConsistencyProof:
        return self._call(c.consistency_proof(first, second))

    def leaves(self, *, start: int, end: int) -> m.Leaves:
        return self._call(c.leaves(start, end))

    def regulator_signals(self, *, kind: str | None = None, since: datetime | None = None,
                          proofs: bool = False) -> m.Signals:
        """Regulators: signals (where to look) of one kind or all, from `since` (default 30 days back,
        at most 90), each with the access events that show it; with `proofs`, each event's leaf and
        inclusion proof against the signed `checkpoint` (register_verifier.verify_evidence checks them)."""
        return self._call(c.regulator_signals(kind=kind, since=since, proofs=proofs))

    def institution_activity(
        self, institution_id: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> m.InstitutionActivity:
        """Regulators: one institution's figures for [start, end) (default the 30 days before now, at most
        92): lookups per day, per consent, outside office hours, spikes, during a credit ban, without
        follow-up; disputes; reporting freshness."""
        return self._call(c.institution_activity(institution_id, start=start, end=end))

    def institution_lookups(
        self, institution_id: str, *, first_day: date | None = None, last_day: date | None = None
    ) -> m.InstitutionLookups:
        """Regulators: one institution's lookups by kind of consent, and those without follow-up
        (`from`/`to`: UTC days, inclusive)."""
        return self._call(c.institution_lookups(institution_id, first_day=first_day, last_day=last_day))
