"""Each endpoint once: its method, path, parameters, answer model and whether it may be repeated.

The sync and async clients only differ in how they send a `Call`; what to send and how to read the
answer is decided here, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import pydantic
from pydantic import BaseModel

from register_client import _events as ev
from register_client import _models as m
from register_client import _requests as rq
from register_client._exceptions import InvalidRequest

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    model: type[Any] | None
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True  # may be sent again after a failure without changing the outcome


def _params(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value.isoformat() if isinstance(value, (date, datetime)) else value
    return out


def _ref(external_ref: str) -> str:
    return quote(external_ref, safe="")


def coerce(model: type[M], value: M | Mapping[str, Any]) -> M:
    """A request model from itself or from a plain mapping (validated, so mistakes fail before sending,
    as InvalidRequest)."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        raise InvalidRequest.from_validation(exc, model.__name__) from None


def build(model: type[M], **fields: Any) -> M:
    """A request model from keyword arguments, refused as InvalidRequest like `coerce`."""
    return coerce(model, fields)


# --- institutions ---------------------------------------------------------------------------------


def create_institution(body: rq.InstitutionCreate) -> Call[m.InstitutionCreated]:
    return Call("POST", "/v1/institutions", m.InstitutionCreated, json=body.to_json(), idempotent=False)


def list_institutions() -> Call[m.InstitutionList]:
    return Call("GET", "/v1/institutions", m.InstitutionList)


# --- obligations ----------------------------------------------------------------------------------


def put_obligation(external_ref: str, report: rq.ObligationReport, if_match: str | None) -> Call[m.Obligation]:
    headers = {"If-Match": if_match} if if_match else {}
    # Idempotent by the register's rule: the same state at the same as_of is a 200 repeat.
    return Call("PUT", f"/v1/obligations/{_ref(external_ref)}", m.Obligation, json=report.to_json(), headers=headers)


def get_obligation(external_ref: str) -> Call[m.Obligation]:
    return Call("GET", f"/v1/obligations/{_ref(external_ref)}", m.Obligation)


def obligation_history(external_ref: str) -> Call[m.ObligationHistory]:
    return Call("GET", f"/v1/obligations/{_ref(external_ref)}/versions", m.ObligationHistory)


def obligations_page(
    *, status: str | None, updated_since: datetime | None, cursor: str | None, limit: int
) -> Call[m.ObligationPage]:
    params = _params(status=status, updated_since=updated_since, cursor=cursor, limit=limit)
    return Call("GET", "/v1/obligations", m.ObligationPage, params=params)


def retract_obligation(external_ref: str, reason: str, if_match: str | None) -> Call[m.Obligation]:
    headers = {"If-Match": if_match} if if_match else {}
    return Call("DELETE", f"/v1/obligations/{_ref(external_ref)}", m.Obligation, params={"reason": reason},
                headers=headers, idempotent=False)  # a repeat of a successful retraction answers 410


# --- batch reports --------------------------------------------------------------------------------


def post_report(*, mode: str, fmt: str, idempotency_key: str | None) -> Call[m.Report]:
    headers = {"Content-Type": "text/csv" if fmt == "csv" else "application/x-ndjson"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return Call("POST", "/v1/reports", m.Report, params={"mode": mode, "format": fmt}, headers=headers,
                idempotent=idempotency_key is not None)


def get_report(report_id: str) -> Call[m.Report]:
    return Call("GET", f"/v1/reports/{_ref(report_id)}", m.Report)


def report_errors(report_id: str) -> Call[m.ReportLineError]:
    return Call("GET", f"/v1/reports/{_ref(report_id)}/errors", m.ReportLineError)


# --- consents -------------------------------------------------------------------------------------


def list_consents() -> Call[m.ConsentList]:
    return Call("GET", "/v1/consents", m.ConsentList)


def attest_consent(body: rq.AttestedConsent) -> Call[m.Consent]:
    # The evidence's reference names one consent: a repeat for the same person and purpose answers 200 with
    # the consent recorded first, so a retry lands once.
    return Call("POST", "/v1/consents/attested", m.Consent, json=body.to_json())


def grant_consent(body: rq.ConsentGrant) -> Call[m.Consent]:
    return Call("POST", "/v1/consents", m.Consent, json=body.to_json(), idempotent=False)


def revoke_consent(consent_id: str) -> Call[m.Consent]:
    return Call("DELETE", f"/v1/consents/{_ref(consent_id)}", m.Consent)  # revoking twice is harmless


# --- disputes (creditors) -------------------------------------------------------------------------


def list_disputes(state: str | None) -> Call[m.DisputeList]:
    return Call("GET", "/v1/disputes", m.DisputeList, params=_params(state=state))


def get_dispute(dispute_id: str) -> Call[m.Dispute]:
    return Call("GET", f"/v1/disputes/{_ref(dispute_id)}", m.Dispute)


def answer_dispute(dispute_id: str, body: rq.DisputeAnswer) -> Call[m.Dispute]:
    # Not repeatable: a repeat of an answer that was taken (its reply lost) answers 409 dispute_closed.
    return Call("POST", f"/v1/disputes/{_ref(dispute_id)}/answer", m.Dispute, json=body.to_json(), idempotent=False)


# --- exposure and the person's own view -----------------------------------------------------------


def query_exposure(body: rq.ExposureQuery) -> Call[m.Exposure]:
    # Not repeatable: every query, granted or refused, is an access event the person sees.
    return Call("POST", "/v1/exposure", m.Exposure, json=body.to_json(), idempotent=False)


def query_exposure_as_of(body: rq.ExposureQuery) -> Call[m.ExposureAsOf]:
    # Not repeatable either: the question is an access event the person sees.
    return Call("POST", "/v1/exposure", m.ExposureAsOf, json=body.to_json(), idempotent=False)


def get_exposure(exposure_id: str) -> Call[m.StoredExposure]:
    return Call("GET", f"/v1/exposure/{_ref(exposure_id)}", m.StoredExposure)


def my_obligations() -> Call[m.MyObligations]:
    return Call("GET", "/v1/me/obligations", m.MyObligations)


def my_access_log() -> Call[m.AccessEventPage]:
    return Call("GET", "/v1/me/access-log", m.AccessEventPage)


def my_event_proof(event_id: str) -> Call[m.EventProof]:
    return Call("GET", f"/v1/me/access-log/{_ref(event_id)}/proof", m.EventProof)


def my_consents() -> Call[m.ConsentList]:
    return Call("GET", "/v1/me/consents", m.ConsentList)


def statistics() -> Call[m.Statistics]:
    return Call("GET", "/v1/statistics", m.Statistics)


def my_retention() -> Call[m.MyRetention]:
    return Call("GET", "/v1/me/retention", m.MyRetention)


def my_notifications() -> Call[m.Notifications]:
    return Call("GET", "/v1/me/notifications", m.Notifications)


def set_my_notifications(body: rq.NotificationsSet) -> Call[m.Notifications]:
    return Call("PUT", "/v1/me/notifications", m.Notifications, json=body.to_json())


def delete_my_notifications() -> Call[m.Notifications]:
    return Call("DELETE", "/v1/me/notifications", m.Notifications)


# --- the access log (regulators) and the transparency log -----------------------------------------


def audit_events_page(
    *, institution_id: str | None, action: str | None, outcome: str | None, since: datetime | None,
    until: datetime | None, cursor: str | None, limit: int,
) -> Call[m.AccessEventPage]:
    params = _params(institution_id=institution_id, action=action, outcome=outcome, since=since, until=until,
                     cursor=cursor, limit=limit)
    return Call("GET", "/v1/audit/events", m.AccessEventPage, params=params)


def search_events_page(body: rq.EventSearch) -> Call[m.AccessEventPage]:
    # A POST so that identity numbers stay out of URLs; each page is a recorded search, so not repeated.
    return Call("POST", "/v1/audit/events/search", m.AccessEventPage, json=body.to_json(), idempotent=False)


def log_key() -> Call[m.LogKey]:
    return Call("GET", "/v1/audit/log-key", m.LogKey)


def checkpoint() -> Call[m.Checkpoint]:
    return Call("GET", "/v1/audit/checkpoint", m.Checkpoint)


def checkpoints(since: int, limit: int) -> Call[m.CheckpointList]:
    return Call("GET", "/v1/audit/checkpoints", m.CheckpointList, params={"since": since, "limit": limit})


def make_checkpoint() -> Call[m.Checkpoint]:
    return Call("POST", "/v1/audit/checkpoints", m.Checkpoint, idempotent=False)


def inclusion_proof(*, tree_size: int, leaf_index: int | None, leaf_hash: str | None) -> Call[m.InclusionProof]:
    params = _params(tree_size=tree_size, leaf_index=leaf_index, leaf_hash=leaf_hash)
    return Call("GET", "/v1/audit/proof/inclusion", m.InclusionProof, params=params)


def consistency_proof(first: int, second: int) -> Call[m.ConsistencyProof]:
    return Call("GET", "/v1/audit/proof/consistency", m.ConsistencyProof, params={"first": first, "second": second})


def leaves(start: int, end: int) -> Call[m.Leaves]:
    return Call("GET", "/v1/audit/leaves", m.Leaves, params={"start": start, "end": end})


def regulator_signals(*, kind: str | None, since: datetime | None, proofs: bool = False) -> Call[m.Signals]:
    return Call("GET", "/v1/regulator/signals", m.Signals,
                params=_params(kind=kind, since=since, proofs="true" if proofs else None))


def institution_activity(institution_id: str, *, start: datetime | None, end: datetime | None
                         ) -> Call[m.InstitutionActivity]:
    params = _params(**{"from": start, "to": end})
    return Call("GET", f"/v1/regulator/institutions/{_ref(institution_id)}/activity", m.InstitutionActivity,
                params=params)


def institution_lookups(institution_id: str, *, first_day: date | None, last_day: date | None
                        ) -> Call[m.InstitutionLookups]:
    params = _params(**{"from": first_day, "to": last_day})
    return Call("GET", f"/v1/audit/institutions/{_ref(institution_id)}/lookups", m.InstitutionLookups, params=params)


# --- events and webhooks -------------------------------------------------------------------------


def list_events(after: int, limit: int) -> Call[ev.EventPage]:
    return Call("GET", "/v1/events", ev.EventPage, params=_params(after=after, limit=limit))


def create_webhook(body: ev.WebhookCreate) -> Call[ev.WebhookSecret]:
    return Call("POST", "/v1/webhooks", ev.WebhookSecret, json=body.to_json(), idempotent=False)


def list_webhooks() -> Call[ev.WebhookList]:
    return Call("GET", "/v1/webhooks", ev.WebhookList)


def get_webhook(webhook_id: str) -> Call[ev.Webhook]:
    return Call("GET", f"/v1/webhooks/{_ref(webhook_id)}", ev.Webhook)


def rotate_webhook_secret(webhook_id: str) -> Call[ev.WebhookSecret]:
    # Not repeatable: a repeat rotates again, and the secret the lost reply carried would never sign.
    return Call("POST", f"/v1/webhooks/{_ref(webhook_id)}/secret", ev.WebhookSecret, idempotent=False)


def list_deliveries(webhook_id: str, state: str | None, cursor: str | None, limit: int) -> Call[ev.DeliveryPage]:
    return Call("GET", f"/v1/webhooks/{_ref(webhook_id)}/deliveries", ev.DeliveryPage,
                params=_params(state=state, cursor=cursor, limit=limit))


def delete_webhook(webhook_id: str) -> Call[ev.Webhook]:
    return Call("DELETE", f"/v1/webhooks/{_ref(webhook_id)}", ev.Webhook)
