from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from register.domain.consent import ConsentFacts, check_consent, check_new_consent
from register.errors import ConsentRequired, InvalidInput

NOW = datetime(2026, 11, 23, tzinfo=UTC)
GOOD = ConsentFacts(institution_id="bank", person_id="p", purpose="credit_application",
                    expires_at=NOW + timedelta(days=1), revoked_at=None)


def refusal(consent, **kw) -> str:
    args = {"institution_id": "bank", "person_id": "p", "purpose": "credit_application", "now": NOW, **kw}
    with pytest.raises(ConsentRequired) as exc:
        check_consent(consent, **args)
    return exc.value.code


class TestCheckConsent:
    def test_valid_consent_passes(self):
        check_consent(GOOD, institution_id="bank", person_id="p", purpose="credit_application", now=NOW)

    def test_each_refusal_has_its_code(self):
        assert refusal(None) == "consent_missing"
        assert refusal(GOOD, institution_id="other") == "consent_mismatch"
        assert refusal(GOOD, person_id="q") == "consent_mismatch"
        assert refusal(GOOD, person_id=None) == "consent_mismatch"
        assert refusal(GOOD, purpose="debt_restructuring") == "consent_mismatch"
        assert refusal(replace(GOOD, revoked_at=NOW)) == "consent_revoked"
        assert refusal(replace(GOOD, expires_at=NOW)) == "consent_expired"

    def test_another_institutions_consent_reveals_nothing_more(self):
        revoked_elsewhere = replace(GOOD, institution_id="other", revoked_at=NOW)
        assert refusal(revoked_elsewhere) == "consent_mismatch"


class TestNewConsent:
    def test_at_most_90_days(self):
        check_new_consent(expires_at=NOW + timedelta(days=90), now=NOW)
        with pytest.raises(InvalidInput):
            check_new_consent(expires_at=NOW + timedelta(days=90, seconds=1), now=NOW)

    def test_not_in_the_past(self):
        with pytest.raises(InvalidInput):
            check_new_consent(expires_at=NOW, now=NOW)
