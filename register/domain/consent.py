"""Consent: a person lets one institution look, for one purpose, until a time; revocable at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from register.errors import ConsentRequired, InvalidInput

MAX_CONSENT = timedelta(days=90)


class Purpose(StrEnum):
    credit_application = "credit_application"
    credit_limit_review = "credit_limit_review"
    debt_restructuring = "debt_restructuring"


class ConsentSource(StrEnum):
    attested = "attested"  # collected by the institution itself (a signed application) and recorded here
    consumer = "consumer"  # given by the person in the register


@dataclass(frozen=True, slots=True)
class ConsentFacts:
    """What a consent check needs to know, whatever the storage."""

    institution_id: str
    person_id: str
    purpose: str
    expires_at: datetime
    revoked_at: datetime | None


def check_new_consent(*, expires_at: datetime, now: datetime) -> None:
    if expires_at <= now:
        raise InvalidInput("expires_at must be in the future", code="invalid_consent",
                           errors=[{"loc": ["body", "expires_at"], "msg": "in the past"}])
    if expires_at - now > MAX_CONSENT:
        raise InvalidInput("a consent lasts at most 90 days", code="invalid_consent",
                           errors=[{"loc": ["body", "expires_at"], "msg": "more than 90 days ahead"}])


def check_consent(
    consent: ConsentFacts | None, *, institution_id: str, person_id: str | None, purpose: str, now: datetime
) -> None:
    """Refuse unless the consent is active and names this institution, this person and this purpose.

    The order matters only for which reason is given: a consent that is not this institution's is a
    mismatch before anything else, so a lender learns nothing about other institutions' consents.
    """
    if consent is None:
        raise ConsentRequired("no consent with that id", code="consent_missing")
    if consent.institution_id != institution_id:
        raise ConsentRequired("the consent was not given to this institution", code="consent_mismatch")
    if person_id is None or consent.person_id != person_id:
        raise ConsentRequired("the consent was given by another person", code="consent_mismatch")
    if consent.purpose != purpose:
        raise ConsentRequired(f"the consent is for {consent.purpose}, not {purpose}", code="consent_mismatch")
    if consent.revoked_at is not None and consent.revoked_at <= now:
        raise ConsentRequired("the person revoked this consent", code="consent_revoked")
    if consent.expires_at <= now:
        raise ConsentRequired("the consent has expired", code="consent_expired")
