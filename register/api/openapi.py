"""The OpenAPI document: error responses routes declare in one word, and the document as checked in.

Routes say which refusals they can make, `responses=errors(401, 403, 404, "retracted", 422)`: a number
stands for that status's general code, a string for one specific code. Each becomes a problem+json
response with the Problem schema and one example per code, so an institution reads in the document
exactly which codes to handle. `openapi.json` at the repository root is `register openapi` output
(`register.main.openapi_document`); a test fails when the served document drifts from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from register.api import examples as ex
from register.api import schemas
from register.api.schemas import lookups as lookup_schemas
from register.api.problems import PROBLEM
from register.api.schemas import Problem
from register.domain import obligation


@dataclass(frozen=True)
class Refusal:
    status: int
    title: str
    detail: str  # the example's detail


REFUSALS: dict[str, Refusal] = {
    "invalid_request": Refusal(400, "Invalid token request", "client_assertion is missing"),
    "unsupported_grant_type": Refusal(400, "Unsupported grant type",
                                      "only grant_type=client_credentials is supported"),
    "invalid_client": Refusal(401, "Client authentication failed", "the assertion has expired"),
    "unauthenticated": Refusal(401, "Authentication required", "the token is not valid"),
    "invalid_id_token": Refusal(401, "Authentication required", "token expired"),
    "forbidden": Refusal(403, "Not allowed for this role", "the lender role may not institutions:create"),
    "collector_only": Refusal(403, "Not allowed for this role",
                              "only an institution with the collector role may report collects"),
    "consent_missing": Refusal(403, "No valid consent", "no consent with that id"),
    "consent_mismatch": Refusal(403, "No valid consent",
                                "the consent is for credit_limit_review, not credit_application"),
    "consent_revoked": Refusal(403, "No valid consent", "the person revoked this consent"),
    "consent_expired": Refusal(403, "No valid consent", "the consent has expired"),
    "as_of_not_allowed": Refusal(403, "Not allowed for this role", "the lender role may not ask for an answer "
                                  "as of a past moment; only the regulator and the person it is about may"),
    "not_found": Refusal(404, "Not found", "no obligation 'LOAN-2025-0042' reported by this institution"),
    "no_checkpoint": Refusal(404, "Not found", "no checkpoint has been signed yet"),
    "leaf_event_missing": Refusal(404, "Not found", "the event of leaf 17 is missing"),
    "stale_update": Refusal(409, "Older than the stored state",
                            "as_of 2026-10-01T00:00:00+00:00 is older than the stored 2026-11-01T00:00:00+00:00"),
    "idempotency_conflict": Refusal(409, "Conflict", "this Idempotency-Key was used for a different body"),
    "not_yet_integrated": Refusal(409, "Conflict",
                                  "the event is not in a signed checkpoint yet; ask again after the merge delay"),
    "retracted": Refusal(410, "Retracted",
                         "obligation 'LOAN-2025-0042' was retracted at 2026-11-02T10:00:00+00:00"),
    "shredded": Refusal(410, "No longer kept", "the answer was kept for its retention period and has been "
                        "shredded; its hash remains"),
    "precondition_failed": Refusal(
        412, "Precondition failed", f'the obligation has changed: its ETag is now "{ex.OBLIGATION_ID}.3"'
    ),
    "payload_too_large": Refusal(413, "Request body too large", "request bodies are limited to 1048576 bytes"),
    "validation_error": Refusal(422, "Invalid request", "body.balance: Input should be a valid integer"),
    "invalid_national_id": Refusal(422, "Invalid national identity number",
                                   "debtors.0.national_id is not a valid FI identity number: invalid check digit"),
    "duplicate_debtor": Refusal(422, "Invalid input", "debtors.1 is the same person as debtors.0"),
    "invalid_obligation": Refusal(422, "Invalid input", "credit_limit: required for credit_card"),
    "invalid_cursor": Refusal(422, "Invalid input", "cursor is not one this API returned"),
    "invalid_role": Refusal(422, "Invalid input", "role must be lender, collector or regulator"),
    "invalid_consent": Refusal(422, "Invalid input", "a consent lasts at most 90 days"),
    "unknown_institution": Refusal(422, "Invalid input", "no lender or collector with that id"),
    "empty_report": Refusal(422, "Invalid input", "the report is empty"),
    "invalid_query": Refusal(422, "Invalid input", "give exactly one of leaf_index and leaf_hash"),
    "invalid_hash": Refusal(422, "Invalid input", "leaf_hash must be the base64 of 32 bytes"),
    "invalid_tree_size": Refusal(422, "Invalid input", "tree_size 90 is larger than the tree (52)"),
    "invalid_leaf_index": Refusal(422, "Invalid input", "leaf_index must be below tree_size 52"),
    "invalid_range": Refusal(422, "Invalid input", "need 0 <= start <= end"),
    "invalid_as_of": Refusal(422, "Invalid input",
                             "an answer as of a past moment is asked for with purpose complaint or supervision"),
    "rate_limited": Refusal(429, "Too many requests",
                            "more than 500 exposure queries per second; retry after the wait given"),
    "quota_exceeded": Refusal(429, "Too many requests",
                              "the daily quota of 100000 exposure answers is used up until 00:00 UTC"),
    "attested_rate_limited": Refusal(429, "Too many requests", "more than 20 exposure queries per second with "
                                     "attested consents; retry after the wait given"),
    "attested_quota_exceeded": Refusal(429, "Too many requests", "the daily quota of 2000 exposure answers with "
                                       "attested consents is used up until 00:00 UTC"),
    "reference_reused": Refusal(409, "Conflict", "this evidence reference names another consent of this "
                                "institution, for another person; each signed application has its own reference"),
    "invalid_key": Refusal(422, "Invalid input", "only Ed25519 and P-256 public keys are accepted"),
    "key_exists": Refusal(409, "Conflict", "this key, or this kid for this institution, is already registered"),
    "dispute_open": Refusal(409, "Conflict", f"you already have an open dispute on this debt: {ex.DISPUTE_ID}"),
    "dispute_closed": Refusal(409, "Conflict", "the dispute is already upheld"),
    "dispute_not_upheld": Refusal(409, "Conflict", "a statement can be added once the creditor has upheld the "
                                                   "line; the dispute is open"),
    "statement_too_long": Refusal(422, "Invalid input", "the statement has 212 words; at most 200 are shown"),
    "invalid_credit_ban": Refusal(422, "Invalid input", "`until` must be in the future"),
    "webhook_url_refused": Refusal(422, "Invalid input", "the webhook URL is refused: the host resolves to a "
                                                         "private address"),
    "invalid_events": Refusal(422, "Invalid input", "unknown event types: consent.changed"),
    "dispute_not_found": Refusal(422, "Invalid input", "corrects_dispute: no open dispute with that id on this line"),
    "request_timeout": Refusal(408, "Request timeout", "no part of the request body arrived for 15 seconds"),
    "upload_expired": Refusal(409, "Conflict", "the upload expired before its last byte; send it again"),
    "concurrency_limited": Refusal(429, "Too many requests", "this institution already has 16 requests in flight; "
                                                             "retry when one has ended"),
    "limits_unavailable": Refusal(503, "Limits unavailable", "the store of the shared limits did not answer; nothing "
                                                             "was changed, retry shortly"),
    "database_unavailable": Refusal(503, "Database unavailable",
                                    "the database did not answer in time; nothing was changed, retry shortly"),
    "unsupported_media_type": Refusal(
        415, "Unsupported media type",
        "send the body as JSON, with Content-Type: application/json (this request's was text/plain)"),
}
OAUTH_ERRORS = ("invalid_request", "unsupported_grant_type", "invalid_client")  # RFC 6749 section 5.2
# What a bare status stands for. Any authenticated route can meet an ID token that fails (invalid_id_token).
GENERAL: dict[int, tuple[str, ...]] = {
    401: ("unauthenticated", "invalid_id_token"),
    403: ("forbidden",),
    404: ("not_found",),
    410: ("retracted",),
    412: ("precondition_failed",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    422: ("validation_error",),
    429: ("rate_limited",),
}
STATUS_TEXT = {400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found", 408: "Timeout",
               409: "Conflict", 410: "Gone", 412: "Precondition failed", 413: "Payload too large",
               415: "Unsupported media type", 422: "Invalid input", 429: "Too many requests", 503: "Unavailable"}  # fmt: skip
# Refusals any route of a kind can meet, added to every such operation of the document by construction, so
# an operation added later cannot leave them out (SPEC section 8): a caller with a token may be over its
# institution's bound; a body may stop arriving; the database, or the store of the limits the server
# processes share (SPEC section 7), may not answer in time; a JSON body may come
# as something else (register/api/problems.py).
AUTHENTICATED_REFUSALS = ("concurrency_limited", "database_unavailable", "limits_unavailable")
BODY_REFUSALS = ("request_timeout",)
JSON_BODY_REFUSALS = GENERAL[415]


def problem_example(code: str) -> dict[str, Any]:
    r = REFUSALS[code]
    body: dict[str, Any] = {
        "type": f"https://register.example/problems/{code}", "title": r.title, "status": r.status,
        "detail": r.detail, "code": code, "request_id": ex.REQUEST_ID,
    }  # fmt: skip
    if code == "validation_error":
        body["errors"] = [{"loc": ["body", "balance"], "msg": "Input should be a valid integer", "type": "int_type"}]
    elif code in OAUTH_ERRORS:
        body["error"], body["error_description"] = code, r.detail
    elif code == "invalid_national_id":
        body["errors"] = [{"loc": ["body", "debtors", 0, "national_id"], "msg": "invalid check digit"}]
    elif code.startswith("consent_") or REFUSALS[code].status == 429:
        body["receipt"] = ex.RECEIPT  # refused exposure queries are logged, and carry a receipt too
    return body


def errors(*codes: int | str, models: dict[int, type[BaseModel]] | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status it can refuse with, and each code under it."""
    by_status: dict[int, list[str]] = {}
    for item in codes:
        for code in GENERAL[item] if isinstance(item, int) else (item,):
            listed = by_status.setdefault(REFUSALS[code].status, [])
            if code not in listed:
                listed.append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, listed in sorted(by_status.items()):
        response: dict[str, Any] = {
            "model": (models or {}).get(status, Problem),
            "description": f"{STATUS_TEXT[status]}: " + ", ".join(f"`{c}`" for c in listed),
            "content": {PROBLEM: {"examples": {c: {"$ref": f"#/components/examples/{c}"} for c in listed}}},
        }  # fmt: skip
        if status == 401 and set(listed) & set(GENERAL[401]):
            response["headers"] = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
        elif status == 429:
            response["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
        responses[status] = response
    return responses


def example_response(example: Any, media_type: str = "application/json", description: str | None = None) -> dict:
    """A success response whose example lives at the media type (routes without a response model)."""
    response: dict[str, Any] = {"content": {media_type: {"example": example}}}
    if description:
        response["description"] = description
    return response


def install_openapi(app: FastAPI) -> None:
    """Serve error responses as `application/problem+json`: FastAPI files a response model's schema
    under the route's media type (application/json); move a Problem schema to where the examples are.
    The examples themselves are written once, under components/examples, and referenced."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()  # cached by FastAPI in app.openapi_schema; adjusted in place, once
            for operation in (op for item in doc.get("paths", {}).values() for op in item.values()):
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    for media_type in [m for m in content if m != PROBLEM and _is_problem(content[m])]:
                        content[PROBLEM] = {**content.pop(media_type), **content.get(PROBLEM, {})}
            for path, item in doc.get("paths", {}).items():
                for operation in item.values():
                    _add_common_refusals(path, operation)
            _restore_nulls(doc)
            doc.setdefault("components", {})["examples"] = {
                code: {"summary": r.title, "value": problem_example(code)} for code, r in REFUSALS.items()
            }
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _add_common_refusals(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    codes: list[str] = []
    if "401" in responses and path != "/v1/oauth/token":
        codes += AUTHENTICATED_REFUSALS
    if "requestBody" in operation:
        codes += BODY_REFUSALS
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        codes += JSON_BODY_REFUSALS
    for status, response in errors(*codes).items():
        key = str(status)
        examples = response["content"][PROBLEM]["examples"]
        if key not in responses:
            schema = {"$ref": "#/components/schemas/Problem"}
            responses[key] = {**response, "content": {PROBLEM: {"schema": schema, "examples": examples}}}
            responses[key].pop("model")
            continue
        content = responses[key].setdefault("content", {}).setdefault(PROBLEM, {})
        known = content.setdefault("examples", {})
        added = [code for code in examples if code not in known]
        known.update({code: examples[code] for code in added})
        if added:
            responses[key]["description"] += ", " + ", ".join(f"`{c}`" for c in added)


# Where the document's component schemas are defined, searched in this order.
MODEL_MODULES = (schemas, lookup_schemas, obligation)


def component_model(name: str) -> Any:
    """The model a component schema of the document was made from, or None."""
    return next((m for m in (getattr(mod, name, None) for mod in MODEL_MODULES) if m is not None), None)


def _restore_nulls(doc: dict[str, Any]) -> None:
    """FastAPI drops every null from the document, examples' too, and an answer's example without its
    null fields no longer matches its own schema (they are required and nullable): put them back."""
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        model = component_model(name)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        extra = model.model_config.get("json_schema_extra")
        if "examples" in schema and isinstance(extra, dict) and "examples" in extra:
            schema["examples"] = extra["examples"]


PROBLEM_SCHEMAS = ("Problem", "ProblemWithReceipt", "OAuthProblem")


def _is_problem(media: dict[str, Any]) -> bool:
    return media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1] in PROBLEM_SCHEMAS


def dump(doc: dict[str, Any]) -> str:
    """Stable formatting for the checked-in file: sorted keys, indent 2, a trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


TAGS = [
    {"name": "institutions", "description": "Lenders, collectors and regulators, registered by the operator."},
    {"name": "oauth", "description": "Institution sign-in: OAuth2 client credentials with a signed JWT assertion."},
    {"name": "obligations", "description": "Report, read and retract debts, one at a time; every change is versioned."},
    {"name": "reports", "description": "Batch reports: a whole file of obligations, processed in the background."},
    {"name": "consents", "description": "A person's consent to one institution's look, for one purpose, for a time."},
    {"name": "exposure", "description": "A person's total debt, for a lender holding their consent. Always logged."},
    {"name": "me", "description": "A signed-in person's own debts, consents, access log, disputes and credit ban."},
    {"name": "disputes", "description": "A creditor's disputes: the person says a line is wrong; answer in time."},
    {"name": "audit", "description": "The access log as a transparency log: events, checkpoints, proofs."},
    {"name": "events", "description": "An institution's feed of changes that concern it, sequence-numbered."},
    {"name": "webhooks", "description": "The same events pushed to an institution's endpoint, signed per Standard "
                                        "Webhooks."},
    {"name": "operations", "description": "Health, liveness and metrics. No authentication."},
]
