"""Response (and non-domain request) models. Request models forbid unknown fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.domain.consent import Purpose
from register.domain.obligation import CollectionLink, CollectsRef, HandedToRef, StrictModel
from register.domain.permission import Role
from register.domain.types import CountryCode, JsonObject, ShortText, Timestamp, UUIDStr
from register.services.obligations import ObligationView, VersionView


class ContactIn(StrictModel):
    """How a person reaches the institution about a debt: shown on the person's pages."""

    phone: Annotated[StrictStr, StringConstraints(min_length=3, max_length=40, pattern=r"^\+?[0-9 ()-]+$")] | None = None
    email: Annotated[StrictStr, StringConstraints(min_length=3, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    url: Annotated[StrictStr, StringConstraints(max_length=300, pattern=r"^https://\S+$")] | None = None


class ContactPublic(BaseModel):
    phone: str | None = None
    email: str | None = None
    url: str | None = None


class InstitutionCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_CREATE]})

    name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    role: Annotated[Role, Field(description="lender, collector or regulator")]
    org_number: Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)] | None = None
    country: CountryCode | None = None
    contact: ContactIn | None = Field(default=None, description="How a person reaches it about a debt")


class InstitutionPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION]})

    id: str
    name: str
    role: str
    org_number: str | None = None
    country: str | None = None
    created_at: datetime


class InstitutionCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_CREATED]})

    id: str
    name: str
    role: str
    token: str = Field(description="Bearer token. Shown once: the register keeps only its hash.")


class InstitutionsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTIONS]})

    items: list[InstitutionPublic]


class InstitutionKeyCreate(StrictModel):
    """A public key for signing client assertions: exactly one of `jwk` and `pem`."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.KEY_CREATE]})

    jwk: JsonObject | None = Field(default=None, description="A public JWK: OKP/Ed25519 or EC/P-256")
    pem: Annotated[StrictStr, StringConstraints(max_length=4096)] | None = Field(
        default=None, description="A PEM SubjectPublicKeyInfo (-----BEGIN PUBLIC KEY-----)"
    )
    kid: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,100}$")] | None = Field(
        default=None,
        description="The id assertions name in their header. Default: the JWK's kid, else its RFC 7638 thumbprint",
    )


class InstitutionKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [ex.INSTITUTION_KEY]})

    kid: str
    algorithm: str = Field(description="EdDSA (Ed25519) or ES256 (P-256)")
    thumbprint: str = Field(description="RFC 7638 JWK thumbprint (SHA-256, base64url)")
    public_key: str = Field(description="PEM")
    created_at: datetime
    revoked_at: datetime | None


class InstitutionKeysPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_KEYS]})

    items: list[InstitutionKeyPublic]


class InstitutionKeyRevoked(InstitutionKeyPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_KEY_REVOKED]})

    access_tokens_revoked: int = Field(description="Live access tokens issued with this key, revoked with it")


class AccessTokensRevoked(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_TOKENS_REVOKED]})

    institution_id: str
    access_tokens_revoked: int


class AccessTokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_TOKEN]})

    access_token: str = Field(description="`rat_` and 32 random bytes: send it as `Authorization: Bearer ...`")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until it expires")


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414 section 2, for the one grant the register has (client credentials with `private_key_jwt`),
    plus the audience its client assertions must carry."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.AUTHORIZATION_SERVER]})

    issuer: str = Field(description="This register's URL, as the request reached it")
    token_endpoint: str = Field(description="Where to exchange a client assertion for an access token")
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    grant_types_supported: list[str]
    response_types_supported: list[str] = Field(description="None: the register has no authorization endpoint")
    client_assertion_audience: str = Field(
        description="The `aud` a client assertion must carry (`REGISTER_OAUTH_AUDIENCE`). The register's "
        "setting, which need not be the URL it is reached at: sign for this value, not for `token_endpoint`")


LINK = ("For a line with `collects`: confirmed when the collected line's creditor names this claim back in "
        "`handed_to` (only then is that debt counted once, as the claim), else unconfirmed (both lines count). "
        "Null for a line that collects nothing")


class DebtorSubject(BaseModel):
    country: str
    national_id_masked: str = Field(examples=["19880320-****"])


class DebtorPublic(BaseModel):
    country: str
    role: str
    national_id_masked: str = Field(examples=["19880320-****"])


class ObligationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [ex.OBLIGATION]})

    id: str
    external_ref: str
    institution_id: str
    kind: str
    debtors: list[DebtorPublic]
    currency: str
    original_amount: int | None
    balance: int
    credit_limit: int | None
    monthly_payment: int | None
    interest_rate_bp: int | None
    opened_on: date | None
    matures_on: date | None
    status: str
    overdue_amount: int
    days_past_due: int
    original_creditor: str | None
    collects: CollectsRef | None
    handed_to: HandedToRef | None = Field(description="The claim that now holds this debt, in its creditor's word")
    collection_link: CollectionLink | None = Field(description=LINK)
    registration_consent: dict[str, Any]
    as_of: datetime
    version: int
    created_at: datetime
    updated_at: datetime
    retracted_at: datetime | None = None
    retraction_reason: str | None = None

    @classmethod
    def of(cls, view: ObligationView) -> ObligationPublic:
        ob = view.obligation
        data = {f: getattr(ob, f) for f in cls.model_fields
                if f not in ("debtors", "collects", "handed_to", "collection_link")}
        data["debtors"] = [DebtorPublic(**vars(d)) for d in view.debtors]
        data["collects"] = (
            CollectsRef(institution_id=ob.collects_institution_id, external_ref=ob.collects_external_ref)
            if ob.collects_institution_id and ob.collects_external_ref
            else None
        )
        data["handed_to"] = (
            HandedToRef(institution_id=ob.handed_to_institution_id, external_ref=ob.handed_to_external_ref)
            if ob.handed_to_institution_id and ob.handed_to_external_ref
            else None
        )
        return cls(**data, collection_link=view.collection_link)


class ObligationVersionPublic(BaseModel):
    version: int
    change: str = Field(description="created, updated, reinstated or retracted")
    institution_id: str
    request_id: str | None
    recorded_at: datetime
    as_of: datetime
    state: dict[str, Any] = Field(description="The whole reported state after this change; debtors masked")

    @classmethod
    def of(cls, view: VersionView) -> ObligationVersionPublic:
        v = view.version
        state = {**v.state, "debtors": [vars(d) for d in view.debtors]}
        return cls(
            version=v.version, change=v.change, institution_id=v.institution_id, request_id=v.request_id,
            recorded_at=v.recorded_at, as_of=v.as_of, state=state,
        )


class ObligationHistory(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.OBLIGATION_HISTORY]})

    external_ref: str
    collection_link: CollectionLink | None = Field(description=LINK + " (its state now)")
    versions: list[ObligationVersionPublic]


class ObligationsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.OBLIGATIONS]})

    items: list[ObligationPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


# --- consent -------------------------------------------------------------------------------------


class ConsentCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSENT_CREATE]})

    institution_id: UUIDStr
    purpose: Purpose
    expires_at: Timestamp = Field(description="At most 90 days ahead")


class ConsentEvidence(StrictModel):
    method: Annotated[StrictStr, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_]+$")] = Field(
        examples=["signed_application"]
    )
    reference: ShortText
    signed_at: Timestamp
    document_sha256: Annotated[StrictStr, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AttestedConsentCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ATTESTED_CONSENT_CREATE]})

    country: CountryCode
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
    purpose: Purpose
    expires_at: Timestamp
    evidence: ConsentEvidence


class ConsentPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSENT]})

    id: str
    institution_id: str
    institution_name: str | None = None
    purpose: str
    source: str = Field(description="consumer (given in the register) or attested (recorded by the institution)")
    attested: bool
    evidence: dict[str, Any] | None = None
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool
    subject: DebtorSubject | None = Field(default=None, description="Shown to institutions, masked")


class ConsentsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSENTS]})

    items: list[ConsentPublic]


# --- exposure ------------------------------------------------------------------------------------


class ExposureRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPOSURE_REQUEST]})

    country: CountryCode
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
    purpose: Purpose
    consent_id: UUIDStr


class TotalsPublic(BaseModel):
    balance: int
    credit_limit: int
    unused_credit: int
    monthly_payments: int
    overdue_amount: int
    obligations: int
    creditors: int


class CreditorPublic(BaseModel):
    id: str
    name: str


class ExposureLinePublic(BaseModel):
    id: str = Field(description="Opaque id of the obligation line")
    creditor: CreditorPublic
    kind: str
    role: str = Field(description="This person's role: primary, co_debtor or guarantor")
    joint: bool = Field(description="More than one person owes it")
    currency: str
    balance: int
    credit_limit: int | None
    monthly_payment: int | None
    overdue_amount: int
    status: str
    days_past_due: int
    as_of: datetime
    stale: bool = Field(description="Not updated for more than 35 days")
    disputed: bool = Field(description="A dispute on this line is open: the person says it is wrong")
    statement: str | None = Field(default=None, description="The person's own statement (at most 200 words) "
                                  "on this line, after its creditor upheld their dispute")
    counted: bool = Field(description="False when a collection claim with a confirmed link counts this debt, "
                                      "or it is closed")
    collects: str | None = Field(description="For a collection claim: the id of the line it names in `collects`, "
                                             "when that line is in this answer")
    collected_by: str | None = Field(description="The id of the collection claim that counts this debt")
    collection_link: CollectionLink | None = Field(description=LINK)


class CollectionsPublic(BaseModel):
    count: int
    amount: dict[str, int]


class CreditBanInAnswer(BaseModel):
    active: bool
    since: datetime | None = None
    reason: str | None = None


class ExposurePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPOSURE]})

    exposure_id: str = Field(description="Identifies exactly this answer, kept for complaints")
    subject: DebtorSubject
    as_of: datetime
    purpose: str
    consent_id: str
    consent_source: str
    credit_ban: CreditBanInAnswer = Field(description="The person's own credit ban. Advisory: the data is given "
                                          "all the same, and a lookup made while it is on is logged as such")
    totals: dict[str, TotalsPublic] = Field(description="Own debt per currency (primary and co-debtor)")
    by_kind: dict[str, dict[str, TotalsPublic]]
    contingent: dict[str, TotalsPublic] = Field(description="Guarantees, counted apart from own debt")
    collections: CollectionsPublic
    obligations: list[ExposureLinePublic]
    receipt: ReceiptPublic


class ReceiptPublic(BaseModel):
    """A signed promise, like a certificate transparency SCT, that the access event will be in the log
    within `max_merge_delay_seconds`. Whoever holds it can ask for its inclusion proof by leaf hash."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.RECEIPT]})

    event_id: str
    leaf_hash: str = Field(description="base64 SHA-256 leaf hash of the event")
    occurred_at: str
    max_merge_delay_seconds: int
    note: str = Field(description="Signed note (log key) over the lines: origin/receipt, event_id, leaf_hash, "
                                  "Timestamp: <unix s>, Max-Merge-Delay: <s>")


class Problem(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.PROBLEM]})

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class OAuthProblem(Problem):
    """A token endpoint refusal: a problem with RFC 6749's `error` (= `code`) and `error_description`."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.OAUTH_PROBLEM]})

    error: str = Field(description="invalid_request, invalid_client or unsupported_grant_type")
    error_description: str | None = None


class ProblemWithReceipt(Problem):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.PROBLEM_WITH_RECEIPT]})

    receipt: ReceiptPublic | None = None


class MyCreditorPublic(CreditorPublic):
    phone: str | None = None
    email: str | None = None
    url: str | None = None


class MyDisputeRef(BaseModel):
    id: str
    state: str
    deadline: datetime


class MyLinePublic(ExposureLinePublic):
    creditor: MyCreditorPublic
    dispute: MyDisputeRef | None = Field(default=None, description="My latest dispute on this line, if any")


class MyObligationsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.MY_OBLIGATIONS]})

    subject: DebtorSubject
    as_of: datetime
    credit_ban: CreditBanInAnswer
    totals: dict[str, TotalsPublic]
    by_kind: dict[str, dict[str, TotalsPublic]]
    contingent: dict[str, TotalsPublic]
    collections: CollectionsPublic
    obligations: list[MyLinePublic] = Field(description="Each line's `id` is the one to dispute")


# --- disputes and the credit ban -------------------------------------------------------------------

DisputeReason = Literal["not_mine", "repaid", "wrong_amount", "wrong_status", "identity_fraud", "other"]
FreeText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]


class DisputeCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.DISPUTE_CREATE]})

    obligation: UUIDStr = Field(description="The line's `id` from GET /v1/me/obligations")
    reason: DisputeReason
    text: FreeText = Field(description="What is wrong, in the person's words; the creditor reads it")


class DisputeAnswer(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.DISPUTE_ANSWER]})

    outcome: Literal["corrected", "upheld"]
    explanation: FreeText = Field(description="Shown to the person: what was corrected, or why the line is right")


class DisputeStatement(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"statement": "I paid this in full in March; "
                                                                            "my bank statement shows it."}]})

    statement: FreeText = Field(description="At most 200 words, shown with the line in later exposure answers")


class DisputeCreditor(BaseModel):
    id: str
    name: str | None


class DisputePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.DISPUTE]})

    id: str
    obligation: str = Field(description="The disputed line's id")
    external_ref: str | None = Field(default=None, description="The creditor's own reference (creditor's view)")
    creditor: DisputeCreditor
    reason: str
    text: str
    state: Literal["open", "overdue", "corrected", "upheld", "withdrawn"]
    opened_at: datetime
    deadline: datetime = Field(description="The creditor must answer by then; an open dispute after it is overdue")
    closed_at: datetime | None
    closed_by: str | None = Field(description="creditor (an answer), report (a corrected report) or person")
    explanation: str | None
    statement: str | None
    statement_at: datetime | None


class DisputesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [ex.DISPUTE]}]})

    items: list[DisputePublic]


class RegulatorDisputePublic(BaseModel):
    id: str
    institution_id: str
    institution_name: str | None
    obligation: str
    reason: str
    state: str
    opened_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: str | None
    late: bool = Field(description="Answered after its deadline, or still open past it")


class DisputeCountsPublic(BaseModel):
    institution_id: str
    name: str | None
    open: int
    overdue: int
    answered: int
    answered_late: int


class RegulatorDisputesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.REGULATOR_DISPUTES]})

    items: list[RegulatorDisputePublic]
    by_institution: list[DisputeCountsPublic] = Field(description="Every creditor's counts, most overdue first")


class CreditBanSet(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "identity_theft"}]})

    reason: Literal["identity_theft", "self_control", "other"]
    until: Timestamp | None = Field(default=None, description="Ends by itself then; unset: until lifted")


class CreditBanPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CREDIT_BAN]})

    active: bool
    since: datetime | None
    reason: str | None
    until: datetime | None
    lift_requested_at: datetime | None
    lift_effective_at: datetime | None = Field(description="When a requested lift takes effect; until then "
                                               "setting the ban again takes the lift back")


# --- access events -------------------------------------------------------------------------------


class AccessEventPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_EVENT]})

    id: str
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str | None = None
    actor_role: str
    action: str
    purpose: str | None
    consent_id: str | None
    outcome: str = Field(description="granted or refused for queries, ok for other actions")
    reason: str | None = Field(description="The refusal's code")
    request_id: str | None
    details: dict[str, Any] | None = None
    leaf_index: int | None = Field(default=None, description="Its place in the verifiable log, once integrated")


class AccessEventsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_EVENTS]})

    items: list[AccessEventPublic]
    next_cursor: str | None = None


class EventSearch(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EVENT_SEARCH]})

    country: CountryCode
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)]
    institution_id: UUIDStr | None = None
    action: Annotated[StrictStr, StringConstraints(max_length=60)] | None = None
    outcome: Annotated[StrictStr, StringConstraints(max_length=20)] | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None
    cursor: Annotated[StrictStr, StringConstraints(max_length=512)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000, strict=True)] = 100


# --- the transparency log ------------------------------------------------------------------------


class LogKeyPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.LOG_KEY]})

    origin: str
    vkey: str = Field(description="C2SP verifier key: <origin>+<key id hex>+<base64(0x01 || public key)>")
    algorithm: str
    public_key: str = Field(description="base64 Ed25519 public key")
    max_merge_delay_seconds: int


class CheckpointPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CHECKPOINT]})

    size: int
    root_hash: str = Field(description="base64")
    timestamp: int = Field(description="Unix seconds")
    note: str = Field(description="The signed checkpoint (C2SP signed note); trust this, not the other fields")


class CheckpointsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CHECKPOINTS]})

    items: list[CheckpointPublic]


class InclusionProofPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INCLUSION_PROOF]})

    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]


class ConsistencyProofPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONSISTENCY_PROOF]})

    first: int
    second: int
    proof: list[str]


class LeavesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.LEAVES]})

    start: int
    end: int = Field(description="Exclusive; may be less than asked")
    leaves: list[str] = Field(description="base64 of each leaf's canonical bytes")


class EventProofPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EVENT_PROOF]})

    event_id: str
    leaf_index: int
    leaf: str = Field(description="base64 of the leaf bytes: the canonical JSON of the event")
    inclusion: InclusionProofPublic
    checkpoint: CheckpointPublic


class ReportPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.REPORT]})

    id: str
    status: str = Field(description="receiving, received, processing, done, failed or expired")
    mode: str
    format: str
    received_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    bytes: int
    lines_read: int
    accepted: int = Field(description="Lines that created or changed an obligation")
    unchanged: int = Field(description="Lines identical to what was stored (idempotent repeats)")
    rejected: int = Field(description="Lines refused; see /errors")
    unreported: int = Field(description="Snapshot mode: obligations missing from the file, now no longer reported")
    progress: float = Field(description="0..1, by bytes processed")
    lines_per_second: float | None
    elapsed_seconds: float | None
    error: str | None
