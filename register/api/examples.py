"""Examples for the OpenAPI document: one consistent story, told in requests and answers.

Nordbank (a lender) reports a loan of a Finnish person, the person consents, Nordbank asks for the
exposure, the regulator reads the log. The identity numbers are from Finland's official test range
(individual numbers 900-999): valid check characters, nobody's, and accepted only when
`REGISTER_ACCEPT_TEST_IDENTITIES=true`. The signed notes are real signatures by a throwaway example key
(`LOG_KEY["vkey"]`), so a verifier can be tried on them. Tests validate every example against its model.
"""

from __future__ import annotations

from typing import Any

PERSON = "150685-901H"  # FI test range
PERSON_MASKED = "150685-****"
CO_DEBTOR = "150685-902J"  # FI test range
GUARANTOR = "030391-903Y"  # FI test range

NORDBANK = "3f1c2a9e-5b7d-4e8a-9c61-2d4f8e0b7a15"
INKASSO = "9b2e7c41-0a6d-4f3e-8b15-c7d9e2f4a608"
OBLIGATION_ID = "7a0e4c2b-1d3f-4b5a-8e6c-9f2d1a3b4c5d"
CONSENT_ID = "c4b1e2d3-6f7a-4a8b-9c0d-1e2f3a4b5c6d"
EVENT_ID = "e1d2c3b4-a5f6-4789-8abc-def012345678"
EXPOSURE_ID = "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
REPORT_ID = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
REQUEST_ID = "8c1f0d7e-2b3a-4c5d-9e6f-7a8b9c0d1e2f"

LEAF_HASH = "n5EWH0NDPkmm3m22gNefYBWfLkrJFyYhoShGQoFYRAs="
ROOT_HASH = "SBNJTRN+FjG7owHVrKtue7eqdM4RhdRWVl71HXN2d7I="
PROOF = [
    "9kVR/NbweCPLh5cc+5FEZCXaGChrOrHvk14MvXpp9oo=",
    "OUbKZP942TymEJCkN8u2s9LKDUiPX5zPMFlgg2iydpM=",
    "Q7sA0M53kKU7kSVrNwyIeyR5GlU5pvv7cMWHDoyRrl0=",
]

# --- institutions --------------------------------------------------------------------------------

INSTITUTION_CREATE = {"name": "Nordbank Oyj", "role": "lender", "org_number": "1234567-8", "country": "FI",
                      "contact": {"phone": "+358 10 000 0000", "email": "asiakaspalvelu@nordbank.example",
                                  "url": "https://nordbank.example"}}
INSTITUTION_CREATED = {
    "id": NORDBANK, "name": "Nordbank Oyj", "role": "lender",
    "token": "rgt_Ex4mpleT0ken-shown-once_the-register-keeps0",
}  # fmt: skip
INSTITUTION = {
    "id": NORDBANK, "name": "Nordbank Oyj", "role": "lender", "org_number": "1234567-8", "country": "FI",
    "created_at": "2026-01-05T09:12:44Z",
}  # fmt: skip
INSTITUTIONS = {"items": [INSTITUTION]}

# --- institution sign-in (OAuth2 client credentials, private_key_jwt) ----------------------------------

# Public keys of throwaway example key pairs (their private halves were discarded); CLIENT_ASSERTION is
# signed by the Ed25519 one.
ED25519_JWK = {"kty": "OKP", "crv": "Ed25519", "x": "CT9_rHDSZAhc8vYGo7bGTndBQ0QwMQaa3SrYbAOSlpM"}
ED25519_THUMBPRINT = "UXEd6IyB6RI6SrnUdwsezPEEoVyVfQadi_vZUBxajtk"
ED25519_PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEACT9/rHDSZAhc8vYGo7bGTndBQ0QwMQaa3SrYbAOSlpM=\n-----END PUBLIC KEY-----\n"
P256_PEM = (
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHTOfW14/5TeIFBdyOvZMjN8uJxBY\n"
    "oqMcv6WRekAVurtPokvykOBTBWpHwAJ+Uo8hXsxVmkssUN4dBCwafNnkPw==\n-----END PUBLIC KEY-----\n"
)
KEY_CREATE = {"jwk": ED25519_JWK}
KEY_CREATES: dict[str, dict[str, Any]] = {
    "jwk": {"summary": "An Ed25519 key as a JWK; its kid defaults to the RFC 7638 thumbprint", "value": KEY_CREATE},
    "pem": {"summary": "A P-256 key as PEM, with a kid of the bank's choosing",
            "value": {"pem": P256_PEM, "kid": "nordbank-2026-11"}},
}  # fmt: skip
INSTITUTION_KEY = {
    "kid": ED25519_THUMBPRINT, "algorithm": "EdDSA", "thumbprint": ED25519_THUMBPRINT, "public_key": ED25519_PEM,
    "created_at": "2026-11-02T08:00:00Z", "revoked_at": None,
}  # fmt: skip
INSTITUTION_KEYS = {"items": [INSTITUTION_KEY]}
INSTITUTION_KEY_REVOKED = {**INSTITUTION_KEY, "revoked_at": "2026-11-20T16:30:00Z", "access_tokens_revoked": 2}
ACCESS_TOKENS_REVOKED = {"institution_id": NORDBANK, "access_tokens_revoked": 3}
TOKEN_AUDIENCE = "https://register.example/v1/oauth/token"
CLIENT_ASSERTION = (  # a real EdDSA signature by the example key: iss = sub = NORDBANK, aud, iat, exp, jti
    "eyJhbGciOiJFZERTQSIsImtpZCI6IlVYRWQ2SXlCNlJJNlNyblVkd3NlelBFRW9WeVZmUWFkaV92WlVCeGFqdGsiLCJ0eXAiOiJKV1Qi"
    "fQ.eyJpc3MiOiIzZjFjMmE5ZS01YjdkLTRlOGEtOWM2MS0yZDRmOGUwYjdhMTUiLCJzdWIiOiIzZjFjMmE5ZS01YjdkLTRlOGEtOWM2M"
    "S0yZDRmOGUwYjdhMTUiLCJhdWQiOiJodHRwczovL3JlZ2lzdGVyLmV4YW1wbGUvdjEvb2F1dGgvdG9rZW4iLCJpYXQiOjE3OTQ5ODg4M"
    "DAsImV4cCI6MTc5NDk4ODg2MCwianRpIjoiOWQ1ZjJlNGEtM2IxYy00ZDdlLThmMGEtMWIyYzNkNGU1ZjZhIn0.5hJcbqc7zGC4G6vJ-"
    "KpvaSo1-qd8Y6yGCRyw_6ER0rpyzMRakwpteb4MkVyNJdy0wKvvuI4QofISG1q7LeqrDw"
)
TOKEN_REQUEST = (
    "grant_type=client_credentials"
    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    f"&client_assertion={CLIENT_ASSERTION}"
)
ACCESS_TOKEN = {"access_token": "rat_Ex4mpleAcc3ssT0ken-valid-for-five-minutes0", "token_type": "Bearer",
                "expires_in": 300}  # fmt: skip
AUTHORIZATION_SERVER = {
    "issuer": "https://register.example", "token_endpoint": "https://register.example/v1/oauth/token",
    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    "token_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA"],
    "grant_types_supported": ["client_credentials"], "response_types_supported": [],
    "client_assertion_audience": TOKEN_AUDIENCE,
}  # fmt: skip

# --- obligations ---------------------------------------------------------------------------------

REGISTRATION_CONSENT = {"reference": "AGR-2025-0042", "given_at": "2025-02-27T14:05:00Z", "method": "e_signature"}

OBLIGATION_REPORTS: dict[str, dict[str, Any]] = {
    "instalment_loan": {
        "summary": "An instalment loan with one debtor",
        "value": {
            "kind": "instalment_loan",
            "debtors": [{"country": "FI", "national_id": PERSON, "role": "primary"}],
            "currency": "EUR", "original_amount": 1500000, "balance": 1240000, "monthly_payment": 32000,
            "interest_rate_bp": 690, "opened_on": "2025-03-01", "matures_on": "2030-03-01", "status": "current",
            "registration_consent": REGISTRATION_CONSENT, "as_of": "2026-11-01T00:00:00Z",
        },
    },
    "joint_mortgage": {
        "summary": "A mortgage of two debtors with a guarantor",
        "value": {
            "kind": "mortgage",
            "debtors": [
                {"country": "FI", "national_id": PERSON, "role": "primary"},
                {"country": "FI", "national_id": CO_DEBTOR, "role": "co_debtor"},
                {"country": "FI", "national_id": GUARANTOR, "role": "guarantor"},
            ],
            "currency": "EUR", "original_amount": 24000000, "balance": 21850000, "monthly_payment": 98000,
            "interest_rate_bp": 412, "opened_on": "2021-06-15", "matures_on": "2046-06-15", "status": "current",
            "registration_consent": {"reference": "MTG-2021-7781", "given_at": "2021-06-10T10:00:00Z",
                                     "method": "e_signature"},
            "as_of": "2026-11-01T00:00:00Z",
        },
    },
    "credit_card": {
        "summary": "A credit card, overdue (credit_limit is required for revolving kinds)",
        "value": {
            "kind": "credit_card",
            "debtors": [{"country": "FI", "national_id": PERSON, "role": "primary"}],
            "currency": "EUR", "balance": 184500, "credit_limit": 300000, "monthly_payment": 9000,
            "status": "overdue", "overdue_amount": 18000, "days_past_due": 45,
            "registration_consent": {"reference": "CARD-88812", "given_at": "2024-09-02T12:30:00Z",
                                     "method": "signed_application"},
            "as_of": "2026-11-01T00:00:00Z",
        },
    },
    "handed_to": {
        "summary": "The card's creditor hands it to a collector: it names the claim that now holds it",
        "value": {
            "kind": "credit_card",
            "debtors": [{"country": "FI", "national_id": PERSON, "role": "primary"}],
            "currency": "EUR", "balance": 196000, "credit_limit": 300000, "monthly_payment": 0,
            "status": "in_collection", "overdue_amount": 196000, "days_past_due": 130,
            "handed_to": {"institution_id": INKASSO, "external_ref": "INK-2026-5531"},
            "registration_consent": {"reference": "CARD-88812", "given_at": "2024-09-02T12:30:00Z",
                                     "method": "signed_application"},
            "as_of": "2026-11-10T07:00:00Z",
        },
    },
    "collection_claim": {
        "summary": "A collector's claim on that card: counted once in exposure, as the claim, because the card's "
                   "creditor names it back in handed_to (collectors only)",
        "value": {
            "kind": "collection_claim",
            "debtors": [{"country": "FI", "national_id": PERSON, "role": "primary"}],
            "currency": "EUR", "balance": 212000, "status": "in_collection", "overdue_amount": 212000,
            "days_past_due": 130, "original_creditor": "Nordbank Oyj",
            "collects": {"institution_id": NORDBANK, "external_ref": "CARD-88812"},
            "registration_consent": {"reference": "CARD-88812", "given_at": "2024-09-02T12:30:00Z",
                                     "method": "signed_application"},
            "as_of": "2026-11-10T08:00:00Z",
        },
    },
}

OBLIGATION = {
    "id": OBLIGATION_ID, "external_ref": "LOAN-2025-0042", "institution_id": NORDBANK, "kind": "instalment_loan",
    "debtors": [{"country": "FI", "role": "primary", "national_id_masked": PERSON_MASKED}],
    "currency": "EUR", "original_amount": 1500000, "balance": 1240000, "credit_limit": None,
    "monthly_payment": 32000, "interest_rate_bp": 690, "opened_on": "2025-03-01", "matures_on": "2030-03-01",
    "status": "current", "overdue_amount": 0, "days_past_due": 0, "original_creditor": None, "collects": None,
    "handed_to": None, "collection_link": None, "registration_consent": REGISTRATION_CONSENT, "as_of": "2026-11-01T00:00:00Z", "version": 3,
    "created_at": "2025-03-01T08:00:12Z", "updated_at": "2026-11-01T02:10:44Z", "retracted_at": None,
    "retraction_reason": None,
}  # fmt: skip
OBLIGATIONS = {"items": [OBLIGATION], "next_cursor": "MjAyNi0xMS0wMVQwMjoxMDo0NFp8N2EwZTRjMmI"}
OBLIGATION_HISTORY = {
    "external_ref": "LOAN-2025-0042",
    "collection_link": None,
    "versions": [
        {
            "version": 3, "change": "updated", "institution_id": NORDBANK, "request_id": REQUEST_ID,
            "recorded_at": "2026-11-01T02:10:44Z", "as_of": "2026-11-01T00:00:00Z",
            "state": {
                "kind": "instalment_loan", "currency": "EUR", "balance": 1240000, "status": "current",
                "debtors": [{"country": "FI", "role": "primary", "national_id_masked": PERSON_MASKED}],
            },
        },
    ],
}  # fmt: skip

# --- batch reports -------------------------------------------------------------------------------

REPORT_NDJSON = (
    '{"external_ref": "LOAN-2025-0042", "kind": "instalment_loan", "debtors": [{"country": "FI", "national_id": '
    f'"{PERSON}", "role": "primary"}}], "currency": "EUR", "balance": 1240000, "status": "current", '
    '"registration_consent": {"reference": "AGR-2025-0042", "given_at": "2025-02-27T14:05:00Z", '
    '"method": "e_signature"}, "as_of": "2026-11-01T00:00:00Z"}\n'
)
REPORT_CSV = (
    "external_ref,kind,currency,balance,status,debtors,registration_consent_reference,"
    "registration_consent_given_at,registration_consent_method,as_of\n"
    f"LOAN-2025-0042,instalment_loan,EUR,1240000,current,FI:{PERSON}:primary,AGR-2025-0042,"
    "2025-02-27T14:05:00Z,e_signature,2026-11-01T00:00:00Z\n"
)
REPORT = {
    "id": REPORT_ID, "status": "done", "mode": "delta", "format": "ndjson", "received_at": "2026-11-23T02:00:04Z",
    "started_at": "2026-11-23T02:00:05Z", "finished_at": "2026-11-23T02:03:41Z", "bytes": 512000000,
    "lines_read": 1000000, "accepted": 41250, "unchanged": 958700, "rejected": 50, "unreported": 0,
    "progress": 1.0, "lines_per_second": 4629.6, "elapsed_seconds": 216.0, "error": None,
}  # fmt: skip
REPORT_ERRORS = (
    '{"line": 17, "code": "invalid_national_id", "detail": "debtors.0.national_id is not a valid FI identity '
    'number: invalid check digit"}\n'
    '{"line": 912, "code": "stale_update", "detail": "as_of 2026-10-01T00:00:00+00:00 is older than the stored '
    '2026-11-01T00:00:00+00:00"}\n'
)

# --- consents ------------------------------------------------------------------------------------

CONSENT_CREATE = {"institution_id": NORDBANK, "purpose": "credit_application", "expires_at": "2026-12-21T00:00:00Z"}
ATTESTED_CONSENT_CREATE = {
    "country": "FI", "national_id": PERSON, "purpose": "credit_application", "expires_at": "2026-12-21T00:00:00Z",
    "evidence": {
        "method": "signed_application", "reference": "APP-2026-11-5531", "signed_at": "2026-11-23T09:41:00Z",
        "document_sha256": "139d544b821b13ebea14f1b0fe18577222e415c2966e3a3511c4196055232202",
    },
}  # fmt: skip
CONSENT = {
    "id": CONSENT_ID, "institution_id": NORDBANK, "institution_name": "Nordbank Oyj", "purpose": "credit_application",
    "source": "consumer", "attested": False, "evidence": None, "granted_at": "2026-11-23T09:30:00Z",
    "expires_at": "2026-12-21T00:00:00Z", "revoked_at": None, "active": True, "subject": None,
}  # fmt: skip
CONSENTS = {"items": [CONSENT]}

# --- exposure ------------------------------------------------------------------------------------

EXPOSURE_REQUEST = {"country": "FI", "national_id": PERSON, "purpose": "credit_application", "consent_id": CONSENT_ID}

_TOTALS = {
    "balance": 1424500, "credit_limit": 300000, "unused_credit": 115500, "monthly_payments": 41000,
    "overdue_amount": 18000, "obligations": 2, "creditors": 1,
}  # fmt: skip
_LOAN_LINE = {
    "id": OBLIGATION_ID, "creditor": {"id": NORDBANK, "name": "Nordbank Oyj"}, "kind": "instalment_loan",
    "role": "primary", "joint": False, "currency": "EUR", "balance": 1240000, "credit_limit": None,
    "monthly_payment": 32000, "overdue_amount": 0, "status": "current", "days_past_due": 0,
    "as_of": "2026-11-01T00:00:00Z", "stale": False, "disputed": False, "statement": None, "counted": True,
    "collects": None, "collected_by": None, "collection_link": None,
}  # fmt: skip
_CARD_LINE = {
    **_LOAN_LINE, "id": "2c5e8a1f-4b7d-4c9e-a3f6-8d1b4e7a2c5f", "kind": "credit_card", "balance": 184500,
    "credit_limit": 300000, "monthly_payment": 9000, "overdue_amount": 18000, "status": "overdue",
    "days_past_due": 45, "disputed": True,
}  # fmt: skip
_BY_KIND = {
    "instalment_loan": {"EUR": {**_TOTALS, "balance": 1240000, "credit_limit": 0, "unused_credit": 0,
                                "monthly_payments": 32000, "overdue_amount": 0, "obligations": 1}},
    "credit_card": {"EUR": {**_TOTALS, "balance": 184500, "monthly_payments": 9000, "obligations": 1}},
}  # fmt: skip
RECEIPT = {
    "event_id": EVENT_ID, "leaf_hash": LEAF_HASH, "occurred_at": "2026-11-23T13:20:00.000000Z",
    "max_merge_delay_seconds": 10,
    "note": (
        f"register.local/access-log/receipt\n{EVENT_ID}\n{LEAF_HASH}\nTimestamp: 1795440000\nMax-Merge-Delay: 10\n\n"
        "\u2014 register.local/access-log egdgsTQy8ywUAIJP5gP9H5dmYdmf/8RuY8T4ojYA6dk0ls8ZdadWncI2UqP10LEnwgqeXvLjp"
        "/m19Aa24k2QPYyzbA8=\n"
    ),
}  # fmt: skip
EXPOSURE = {
    "exposure_id": EXPOSURE_ID, "subject": {"country": "FI", "national_id_masked": PERSON_MASKED},
    "as_of": "2026-11-23T13:20:00Z", "purpose": "credit_application", "consent_id": CONSENT_ID,
    "consent_source": "consumer", "credit_ban": {"active": True, "since": "2026-11-20T08:00:00Z",
                                                 "reason": "identity_theft"},
    "totals": {"EUR": _TOTALS}, "by_kind": _BY_KIND, "contingent": {},
    "collections": {"count": 0, "amount": {}}, "obligations": [_LOAN_LINE, _CARD_LINE], "receipt": RECEIPT,
}  # fmt: skip
DISPUTE_ID = "7d3f9b2e-1a4c-4e8b-9f6d-2b5a8c1e4f7a"
_CONTACT = {"phone": "+358 10 000 0000", "email": "asiakaspalvelu@nordbank.example", "url": "https://nordbank.example"}
MY_OBLIGATIONS = {
    "subject": {"country": "FI", "national_id_masked": PERSON_MASKED}, "as_of": "2026-11-23T13:20:00Z",
    "credit_ban": {"active": False}, "totals": {"EUR": _TOTALS}, "by_kind": _BY_KIND, "contingent": {},
    "collections": {"count": 0, "amount": {}},
    "obligations": [
        {**_LOAN_LINE, "creditor": {**_LOAN_LINE["creditor"], **_CONTACT}, "dispute": None},
        {**_CARD_LINE, "creditor": {**_CARD_LINE["creditor"], **_CONTACT},
         "dispute": {"id": DISPUTE_ID, "state": "open", "deadline": "2026-12-23T13:20:00Z"}},
    ],
}  # fmt: skip

# --- disputes and the credit ban -----------------------------------------------------------------

DISPUTE_CREATE = {"obligation": "2c5e8a1f-4b7d-4c9e-a3f6-8d1b4e7a2c5f", "reason": "repaid",
                  "text": "I paid the card in full on 2 November; the payment is on my bank statement."}
DISPUTE_ANSWER = {"outcome": "corrected", "explanation": "The payment reached us late; the card is now shown as paid."}
DISPUTE = {
    "id": DISPUTE_ID, "obligation": "2c5e8a1f-4b7d-4c9e-a3f6-8d1b4e7a2c5f", "external_ref": "CARD-2291",
    "creditor": {"id": NORDBANK, "name": "Nordbank Oyj"}, "reason": "repaid", "text": DISPUTE_CREATE["text"],
    "state": "open", "opened_at": "2026-11-23T13:20:00Z", "deadline": "2026-12-23T13:20:00Z", "closed_at": None,
    "closed_by": None, "explanation": None, "statement": None, "statement_at": None,
}  # fmt: skip
REGULATOR_DISPUTES = {
    "items": [{"id": DISPUTE_ID, "institution_id": NORDBANK, "institution_name": "Nordbank Oyj",
               "obligation": "2c5e8a1f-4b7d-4c9e-a3f6-8d1b4e7a2c5f", "reason": "repaid", "state": "overdue",
               "opened_at": "2026-10-20T13:20:00Z", "deadline": "2026-11-19T13:20:00Z", "closed_at": None,
               "closed_by": None, "late": True}],
    "by_institution": [{"institution_id": NORDBANK, "name": "Nordbank Oyj", "open": 3, "overdue": 1, "answered": 12,
                        "answered_late": 2}],
}  # fmt: skip
INSTITUTION_LOOKUPS = {
    "institution": {"id": NORDBANK, "name": "Nordbank Oyj", "role": "lender"},
    "first_day": "2026-10-01", "last_day": "2026-10-31", "follow_up_days": 30, "as_of": "2026-11-23T13:20:00Z",
    "lookups": {
        "consumer": {"granted": 812, "refused": 9, "refused_by_reason": {"consent_expired": 9}, "followed_up": 603,
                     "without_follow_up": 209, "pending": 0},
        "attested": {"granted": 1940, "refused": 61, "refused_by_reason": {"attested_quota_exceeded": 61},
                     "followed_up": 88, "without_follow_up": 1852, "pending": 0},
        "no_consent": {"granted": 0, "refused": 4, "refused_by_reason": {"consent_missing": 4}, "followed_up": 0,
                       "without_follow_up": 0, "pending": 0},
    },
    "attestations": {"recorded": 1955, "refused": 12, "refused_by_reason": {"reference_reused": 12}},
}  # fmt: skip
CREDIT_BAN = {
    "active": True, "since": "2026-11-20T08:00:00Z", "reason": "identity_theft", "until": None,
    "lift_requested_at": "2026-11-23T13:20:00Z", "lift_effective_at": "2026-11-23T14:20:00Z",
}  # fmt: skip

# --- access log ----------------------------------------------------------------------------------

ACCESS_EVENT = {
    "id": EVENT_ID, "occurred_at": "2026-11-23T13:20:00Z", "actor_type": "institution", "actor_id": NORDBANK,
    "actor_name": "Nordbank Oyj", "actor_role": "lender", "action": "exposure:query",
    "purpose": "credit_application", "consent_id": CONSENT_ID, "outcome": "granted", "reason": None,
    "request_id": REQUEST_ID, "details": {"exposure_id": EXPOSURE_ID}, "leaf_index": 51,
}  # fmt: skip
ACCESS_EVENTS = {"items": [ACCESS_EVENT], "next_cursor": None}
EVENT_SEARCH = {
    "country": "FI", "national_id": PERSON, "action": "exposure:query", "since": "2026-11-01T00:00:00Z",
    "limit": 100,
}  # fmt: skip

LOG_KEY = {
    "origin": "register.local/access-log",
    "vkey": "register.local/access-log+7a0760b1+AWazCmIYvsvlp5oEvN7PTFU3nBB84eiNgc2MyeCb2WIV",
    "algorithm": "Ed25519",
    "public_key": "ZrMKYhi+y+WnmgS83s9MVTecEHzh6I2BzYzJ4JvZYhU=",
    "max_merge_delay_seconds": 10,
}
LOG_KEYS = {  # before any rotation: the first key alone (after one, each later key carries its handover note)
    "origin": LOG_KEY["origin"],
    "active": LOG_KEY["vkey"],
    "keys": [{"vkey": LOG_KEY["vkey"], "state": "active", "from_size": 0, "handover": None}],
}
CHECKPOINT = {
    "size": 52, "root_hash": ROOT_HASH, "timestamp": 1795440000,
    "note": (
        f"register.local/access-log\n52\n{ROOT_HASH}\nTimestamp: 1795440000\n\n"
        "\u2014 register.local/access-log egdgsdHxobZGU29qvbEkreOKPS6pLpi+UXYh5BJIfD2/753KU5Oaay7uN98XuGjdWt0oYllNIjF1"
        "BYCPpQplnPY0+A4=\n"
    ),
}  # fmt: skip
CHECKPOINTS = {"items": [CHECKPOINT]}
INCLUSION_PROOF = {"leaf_index": 51, "tree_size": 52, "leaf_hash": LEAF_HASH, "proof": PROOF}
CONSISTENCY_PROOF = {"first": 40, "second": 52, "proof": PROOF}
LEAVES = {
    "start": 0, "end": 1,
    "leaves": ["eyJhY3Rpb24iOiJvYmxpZ2F0aW9uOmNyZWF0ZWQiLCJ2IjoxfQ=="],
}  # fmt: skip
EVENT_PROOF = {
    "event_id": EVENT_ID, "leaf_index": 51, "leaf": "eyJhY3Rpb24iOiJleHBvc3VyZTpxdWVyeSIsInYiOjF9",
    "inclusion": INCLUSION_PROOF, "checkpoint": CHECKPOINT,
}  # fmt: skip

# --- operations ----------------------------------------------------------------------------------

HEALTHY = {"status": "ok", "database": "ok"}
UNHEALTHY = {"status": "unavailable", "database": "unreachable"}
ALIVE = {"status": "alive"}
METRICS = (
    "# HELP register_http_requests_total HTTP requests by route and status\n"
    "# TYPE register_http_requests_total counter\n"
    'register_http_requests_total{method="POST",route="/v1/exposure",status="200"} 1042.0\n'
)

# --- problems (every refusal's own example is in register/api/openapi.py) ----------------------------

PROBLEM = {
    "type": "https://register.example/problems/stale_update", "title": "Older than the stored state", "status": 409,
    "detail": "as_of 2026-10-01T00:00:00+00:00 is older than the stored 2026-11-01T00:00:00+00:00",
    "code": "stale_update", "request_id": REQUEST_ID,
}  # fmt: skip
OAUTH_PROBLEM = {
    "type": "https://register.example/problems/invalid_client", "title": "Client authentication failed",
    "status": 401, "detail": "the assertion has expired", "code": "invalid_client", "request_id": REQUEST_ID,
    "error": "invalid_client", "error_description": "the assertion has expired",
}  # fmt: skip
PROBLEM_WITH_RECEIPT = {
    "type": "https://register.example/problems/consent_revoked", "title": "No valid consent", "status": 403,
    "detail": "the person revoked this consent", "code": "consent_revoked", "request_id": REQUEST_ID,
    "receipt": RECEIPT,
}  # fmt: skip

# --- exposure: stored answers and answers as of a past moment --------------------------------------

EXPOSURE_AS_OF_REQUEST = {"country": "FI", "national_id": PERSON, "purpose": "complaint",
                          "as_of": "2026-11-23T13:20:00Z"}
EXPOSURE_AS_OF = {
    "subject": {"country": "FI", "national_id_masked": PERSON_MASKED}, "as_of": "2026-12-04T09:00:00Z",
    "state_as_of": "2026-11-23T13:20:00Z", "purpose": "complaint",
    "credit_ban": {"active": True, "since": "2026-11-20T08:00:00Z", "reason": "identity_theft"},
    "totals": {"EUR": _TOTALS}, "by_kind": _BY_KIND, "contingent": {},
    "collections": {"count": 0, "amount": {}}, "obligations": [_LOAN_LINE, _CARD_LINE], "receipt": RECEIPT,
}  # fmt: skip
STORED_EXPOSURE = {
    "answer": {k: v for k, v in EXPOSURE.items() if k != "receipt"},
    "response_sha256": "3f0c5e9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e",
    "verified": True, "hash_matches": True, "event_id": EVENT_ID, "leaf_index": 51, "checkpoint": CHECKPOINT,
    "inclusion": INCLUSION_PROOF,
}  # fmt: skip

MY_RETENTION = {
    "subject": {"country": "FI", "national_id_masked": PERSON_MASKED}, "as_of": "2026-11-23T13:20:00Z",
    "obligations": [
        {"id": OBLIGATION_ID, "reference": "LOAN-1", "kind": "instalment_loan", "status": "current",
         "creditor": {"id": NORDBANK, "name": "Nordbank Oyj", "country": "FI"}, "retracted": False,
         "rule": None, "period_started_at": None, "kept_until": None},
        {"id": "2c5e8a1f-4b7d-4c9e-a3f6-8d1b4e7a2c5f", "reference": "CARD-7", "kind": "credit_card",
         "status": "closed", "creditor": {"id": NORDBANK, "name": "Nordbank Oyj", "country": "FI"},
         "retracted": False, "rule": "ended", "period_started_at": "2026-10-02T08:00:00Z",
         "kept_until": "2027-01-08T08:00:00Z"},
    ],
    "rules": [{"rule": "ended", "days": 98, "by_country": {}}, {"rule": "ended_arrears", "days": 365, "by_country": {}},
              {"rule": "retracted", "days": 30, "by_country": {}}, {"rule": "claim_closed", "days": 365, "by_country": {}},
              {"rule": "exposure_answer", "days": 365, "by_country": {}},
              {"rule": "access_event", "days": 1825, "by_country": {}}, {"rule": "report_file", "days": 14, "by_country": {}}],
    "run_interval_seconds": 3600,
}  # fmt: skip

STATISTICS = {
    "as_of": "2026-11-23T13:00:00Z", "min_persons": 10,
    "obligations": [
        {"country": "SE", "kind": "instalment_loan", "currency": "SEK", "persons": {"value": 48211},
         "lines": {"value": 51093}, "balance": {"value": 812733000000}},
        {"country": "SE", "kind": "buy_now_pay_later", "currency": "SEK", "persons": {"value": None, "suppressed": True},
         "lines": {"value": None, "suppressed": True}, "balance": {"value": None, "suppressed": True}},
    ],
    "arrears": [{"country": "SE", "bucket": "current", "persons": {"value": 45102}},
                {"country": "SE", "bucket": "31-60", "persons": {"value": 812}}],
    "collection": [{"country": "SE", "persons": {"value": 2210}, "claims": {"value": 2874}}],
    "lookups": [{"month": "2026-11", "persons": {"value": 9120}, "granted": {"value": 10233}, "refused": {"value": 88}}],
    "disputes": [{"state": "corrected", "persons": {"value": 41}, "disputes": {"value": 42}}],
}  # fmt: skip
