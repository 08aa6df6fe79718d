"""Every SDK model against the schema the register serves (`app.openapi()`, not a checked-in copy):
the same field names, the same required fields, and types that fit.

Response models must read everything the register sends: their types equal the server's, except that
the SDK reads an enumerated value as a plain string (so a value added later still reads). Request
models must send only what the register accepts: their types equal the server's, enum values included.
"""

from __future__ import annotations

from typing import Any

import pytest
import register_client
from pydantic import BaseModel
from register_client import _models, _requests

from register.main import create_app
from tests.conftest import make_settings

RESPONSES: dict[type[BaseModel], str] = {
    register_client.AccessEvent: "AccessEventPublic",
    register_client.AccessEventPage: "AccessEventsPublic",
    register_client.AttestationCounts: "AttestationCountsPublic",
    register_client.InstitutionLookups: "InstitutionLookupsPublic",
    register_client.InstitutionRef: "InstitutionRefPublic",
    register_client.Signal: "SignalPublic",
    register_client.Signals: "SignalsPublic",
    register_client.EvidenceProof: "EvidenceProofPublic",
    register_client.ActivityDisputes: "ActivityDisputesPublic",
    register_client.ActivityInstitution: "ActivityInstitutionPublic",
    register_client.ActivityLookups: "ActivityLookupsPublic",
    register_client.ActivityReporting: "ActivityReportingPublic",
    register_client.FollowUp: "FollowUpPublic",
    register_client.InstitutionActivity: "InstitutionActivityPublic",
    register_client.LastFile: "LastFilePublic",
    register_client.LookupDay: "LookupDayPublic",
    register_client.OfficeHours: "OfficeHoursPublic",
    register_client.Spike: "SpikePublic",
    register_client.LookupCounts: "LookupCountsPublic",
    register_client.LookupsByKind: "LookupsByKindPublic",
    register_client.Checkpoint: "CheckpointPublic",
    register_client.CheckpointList: "CheckpointsPublic",
    register_client.Collections: "CollectionsPublic",
    register_client.CollectsRef: "CollectsRef",
    register_client.Consent: "ConsentPublic",
    register_client.ConsentList: "ConsentsPublic",
    register_client.ConsistencyProof: "ConsistencyProofPublic",
    register_client.CreditBan: "CreditBanInAnswer",
    register_client.Creditor: "CreditorPublic",
    register_client.Dispute: "DisputePublic",
    register_client.DisputeCreditor: "DisputeCreditor",
    register_client.DisputeList: "DisputesPublic",
    register_client.EventProof: "EventProofPublic",
    register_client.Exposure: "ExposurePublic",
    register_client.ExposureAsOf: "ExposureAsOfPublic",
    register_client.ExposureLine: "ExposureLinePublic",
    register_client.HandedToRef: "HandedToRef",
    register_client.InclusionProof: "InclusionProofPublic",
    register_client.Institution: "InstitutionPublic",
    register_client.InstitutionCreated: "InstitutionCreated",
    register_client.InstitutionList: "InstitutionsPublic",
    register_client.Leaves: "LeavesPublic",
    register_client.LogKey: "LogKeyPublic",
    register_client.MaskedDebtor: "DebtorPublic",
    register_client.MyCreditor: "MyCreditorPublic",
    register_client.MyDisputeRef: "MyDisputeRef",
    register_client.MyLine: "MyLinePublic",
    register_client.MyObligations: "MyObligationsPublic",
    register_client.MyRetention: "MyRetentionPublic",
    register_client.ArrearsRow: "ArrearsRow",
    register_client.Cell: "Cell",
    register_client.CollectionRow: "CollectionRow",
    register_client.DisputesRow: "DisputesRow",
    register_client.LinesRow: "LinesRow",
    register_client.LookupsRow: "LookupsRow",
    register_client.Statistics: "StatisticsPublic",
    register_client.KeptLine: "KeptLine",
    register_client.KeptNotices: "KeptNotices",
    register_client.Notifications: "NotificationsPublic",
    register_client.KeptCreditor: "KeptCreditor",
    register_client.RulePeriod: "RulePeriod",
    register_client.Obligation: "ObligationPublic",
    register_client.ObligationHistory: "ObligationHistory",
    register_client.ObligationPage: "ObligationsPublic",
    register_client.ObligationVersion: "ObligationVersionPublic",
    register_client.Problem: "ProblemWithReceipt",
    register_client.Receipt: "ReceiptPublic",
    register_client.Report: "ReportPublic",
    register_client.StoredAnswer: "StoredAnswerPublic",
    register_client.StoredExposure: "StoredExposurePublic",
    register_client.Subject: "DebtorSubject",
    register_client.Totals: "TotalsPublic",
    register_client.Event: "EventPublic",
    register_client.EventPage: "EventsPublic",
    register_client.Webhook: "WebhookPublic",
    register_client.WebhookList: "WebhooksPublic",
    register_client.WebhookSecret: "WebhookSecretPublic",
    register_client.Delivery: "DeliveryPublic",
    register_client.DeliveryPage: "DeliveriesPublic",
}
REQUESTS: dict[type[BaseModel], str] = {
    register_client.AttestedConsent: "AttestedConsentCreate",
    register_client.Collects: "CollectsRef",
    register_client.ConsentEvidence: "ConsentEvidence",
    register_client.ConsentGrant: "ConsentCreate",
    register_client.Contact: "ContactIn",
    register_client.Debtor: "DebtorIn",
    register_client.DisputeAnswer: "DisputeAnswer",
    register_client.NotificationsSet: "NotificationsSet",
    register_client.EventSearch: "EventSearch",
    register_client.ExposureQuery: "ExposureRequest",
    register_client.HandedTo: "HandedToRef",
    register_client.InstitutionCreate: "InstitutionCreate",
    register_client.ObligationReport: "ObligationReport",
    register_client.RegistrationConsent: "RegistrationConsent",
    register_client.WebhookCreate: "WebhookCreate",
}
# Models of bodies the OpenAPI document does not describe as JSON objects.
NOT_IN_OPENAPI = {
    register_client.ReportLine: "an NDJSON line: ObligationReport plus external_ref (checked below)",
    register_client.ReportLineError: "a line of the NDJSON stream GET /v1/reports/{id}/errors",
    register_client.WebhookEvent: "the body of a webhook delivery (tests/clients/test_events_sdk.py reads real ones)",
}
# Server components an SDK model reads although it has more (optional) fields.
ALSO_READS: dict[str, type[BaseModel]] = {"Problem": register_client.Problem}  # a problem without a receipt
# Server components the SDK has no model for, on purpose.
SERVER_ONLY = {"HTTPValidationError", "ValidationError"}  # FastAPI's default 422 shape; the register sends problems
# OAuth2 sign-in: the key pair's sign-in (register_client._auth) reads only `access_token` and `expires_in` of
# the token answer and the audience of the metadata, and is tested against the app (test_keys.py). The
# operator's key and token administration: the SDK does not speak it yet.
SERVER_ONLY |= {"AccessTokenResponse", "AccessTokensRevoked", "AuthorizationServerMetadata", "InstitutionKeyCreate",
                "InstitutionKeyPublic", "InstitutionKeyRevoked", "InstitutionKeysPublic", "OAuthProblem"}
# The person's side of disputes and credit bans (consumers use the register's pages) and the regulator's
# dispute overview: the SDK speaks the creditor's side only so far.
SERVER_ONLY |= {"CreditBanPublic", "CreditBanSet", "DisputeCreate", "DisputeStatement", "DisputeCountsPublic",
                "RegulatorDisputePublic", "RegulatorDisputesPublic"}
# The log's keys and their handovers: read by the regulator's verifier (register_verifier.client.log_keys, tested
# in tests/audit/test_log_key.py), not by the SDK yet.
SERVER_ONLY |= {"LogKeysPublic", "LogKeyVersionPublic"}


def _shape(schema: dict[str, Any], defs: dict[str, Any], names: dict[str, str], *, loose_enums: bool) -> str:
    """A schema reduced to a comparable type expression; `names` maps the SDK's model names to the server's."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = defs[name]
        if "enum" in target:
            return _shape(target, defs, names, loose_enums=loose_enums)
        return f"ref:{names.get(name, name)}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = {_shape(s, defs, names, loose_enums=loose_enums) for s in schema[key]}
            return "|".join(sorted(parts))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _shape(schema["allOf"][0], defs, names, loose_enums=loose_enums)
    if "enum" in schema:
        return "string" if loose_enums else f"enum({','.join(sorted(map(str, schema['enum'])))})"
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_shape(schema.get('items', {}), defs, names, loose_enums=loose_enums)}]"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"dict[{_shape(extra, defs, names, loose_enums=loose_enums)}]"
        return "object"
    if kind == "string":
        return {"date-time": "datetime", "date": "date"}.get(schema.get("format", ""), "string")
    return kind or "any"


def _fields(schema: dict[str, Any], defs: dict[str, Any], names: dict[str, str], *, loose: bool):
    props = {k: _shape(v, defs, names, loose_enums=loose) for k, v in schema.get("properties", {}).items()}
    return props, set(schema.get("required", []))


@pytest.fixture(scope="module")
def served(tmp_path_factory, keys) -> dict[str, Any]:
    """The document as the app serves it (no database is touched, so one backend is enough)."""
    data = tmp_path_factory.mktemp("openapi")
    app = create_app(make_settings(f"sqlite:///{data / 'unused.db'}", data), keys=keys)
    try:
        return app.openapi()["components"]["schemas"]
    finally:
        app.state.register.engine.dispose()


def _compare(model: type[BaseModel], server: dict[str, Any], server_name: str, *, response: bool) -> None:
    mine = model.model_json_schema(ref_template="#/$defs/{model}")
    defs = {**mine.get("$defs", {})}
    names = {m.__name__: n for m, n in (RESPONSES if response else REQUESTS).items()}
    # Enums (server) may be read as strings (SDK) in answers; requests must match exactly.
    sdk_props, sdk_required = _fields(mine, defs, names, loose=response)
    srv_props, srv_required = _fields(server[server_name], server, {}, loose=response)
    assert sorted(sdk_props) == sorted(srv_props), f"{model.__name__} fields differ from {server_name}"
    assert sdk_required == srv_required, f"{model.__name__} required fields differ from {server_name}"
    for field, shape in srv_props.items():
        assert sdk_props[field] == shape, f"{model.__name__}.{field}: SDK {sdk_props[field]}, server {shape}"


class TestEveryModelMatchesItsSchema:
    @pytest.mark.parametrize("model", list(RESPONSES), ids=lambda m: m.__name__)
    def test_response(self, served, model):
        _compare(model, served, RESPONSES[model], response=True)

    @pytest.mark.parametrize("model", list(REQUESTS), ids=lambda m: m.__name__)
    def test_request(self, served, model):
        _compare(model, served, REQUESTS[model], response=False)

    @pytest.mark.parametrize("server_name", list(ALSO_READS))
    def test_a_model_that_also_reads_a_smaller_schema(self, served, server_name):
        if server_name not in served:
            pytest.skip(f"{server_name} is not in the served document")
        model = ALSO_READS[server_name]
        mine = model.model_json_schema(ref_template="#/$defs/{model}")
        names = {m.__name__: n for m, n in RESPONSES.items()}
        sdk_props, sdk_required = _fields(mine, mine.get("$defs", {}), names, loose=True)
        srv_props, srv_required = _fields(served[server_name], served, {}, loose=True)
        assert sdk_required == srv_required and set(srv_props) <= set(sdk_props)
        assert {f: sdk_props[f] for f in srv_props} == srv_props

    def test_report_line_is_a_report_plus_its_ref(self, served):
        line = register_client.ReportLine.model_json_schema()
        report = served["ObligationReport"]
        assert set(line["properties"]) == {*report["properties"], "external_ref"}
        assert set(line["required"]) == {*report["required"], "external_ref"}


class TestCoverage:
    def test_every_sdk_model_is_checked(self):
        exported = {getattr(register_client, n) for n in register_client.__all__}
        models = {obj for obj in exported if isinstance(obj, type) and issubclass(obj, BaseModel)}
        assert models == set(RESPONSES) | set(REQUESTS) | set(NOT_IN_OPENAPI)
        defined = {v for mod in (_models, _requests) for v in vars(mod).values()
                   if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == mod.__name__
                   and not v.__name__.startswith("_")}
        assert defined <= models, f"models not exported: {defined - models}"

    def test_every_server_schema_has_an_sdk_model(self, served):
        objects = {name for name, s in served.items() if "enum" not in s}
        assert objects - SERVER_ONLY - set(ALSO_READS) == set(RESPONSES.values()) | set(REQUESTS.values())
