"""How the API shows rows the services return, where more than one resource shows them: consents (under
/v1/consents and /v1/me/consents) and access events (under /v1/me/access-log and /v1/audit/events).
Routes import these, never each other (an import-linter contract in pyproject.toml)."""

from __future__ import annotations

from datetime import datetime

from register.api.schemas import AccessEventPublic, ConsentPublic, DebtorSubject


def consent_public(c, *, now: datetime, name: str | None = None, subject: DebtorSubject | None = None) -> ConsentPublic:
    return ConsentPublic(
        id=c.id, institution_id=c.institution_id, institution_name=name, purpose=c.purpose, source=c.source,
        attested=c.source == "attested", evidence=c.evidence, granted_at=c.granted_at, expires_at=c.expires_at,
        revoked_at=c.revoked_at, active=c.revoked_at is None and c.expires_at > now, subject=subject,
    )


def event_public(e, name: str | None, leaf_index: int | None = None) -> AccessEventPublic:
    return AccessEventPublic(
        id=e.id, occurred_at=e.occurred_at, actor_type=e.actor_type, actor_id=e.actor_id, actor_name=name,
        actor_role=e.actor_role, action=e.action, purpose=e.purpose, consent_id=e.consent_id, outcome=e.outcome,
        reason=e.reason, request_id=e.request_id, details=e.details, leaf_index=leaf_index,
    )
