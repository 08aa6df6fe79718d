"""What the register keeps about me, and until when: my lines with the moment each is deleted, and the
periods of every rule (SPEC.md, "Retention"). The person's `GET /v1/me/retention` and the page
`/app/what-we-keep` both call `what_we_keep`, which records `consumer:retention:read`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.domain.keeping import kept_until, periods
from register.domain.permission import Principal
from register.domain.retention import Policy
from register.services import identities, notices
from register.services.events import record_event
from register.services.retention import _ended
from register.storage.keeping import obligations_kept


def what_we_keep(session: Session, cipher: FieldCipher, *, principal: Principal, policy: Policy, now: datetime,
                 run_interval_seconds: float, request_id: str | None) -> dict[str, Any]:
    """Every line naming me, live or ended, with the rule that will delete it and when its period ends
    (None while it is live: kept while it is reported), and every rule's period (by country where the
    countries of my creditors have their own)."""
    assert principal.national_id is not None
    person = identities.find_person(session, cipher, principal.national_id)
    rows = obligations_kept(session, person.id) if person else []
    lines = []
    for row in rows:
        kept = kept_until(_ended(row), policy)
        lines.append({"id": row.id, "reference": row.external_ref, "kind": row.kind, "status": row.status,
                      "creditor": {"id": row.institution_id, "name": row.institution_name, "country": row.country},
                      "retracted": row.retracted_at is not None, "rule": kept.rule.value if kept else None,
                      "period_started_at": kept.since if kept else None,
                      "kept_until": kept.until if kept else None})  # fmt: skip
    rules = [{"rule": rule.value, "days": days.pop("*"), "by_country": days}
             for rule, days in periods(policy, [row.country for row in rows]).items()]
    record_event(session, principal=principal, action="consumer:retention:read", now=now, request_id=request_id)
    doc = {"subject": {"country": principal.national_id.country, "national_id_masked": principal.national_id.masked()},
           "as_of": now, "obligations": lines, "rules": rules, "run_interval_seconds": int(run_interval_seconds),
           "notifications": notices.kept(session, cipher, principal=principal)}
    return json.loads(canonical_json(doc))
