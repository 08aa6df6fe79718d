"""What an obligation is, and the rules a reported state must satisfy before it is accepted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.domain.currency import is_currency
from register.domain.types import (
    CountryCode,
    ExternalRef,
    IsoDate,
    Money,
    NonNegInt,
    ShortText,
    Timestamp,
    UUIDStr,
)
from register.errors import Forbidden, InvalidInput, StaleUpdate


class Kind(StrEnum):
    buy_now_pay_later = "buy_now_pay_later"
    collection_claim = "collection_claim"
    credit_card = "credit_card"
    instalment_loan = "instalment_loan"
    mortgage = "mortgage"
    other = "other"
    overdraft = "overdraft"
    revolving_credit = "revolving_credit"
    student_loan = "student_loan"
    vehicle_loan = "vehicle_loan"


REVOLVING_KINDS = frozenset({Kind.credit_card, Kind.revolving_credit, Kind.overdraft})


class DebtorRole(StrEnum):
    co_debtor = "co_debtor"
    guarantor = "guarantor"
    primary = "primary"


class Status(StrEnum):
    closed = "closed"
    current = "current"
    enforcement = "enforcement"
    in_collection = "in_collection"
    overdue = "overdue"
    payment_plan = "payment_plan"
    written_off = "written_off"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DebtorIn(StrictModel):
    country: CountryCode = Field(examples=["SE"])
    national_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=32)] = Field(
        description="National identity number in any common spelling; validated, never stored in plain text."
    )
    role: DebtorRole


class CollectsRef(StrictModel):
    """The obligation a collection claim collects, as its original reporter knows it."""

    institution_id: UUIDStr
    external_ref: ExternalRef


class HandedToRef(StrictModel):
    """The collection claim that now holds this debt, as its collector knows it: the original creditor's
    side of a collection link (a claim collects a line only when each names the other)."""

    institution_id: UUIDStr
    external_ref: ExternalRef


class RegistrationConsent(StrictModel):
    """The debtor's consent to registration, as the reporter recorded it."""

    reference: ShortText
    given_at: Timestamp
    method: Annotated[StrictStr, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_]+$")] = Field(
        examples=["e_signature"]
    )


class ObligationReport(StrictModel):
    """The state of one debt, as its reporter knows it at `as_of`."""

    kind: Kind
    debtors: list[DebtorIn] = Field(min_length=1, max_length=10)
    currency: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(examples=["SEK"])
    original_amount: Money | None = None
    balance: Money
    credit_limit: Money | None = None
    monthly_payment: Money | None = None
    interest_rate_bp: Annotated[NonNegInt, Field(le=100_000)] | None = Field(
        default=None, description="Nominal rate in hundredths of a percent: 10.20 % is 1020."
    )
    opened_on: IsoDate | None = None
    matures_on: IsoDate | None = None
    status: Status
    overdue_amount: Money = 0
    days_past_due: NonNegInt = 0
    original_creditor: ShortText | None = None
    collects: CollectsRef | None = Field(
        default=None,
        description="Only a collector's collection_claim: the line it collects. Exposure counts the debt once "
        "only when that line's creditor names this claim back in `handed_to`.",
    )
    handed_to: HandedToRef | None = Field(
        default=None,
        description="The creditor's own word that a collector now holds this debt: the claim that collects it.",
    )
    registration_consent: RegistrationConsent
    as_of: Timestamp = Field(description="The reporter's time of this state; an older one than stored is refused.")
    corrects_dispute: UUIDStr | None = Field(
        default=None,
        description="The id of an open dispute on this line that this report corrects: when the report changes "
        "the line, the dispute closes as corrected. Not part of the line's state.",
    )


MAX_CLOCK_SKEW = timedelta(minutes=5)


def check_report(report: ObligationReport, *, now: datetime) -> None:
    """Cross-field rules. Raises InvalidInput listing every violation, with its JSON location."""
    check_values(report.__dict__, [d.role for d in report.debtors], report.registration_consent.given_at, now=now)


def check_values(values: Mapping[str, Any], roles: list[DebtorRole], given_at: datetime, *, now: datetime) -> None:
    """`check_report` on a report's field values (a model's, or a batch line's dict of them: services.lines), its
    debtors' roles and its consent's time."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    if not is_currency(values["currency"]):
        problems.append((("currency",), "not an ISO 4217 currency code"))
    if (primaries := roles.count(DebtorRole.primary)) != 1:
        problems.append((("debtors",), f"exactly one debtor must be primary, found {primaries}"))
    kind = values["kind"]
    if kind in REVOLVING_KINDS and values["credit_limit"] is None:
        problems.append((("credit_limit",), f"required for {kind.value}"))
    if values["collects"] is not None and kind is not Kind.collection_claim:
        problems.append((("collects",), "only a collection_claim can collect another obligation"))
    opened_on, matures_on = values["opened_on"], values["matures_on"]
    if opened_on and matures_on and matures_on < opened_on:
        problems.append((("matures_on",), "before opened_on"))
    if values["status"] is Status.closed and (values["balance"] or values["overdue_amount"]):
        problems.append((("status",), "a closed obligation has balance and overdue_amount 0"))
    if values["as_of"] > now + MAX_CLOCK_SKEW:
        problems.append((("as_of",), "in the future"))
    if given_at > now + MAX_CLOCK_SKEW:
        problems.append((("registration_consent", "given_at"), "in the future"))
    if problems:
        raise InvalidInput(
            "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems),
            code="invalid_obligation",
            errors=[{"loc": ["body", *loc], "msg": msg} for loc, msg in problems],
        )


class CollectionLink(StrEnum):
    """Whether the line a collection claim `collects` has confirmed it: its creditor names the claim back in
    `handed_to`. Only a confirmed claim takes the collected line out of exposure totals."""

    confirmed = "confirmed"
    unconfirmed = "unconfirmed"


LineKey = tuple[str, str]  # (institution_id, external_ref): a line as its reporter knows it


def collection_link(claim: LineKey, collects: LineKey | None, target_handed_to: LineKey | None) -> CollectionLink | None:
    """The link of the line `claim`, which collects `collects` (None: it collects nothing, and has no link),
    given what that line's `handed_to` says (None: not reported, or no such line). Confirmed only when each
    names the other, and never for a line naming itself."""
    if collects is None:
        return None
    if collects != claim and target_handed_to == claim:
        return CollectionLink.confirmed
    return CollectionLink.unconfirmed


def check_collects_allowed(report: ObligationReport, *, collector: bool) -> None:
    """Only a collector may say that its claim collects another institution's line: a lender's `collects`
    would take a line it does not hold out of every exposure total (SPEC section 8)."""
    check_may_collect(report.collects is not None, collector=collector)


def check_may_collect(collects: bool, *, collector: bool) -> None:
    """`check_collects_allowed` for a line known only to say `collects` or not (the batch path's prepared line)."""
    if collects and not collector:
        raise Forbidden("only an institution with the collector role may report collects", code="collector_only")


class Verdict(StrEnum):
    created = "created"
    reinstated = "reinstated"
    unchanged = "unchanged"
    updated = "updated"
    refreshed = "refreshed"  # the same content with a newer as_of: only as_of moves, no version


@dataclass(frozen=True, slots=True)
class Stored:
    """What the decision needs to know of the stored obligation."""

    as_of: datetime
    state_hash: str | None
    retracted: bool


def decide(stored: Stored | None, *, as_of: datetime, state_hash: str, same_content: bool = False) -> Verdict:
    """The one rule for every report, single or batch: the newest `as_of` wins.

    An older `as_of` is stale. The same `as_of` with the same state is an idempotent repeat; with
    another state it is stale too (two different states cannot both be true at one instant). A newer
    `as_of` with the same content (`same_content`: the state with the stored `as_of` hashes to the stored
    hash) is a refresh: the reporter confirms the line is still true, which moves its `as_of` and makes no
    version. A retracted obligation comes back only with a strictly newer `as_of`, so a retried old report
    cannot undo a retraction.
    """
    if stored is None:
        return Verdict.created
    if as_of < stored.as_of:
        raise StaleUpdate(f"as_of {as_of.isoformat()} is older than the stored {stored.as_of.isoformat()}")
    if stored.retracted:
        if as_of == stored.as_of:
            raise StaleUpdate("the obligation was retracted; report a newer as_of to reinstate it")
        return Verdict.reinstated
    if state_hash == stored.state_hash:
        return Verdict.unchanged
    if as_of == stored.as_of:
        raise StaleUpdate("a different state was already reported with this as_of")
    return Verdict.refreshed if same_content else Verdict.updated
