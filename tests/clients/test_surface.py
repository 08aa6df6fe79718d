"""The SDK's public surface: what `register_client` exports is pinned here (as httpx pins its own), it
imports nothing from the register, and needs only httpx and pydantic at runtime."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import register_client
from register_client import (
    APIError,
    AsyncRegisterClient,
    BadRequest,
    Conflict,
    ConsentExpired,
    ConsentMismatch,
    ConsentMissing,
    ConsentRequired,
    ConsentRevoked,
    DisputeClosed,
    DisputeNotFound,
    DisputeNotUpheld,
    DisputeOpen,
    Forbidden,
    InvalidClient,
    InvalidCreditBan,
    InvalidInput,
    InvalidNationalId,
    InvalidRequest,
    NotFound,
    RegisterClient,
    RegisterError,
    ServerError,
    ServiceUnavailable,
    StaleUpdate,
    StatementTooLong,
    TransportError,
    UnsupportedMediaType,
    _exceptions,
)
from register_client._exceptions import error_class

PACKAGE = Path(register_client.__file__).parent

EXPORTED = [
    "APIError", "AccessEvent", "AccessEventPage", "AsyncRegisterClient", "AttestedConsent", "BadRequest",
    "Checkpoint", "CheckpointList", "Collections", "Collects", "CollectsRef", "Conflict", "ConnectError", "Consent",
    "ConsentEvidence", "ConsentExpired", "ConsentGrant", "ConsentList", "ConsentMismatch", "ConsentMissing",
    "ConsentRequired", "ConsentRevoked", "ConsistencyProof", "Contact", "CreditBan", "Creditor", "Debtor",
    "Dispute", "DisputeAnswer", "DisputeClosed", "DisputeCreditor", "DisputeList", "DisputeNotFound",
    "DisputeNotUpheld", "DisputeOpen", "DuplicateDebtor", "EmptyReport", "EventProof", "EventSearch", "Exposure",
    "ExposureLine", "ExposureQuery", "Forbidden", "HandedTo", "HandedToRef", "IdempotencyConflict", "InclusionProof", "Institution",
    "InstitutionCreate", "InstitutionCreated", "InstitutionList", "InvalidClient", "InvalidConsent", "InvalidCreditBan",
    "InvalidCursor", "InvalidIdToken", "InvalidInput", "InvalidNationalId", "InvalidObligation", "InvalidRequest",
    "Leaves", "LogKey", "MaskedDebtor", "MyCreditor", "MyDisputeRef", "MyLine", "MyObligations", "NO_RETRY",
    "NotFound", "NotYetIntegrated", "Obligation", "ObligationHistory", "ObligationPage", "ObligationReport",
    "ObligationVersion", "PayloadTooLarge", "PreconditionFailed", "Problem", "ProtocolError", "RateLimited",
    "Receipt", "RegisterClient", "RegisterError", "RegistrationConsent", "Report", "ReportLine", "ReportLineError",
    "Retracted", "Retry", "RetryNotice", "ServerError", "ServiceUnavailable", "StaleUpdate", "StatementTooLong",
    "Subject", "Timeout", "Totals", "RequestTimeout", "ConcurrencyLimited", "DatabaseUnavailable", "TransportError", "Unauthenticated", "UnsupportedMediaType", "UploadProgress", "ValidationFailed",
    "__version__",
    "AttestationCounts", "InstitutionLookups", "InstitutionRef", "LookupCounts", "LookupsByKind", "ReferenceReused",
    "AsOfNotAllowed", "ExposureAsOf", "Shredded", "StoredAnswer", "StoredExposure",
    "KeptCreditor", "KeptLine", "MyRetention", "RulePeriod", "KeptNotices", "Notifications", "NotificationsSet",
    "ArrearsRow", "Cell", "CollectionRow", "DisputesRow", "LinesRow", "LookupsRow", "Statistics",
    "Signal", "Signals", "EvidenceProof",
    "Delivery", "DeliveryPage", "Event", "EventPage", "Webhook", "WebhookCreate", "WebhookEvent", "WebhookList",
    "WebhookSecret", "WebhookVerificationError", "WebhookUrlRefused", "verify_webhook",
    "ActivityDisputes", "ActivityInstitution", "ActivityLookups", "ActivityReporting", "FollowUp",
    "InstitutionActivity", "LastFile", "LookupDay", "OfficeHours", "Spike",
]


class TestPublicSurface:
    def test_all_is_pinned(self):
        assert sorted(register_client.__all__) == sorted(EXPORTED)

    def test_every_export_exists_and_claims_the_package(self):
        for name in register_client.__all__:
            obj = getattr(register_client, name)
            if inspect.isclass(obj):
                assert obj.__module__.startswith("register_client"), name

    def test_the_clients_have_the_same_methods(self):
        def public(cls):
            return {n for n in vars(cls) if not n.startswith("_")} - {"close", "aclose"}

        assert public(RegisterClient) == public(AsyncRegisterClient)

    def test_the_sdk_imports_only_httpx_and_pydantic(self):
        allowed_cli = {"typer", "rich", "register_verifier"}  # the [cli] extra and the optional verifier
        for path in PACKAGE.glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    roots = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    roots = {node.module.split(".")[0]}
                else:
                    continue
                third_party = roots - {"httpx", "pydantic", "register_client", "__future__"} - _stdlib()
                if path.name in ("cli.py", "_render.py") or path.name.startswith("cli_"):  # the CLI and its modules
                    third_party -= allowed_cli
                if path.name == "keys.py":  # the [keys] extra; nothing else imports keys.py (next test)
                    third_party -= {"cryptography"}
                assert not third_party, f"{path.name} imports {third_party}"

    def test_only_the_key_sign_in_needs_cryptography(self):
        """`register_client.keys` is imported by the user (or by the CLI for --key, lazily), never by the
        package itself: the plain SDK must import without the `keys` extra (tests/clients/test_keys.py
        runs it with cryptography blocked)."""
        for path in PACKAGE.glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module == "register_client.keys":
                    assert path.name == "cli.py" and node.col_offset > 0, f"{path.name} imports keys at the top"
                if isinstance(node, ast.Import):
                    assert "register_client.keys" not in {a.name for a in node.names}, path.name


def _stdlib() -> set[str]:
    import sys

    return set(sys.stdlib_module_names)


class TestErrorTree:
    """The class is chosen by the problem's code, then by its status."""

    def test_everything_is_a_register_error(self):
        assert issubclass(APIError, RegisterError) and issubclass(TransportError, RegisterError)

    @pytest.mark.parametrize(("status", "code", "cls"), [
        (403, "consent_missing", ConsentMissing),
        (409, "stale_update", StaleUpdate),
        (422, "invalid_national_id", InvalidNationalId),
        (422, "a_code_added_later", InvalidInput),  # still caught as a 422
        (403, "a_code_added_later", Forbidden),
        (503, "unavailable", ServiceUnavailable),
        (503, "database_unavailable", register_client.DatabaseUnavailable),
        (429, "concurrency_limited", register_client.ConcurrencyLimited),
        (408, "request_timeout", register_client.RequestTimeout),
        (502, None, ServerError),
        (418, None, APIError),
        (400, "consent_missing", BadRequest),  # a code at an unexpected status: by status
        (409, "dispute_closed", DisputeClosed),
        (409, "dispute_open", DisputeOpen),
        (409, "dispute_not_upheld", DisputeNotUpheld),
        (422, "dispute_not_found", DisputeNotFound),
        (422, "statement_too_long", StatementTooLong),
        (422, "invalid_credit_ban", InvalidCreditBan),
        (401, "invalid_client", InvalidClient),
        (415, "unsupported_media_type", UnsupportedMediaType),
        (415, None, UnsupportedMediaType),
    ])
    def test_mapping(self, status, code, cls):
        assert error_class(status, code) is cls

    def test_dispute_codes_are_on_their_status_branches(self):
        for cls in (DisputeClosed, DisputeOpen, DisputeNotUpheld):
            assert cls.__mro__[1] is Conflict, cls
        for cls in (DisputeNotFound, StatementTooLong, InvalidCreditBan):
            assert cls.__mro__[1] is InvalidInput, cls
        # dispute_not_found is about a report's corrects_dispute (422), not a missing dispute (404)
        assert not issubclass(DisputeNotFound, NotFound)

    def test_the_tree_is_documented_in_one_place(self):
        classes = [v for v in vars(_exceptions).values() if inspect.isclass(v) and issubclass(v, RegisterError)]
        for cls in classes:
            documented = re.search(rf"(^|\s){cls.__name__}\s", _exceptions.__doc__, re.MULTILINE)
            assert documented, f"{cls.__name__} is missing from the documented tree"
            assert cls.__name__ in register_client.__all__

    def test_consent_codes_share_a_parent(self):
        for cls in (ConsentMissing, ConsentExpired, ConsentRevoked, ConsentMismatch):
            assert cls.__mro__[1] is ConsentRequired, cls
        assert issubclass(ConsentRequired, Forbidden)

    def test_input_refused_before_sending_is_in_the_tree(self):
        assert issubclass(InvalidRequest, RegisterError) and not issubclass(InvalidRequest, APIError)
        assert issubclass(InvalidRequest, ValueError)  # as the pydantic error it replaces was
